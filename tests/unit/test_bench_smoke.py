"""Smoke test of the benchmark suite: modules import, and the table/stats/JSON helpers work.

No sockets, no timing assertions: the benchmarks themselves run with
``python benchmarks/run_all.py`` (see benchmarks/README.md).
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

MODULES = [
    "run_all",
    "bench_fanout_matrix",
    "bench_latency",
    "bench_client",
    "bench_ingest",
    "bench_kernel",
    "bench_memory",
]


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_imports_and_exposes_run_summary_table(name: str) -> None:
    mod = importlib.import_module(name)
    if name == "run_all":
        assert set(mod.SUITE) == {"fanout", "latency", "client", "ingest", "kernel", "memory"}
        return
    for attr in ("run", "summary", "detail_table", "main"):
        assert callable(getattr(mod, attr)), f"{name}.{attr}"


def test_percentiles_use_nearest_rank_and_handle_empty_input() -> None:
    import _harness as h

    stats = h.pcts(float(v) for v in range(1, 1001))
    assert (stats["p50"], stats["p99"], stats["p99_9"], stats["max"]) == (500, 990, 999, 1000)
    assert h.pcts([])["p99"] is None
    assert h.median([3.0, None, 1.0, 2.0]) == 2.0
    assert h.ratio(3.0, 0.0) is None and h.ratio(3.0, 1.5) == 2.0


def test_summarize_computes_per_client_and_aggregate_rates() -> None:
    import _harness as h

    # two clients, 1001 events each over 1 s (per client 1000 ev/s); one closed early with 1013.
    res: dict[str, Any] = {
        "clients": [[1001, 0.0, 1000.0, 1000], [1001, 500.0, 1500.0, 1000], [10, 0.0, 1.0, 1013]],
        "lat": {"p99": 1.0},
        "timed_out": False,
    }
    out = h.summarize(res, clients=3, expect=1001)
    assert out["per_client_evs"] == pytest.approx(1000.0)
    assert out["aggregate_evs"] == pytest.approx(2012 / 1.5)
    assert out["closed_early"] == 1
    assert out["delivered"] == pytest.approx(2012 / 3003)


def test_table_aligns_columns_and_formats_numbers() -> None:
    import _harness as h

    text = h.table([["a", h.fmt(1234567.0)], ["bb", h.fmt(1.5, "x")]], ["name", "value"])
    lines = text.splitlines()
    assert lines[0].startswith("| name | value")
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    assert "1,235k" in text and "1.50x" in text
    assert h.fmt(None) == "-"


def test_fanout_aggregate_ratios_against_node_ws_and_summary_verdict() -> None:
    import bench_fanout_matrix as fm

    def run(rate: float) -> dict[str, Any]:
        return {
            "per_client_evs": rate,
            "aggregate_evs": rate * 10,
            "delivered": 1.0,
            "closed_early": 0,
            "lat": {"p99": 1.0},
            "deflate_negotiated": 10,
        }

    results = {
        "C=10|deflate=off|node|wsnotebook batch=auto": [run(30.0), run(31.0), run(29.0)],
        "C=10|deflate=off|node|node-ws": [run(10.0), run(20.0), run(15.0)],
    }
    rows = fm.aggregate(results)
    auto = next(r for r in rows if r["server"] == "wsnotebook batch=auto")
    assert auto["per_client_evs"] == 30.0
    assert auto["vs_node_ws"] == pytest.approx(2.0)
    (line,) = fm.summary(rows)
    assert line[-1] == "met" and line[-2] == ">= 1.5x node-ws"
    assert "| 10 " in fm.detail_table(rows)


def test_write_json_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import _harness as h

    monkeypatch.setattr(h, "RESULTS", tmp_path)
    path = h.write_json("smoke", {"rows": [{"x": 1.5}]})
    assert json.loads(path.read_text()) == {"rows": [{"x": 1.5}]}


def test_client_bench_builds_valid_server_messages() -> None:
    import bench_client

    from wsnotebook._protocol import parse_server_message

    single = bench_client.messages(3, 1)
    batched = bench_client.messages(2500, 1000)
    assert len(single) == 3 and len(batched) == 3
    assert [len(parse_server_message(m).events) for m in batched] == [1000, 1000, 500]
    assert parse_server_message(single[0]).type == "event"


def test_kernel_summary_gives_the_other_process_row_no_verdict_and_judges_the_default() -> None:
    import bench_kernel as bk

    def row(scenario: str, p99: float) -> dict[str, Any]:
        return {"scenario": scenario, "p50_ms": p99 / 2, "p99_ms": p99, "p99_vs_idle": p99 / 5.0}

    assert bk.DEFAULT_VARIANT == "budget"  # the kernel default: no switch-interval change
    rows = [
        row("idle", 5.0),
        row(bk.OTHER_PROCESS[0], 9.0),
        row("10k ev/s, budget", 9.5),
        row("10k ev/s, budget+switch", 9.0),
        row("10k ev/s, off", 20.0),
        row("flood, budget", 60.0),
    ]
    out = {r[1].split(" (p50")[0]: r for r in bk.summary(rows)}
    ref = out[f"cell p99 ms, {bk.OTHER_PROCESS[0]}"]
    assert ref[6] == "reference: no shared GIL" and ref[7] == ""
    assert out["cell p99 ms, 10k ev/s, budget"][6:] == ["p99 <= 2x idle", "met"]
    for variant in ("off", "budget+switch"):
        other = out[f"cell p99 ms, 10k ev/s, {variant}"]
        assert other[6].endswith("(variant; default is budget)")
    assert out["cell p99 ms, 10k ev/s, off"][7] == "NOT met"
    assert out["cell p99 ms, flood, budget"][6:] == ["p99 <= 50 ms", "NOT met"]
