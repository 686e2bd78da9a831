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
    "bench_soak",
    "bench_redis",
    "bench_monitor",
]


@pytest.mark.parametrize("name", MODULES)
def test_bench_module_imports_and_exposes_run_summary_table(name: str) -> None:
    mod = importlib.import_module(name)
    if name == "run_all":
        assert set(mod.SUITE) == {
            *("fanout", "latency", "client", "ingest", "kernel", "memory", "soak", "redis"),
            "monitor",
        }
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

    # No go_ms: spans start at the first receive.  Two clients, 1001 events each over 1 s; one
    # closed early with 1013 after 10 events.
    res: dict[str, Any] = {
        "clients": [[1001, 0.0, 1000.0, 1000], [1001, 500.0, 1500.0, 1000], [10, 0.0, 1.0, 1013]],
        "lat": {"p99": 1.0},
        "timed_out": False,
    }
    out = h.summarize(res, clients=3, expect=1001)
    assert out["aggregate_evs"] == pytest.approx(2012 / 1.5)
    assert out["per_client_evs"] == pytest.approx(2012 / 1.5 / 3)  # aggregate / C
    assert out["median_client_evs"] == pytest.approx(1000.0)
    assert out["closed_early"] == 1
    assert out["delivered"] == pytest.approx(2012 / 3003)


def test_summarize_headline_is_aggregate_over_clients_not_the_median_client() -> None:
    import _harness as h

    go = 10_000.0
    # lockstep: every client gets its 1000 events by go + 1 s -> every figure is 1000 ev/s
    lock = h.summarize(
        {"clients": [[1000, go + 1, go + 1000, 1000]] * 4, "go_ms": go}, clients=4, expect=1000
    )
    assert lock["per_client_evs"] == pytest.approx(1000.0)
    assert lock["median_client_evs"] == pytest.approx(1000.0)
    assert lock["slowest_client_evs"] == pytest.approx(1000.0)
    # uneven: three clients done in 0.5 s, one in 2 s.  The median client says 2000 ev/s, the
    # fair per-client figure is 4000 events / 2 s / 4 = 500 = the slowest client's rate.
    uneven = h.summarize(
        {
            "clients": [[1000, go + 1, go + 500, 1000]] * 3 + [[1000, go + 1, go + 2000, 1000]],
            "go_ms": go,
        },
        clients=4,
        expect=1000,
    )
    assert uneven["median_client_evs"] == pytest.approx(2000.0)
    assert uneven["per_client_evs"] == pytest.approx(500.0)
    assert uneven["slowest_client_evs"] == pytest.approx(500.0)
    # a client that got nothing counts as 0 for the slowest client and lowers aggregate / C
    dropped = h.summarize(
        {"clients": [[1000, go + 1, go + 1000, 1000], [0, 0.0, 0.0, 1013]], "go_ms": go},
        clients=2,
        expect=1000,
    )
    assert dropped["slowest_client_evs"] == 0.0
    assert dropped["per_client_evs"] == pytest.approx(500.0)
    assert dropped["delivered"] == pytest.approx(0.5) and dropped["closed_early"] == 1


def test_table_aligns_columns_and_formats_numbers() -> None:
    import _harness as h

    text = h.table([["a", h.fmt(1234567.0)], ["bb", h.fmt(1.5, "x")]], ["name", "value"])
    lines = text.splitlines()
    assert lines[0].startswith("| name | value")
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header
    assert "1,235k" in text and "1.50x" in text
    assert h.fmt(None) == "-"


def _fanout_run(rate: float, **over: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "per_client_evs": rate,
        "median_client_evs": rate * 1.2,
        "slowest_client_evs": rate,
        "aggregate_evs": rate * 10,
        "delivered": 1.0,
        "closed_early": 0,
        "timed_out": False,
        "lat": {"p99": 1.0},
        "deflate_negotiated": 10,
    }
    run.update(over)
    return run


def _fanout_results(*ours: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    run = _fanout_run
    return {
        "C=10|deflate=off|node|wsnotebook batch=auto": list(ours),
        "C=10|deflate=off|node|node-ws": [run(10.0), run(20.0), run(15.0)],
    }


def test_fanout_aggregate_ratios_against_node_ws_and_summary_verdict() -> None:
    import bench_fanout_matrix as fm

    run = _fanout_run
    rows = fm.aggregate(_fanout_results(run(30.0), run(31.0), run(29.0)))
    auto = next(r for r in rows if r["server"] == "wsnotebook batch=auto")
    assert auto["per_client_evs"] == 30.0
    assert auto["median_client_evs"] == pytest.approx(36.0)
    assert auto["vs_node_ws"] == pytest.approx(2.0)
    (line,) = fm.summary(rows)
    assert line[-1] == "met" and line[-2] == ">= 1.5x node-ws"
    assert "agg/C" in line[1]
    table = fm.detail_table(rows)
    assert "| 10 " in table and "median client" in table and "slowest client" in table


@pytest.mark.parametrize(
    "bad",
    [
        {"delivered": 0.999},
        {"closed_early": 1},
        {"timed_out": True},
        {"error": "load generator timed out"},
    ],
)
def test_fanout_verdict_refuses_a_run_with_drops_whatever_the_rate(bad: dict[str, Any]) -> None:
    import bench_fanout_matrix as fm

    run = _fanout_run
    broken = {"error": bad["error"]} if "error" in bad else run(300.0, **bad)
    rows = fm.aggregate(_fanout_results(run(300.0), broken, run(300.0)))
    (line,) = fm.summary(rows)
    assert line[-1] == "NOT met (drops)"
    assert "DROPS" in line[1]


def test_fanout_deflate_counts_as_negotiated_only_when_every_client_negotiated_it() -> None:
    import bench_fanout_matrix as fm

    run = _fanout_run
    key = "C=10|deflate=on|node|wsnotebook batch=auto"
    (full,) = fm.aggregate({key: [run(1.0), run(1.0), run(1.0)]})
    (partial,) = fm.aggregate({key: [run(1.0), run(1.0, deflate_negotiated=9), run(1.0)]})
    assert full["deflate_negotiated"] is True
    assert partial["deflate_negotiated"] is False
    assert "(refused)" in fm.detail_table([partial])


def test_write_json_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import _harness as h

    monkeypatch.setattr(h, "RESULTS", tmp_path)
    path = h.write_json("smoke", {"rows": [{"x": 1.5}]})
    assert json.loads(path.read_text()) == {"rows": [{"x": 1.5}]}


def test_client_bench_builds_valid_server_messages() -> None:
    import bench_client

    from wsnotebook.protocol import parse_server_message

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


def test_client_decode_rows_label_their_ratio_as_paired() -> None:
    import bench_client

    paired = {
        "measure": "decode path batched 1000",
        "ours_evs": 540e3,
        "baseline": "orjson.loads only",
        "baseline_evs": 635e3,
        "ratio": 0.67,  # median of per-pair ratios, not 540 / 635
        "ratio_kind": "paired",
    }
    socket = {**paired, "measure": "over a socket batch=1000", "ratio_kind": "of medians"}
    rows = bench_client.summary([paired, socket])
    assert rows[0][3] == "orjson.loads only (paired)"
    assert rows[1][3] == "orjson.loads only"
    assert "(paired)" in bench_client.detail_table([paired])


def test_client_and_ingest_rows_carry_issue_20_ratio_targets() -> None:
    import bench_client
    import bench_ingest

    per_event = {
        "measure": "decode path per-event, in loop (bursts of 100)",
        "ours_evs": 446e3,
        "baseline": "orjson.loads only",
        "baseline_evs": 1.2e6,
        "ratio": 0.38,
    }
    sock = {**per_event, "measure": "over a socket per-event", "ratio": 1.06}
    rows = bench_client.summary([per_event, sock])
    assert rows[0][6:] == [">= 0.5x", "NOT met"] and rows[1][6:] == [">= 1.0x", "met"]
    clean = dict.fromkeys(bench_ingest.ERROR_KEYS, 0)
    post = {"measure": "POST /events req/s keep-alive", "ours": 10.5e3, "baseline": "b",
            "baseline_value": 15e3, "ratio": 0.69, "errors": clean}  # fmt: skip
    publish = {**post, "measure": "WebSocket publish ev/s", "ratio": 0.94}
    failed = {**publish, "errors": {**clean, "ours_failed_reps": 1}}
    close = {**post, "measure": "POST /events req/s Connection: close", "ratio": 1.01}
    out = bench_ingest.summary([post, publish, failed, close])
    assert [r[6:] for r in out] == [
        [">= 0.9x", "NOT met"],
        [">= 0.8x", "met"],
        [">= 0.8x", "NOT met"],  # a rep failed: no verdict of "met"
        ["", ""],
    ]


def test_ingest_marks_rows_with_failed_requests_or_reps() -> None:
    import bench_ingest

    clean = dict.fromkeys(bench_ingest.ERROR_KEYS, 0)
    assert bench_ingest.error_mark(clean) == ""
    mark = bench_ingest.error_mark({**clean, "ours_failed_requests": 3, "baseline_failed_reps": 1})
    assert mark == " (ERRORS: ours 3 failed requests; baseline 1 failed reps)"


def test_kernel_bg_cores_is_not_reported_where_nothing_was_accounted() -> None:
    import bench_kernel as bk

    rep = {"rt": [1.0, 2.0, 3.0], "cpu_share": 0.0}
    samples = {
        "idle": [{"rt": [1.0, 2.0]}],
        "10k ev/s, off": [rep],
        "10k ev/s, budget": [{**rep, "cpu_share": 0.31}],
        bk.OTHER_PROCESS[0]: [{**rep, "cpu_share": 0.27}],
    }
    rows = {r["scenario"]: r for r in bk.aggregate(samples)}
    assert rows["10k ev/s, off"]["cpu_share"] is None
    assert rows["10k ev/s, budget"]["cpu_share"] == 0.31
    assert rows[bk.OTHER_PROCESS[0]]["cpu_share"] == 0.27
    assert "| 10k ev/s, off " in bk.detail_table(list(rows.values()))


def test_node_server_runs_with_expose_gc_for_the_memory_bench() -> None:
    import _harness as h

    cmd, needs_node = h.server_cmd("node-ws")
    assert needs_node and "--expose-gc" in cmd
    assert "global.gc()" in (h.BASELINES / "ws_server.js").read_text()


def test_monitor_summary_judges_each_view_by_its_on_off_windows_in_one_kernel() -> None:
    import bench_monitor as bm

    def row(variant: str, kernel: float, renderer: float, rt: float, **paired: Any) -> dict:
        none = dict.fromkeys(bm.FIELDS)
        return {**none, "variant": variant, "rate": 1000, "kernel_cores": kernel,
                "renderer_cores": renderer, "rt_p99_ms": rt, "lag_p50_s": 0.1,
                **paired}  # fmt: skip

    rows = [
        # between kernels our view alone reads 0.02 cores and the old one 0.01 (2.00x), but in
        # one kernel each, on/off, ours is 0.004 and the old one 0.010: the paired figure judges
        row("monitor", 0.10, 0.10, 20.0, pair_direct_view=0.004, pair_kernel_view=0.02,
            pair_renderer_view=0.05, pair_rt_p99_x=1.2, pair_rt_on_cells=300,
            pair_rt_off_cells=290),
        row("none", 0.08, 0.01, 10.0),
        row("old", 0.20, 0.12, 30.0, pair_direct_view=0.010, pair_kernel_view=0.01,
            pair_renderer_view=0.04, pair_rt_p99_x=1.0),
        row("old_none", 0.19, 0.01, 20.0),
        row("perspective", 0.30, 0.30, 40.0),
    ]  # fmt: skip
    out = {r[1]: r for r in bm.summary(rows)}
    at = "@ 1000 ev/s"
    # (figure, how it was measured) -> (ratio, verdict)
    expected = {
        ("kernel", "each view minus its own no-view kernel: between kernels, not a verdict"):
            ("2.00x", ""),
        ("kernel", "its tick's thread + IOPub, on/off windows in one kernel"): ("0.40x", "met"),
        ("kernel", "whole process on minus off in one kernel: noisier, not a verdict"):
            ("2.00x", ""),
        ("renderer", "on minus off in the paired windows: not a verdict"): ("1.25x", ""),
        # the renderer runs no pipeline: its view alone between runs is judged (0.09 vs 0.11)
        ("renderer", "each view minus its own no-view run"): ("0.82x", "met"),
    }  # fmt: skip
    for (figure, how), (ratio, verdict) in expected.items():
        row = out[f"{figure} CPU cores of the view alone {at} ({how})"]
        assert (row[5], row[-1]) == (ratio, verdict), how
    cell = out[f"cell p99 {at}, view on over view off in one kernel (300+290 cells)"]
    assert cell[-1] == "NOT met" and cell[2] == "1.20" and cell[4] == "1.00"
    between = out[
        f"cell p99 {at} over its own no-view kernel's p99 (between kernels, not a verdict)"
    ]
    assert between[2] == "2.00" and between[4] == "1.50" and between[-1] == ""
    assert bm._no_worse(0.004, -0.001) == "met" and bm._no_worse(0.01, 0.0) == "NOT met"
    assert bm._no_worse(0.0105, 0.01) == "met" and bm._no_worse(None, 0.01) == ""


def test_monitor_paired_windows_alternate_abba_and_aggregate_over_reps() -> None:
    import bench_monitor as bm

    assert bm.paired_order(3) == ["off", "on", "on", "off", "off", "on"]
    assert bm.paired_order(1) == ["off", "on"]

    def run(view: float, on: list[float], off: list[float]) -> dict[str, Any]:
        return {**dict.fromkeys(bm.FIELDS), "pair_kernel_view": view, "pair_direct_view": view,
                "pair_renderer_view": view, "pair_rt_on": on, "pair_rt_off": off}  # fmt: skip

    (row,) = bm.aggregate(
        {("monitor", 1000): [run(0.01, [2.0] * 100, [1.0] * 100), run(0.03, [2.0] * 100,
         [1.0] * 100), run(0.02, [2.0] * 99 + [9.0], [1.0] * 100)]}
    )  # fmt: skip
    assert row["pair_kernel_view"] == row["pair_direct_view"] == 0.02  # the median over reps
    assert row["pair_rt_on_cells"] == 300 and row["pair_rt_on_p99_ms"] == 2.0  # pooled
    assert row["pair_rt_p99_x"] == 2.0
    (row,) = bm.aggregate({("none", 1000): [{**dict.fromkeys(bm.FIELDS)}]})
    assert row["pair_kernel_view"] is None and row["pair_rt_p99_x"] is None


def test_monitor_cell_round_trips_are_pooled_over_reps_and_other_fields_take_the_median() -> None:
    import bench_monitor as bm

    def run(kernel: float, rts: list[float]) -> dict[str, Any]:
        return {**dict.fromkeys(bm.FIELDS), "kernel_cores": kernel, "rt_samples": rts}

    # rep 1 is quiet, rep 2 has one slow cell: the median of per-rep p99s would hide it
    quiet, slow = [1.0] * 100, [1.0] * 99 + [50.0]
    (row,) = bm.aggregate({("monitor", 1000): [run(0.1, quiet), run(0.3, quiet), run(0.2, slow)]})
    assert row["kernel_cores"] == 0.2 and row["reps"] == 3 and row["rt_cells"] == 300
    assert row["rt_p50_ms"] == 1.0 and row["rt_p99_ms"] == 1.0  # 1 slow cell in 300: below p99
    (row,) = bm.aggregate({("monitor", 1000): [run(0.1, [1.0] * 50), run(0.1, [9.0] * 50)]})
    assert row["rt_p99_ms"] == 9.0 and row["rt_p50_ms"] == 1.0  # nearest rank: the 50th of 100
    (row,) = bm.aggregate({("none", 1000): [run(0.1, [])]})
    assert "rt_cells" not in row and row["rt_p99_ms"] is None
