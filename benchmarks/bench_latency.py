"""One-way latency at a fixed offered rate: p50/p90/p99/p99.9, ours beside its peers.

The producer inside each server process stamps every event's ``timestamp`` (epoch ms, float)
just before publishing it; 10 clients (one Node ``ws`` load-generator process) subtract it from
their receive time (same machine clock, sub-ms calibrated).  Offered rates 1k and 10k ev/s.
Servers: wsnotebook per event (``?batch=0``) and ``?batch=auto``, bare ``websockets``, Node
``ws``.  Medians over ``reps`` runs of each percentile.

Targets (issue 7): p99 <= 1 ms at 1k ev/s and <= 2 ms at 10k ev/s; ``batch=auto`` p99 within
10 % of per-event mode at 1k ev/s.

Run alone: ``python benchmarks/bench_latency.py [--quick]``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h
from bench_fanout_matrix import VARIANTS, start_servers

RATES = (1_000, 10_000)
CLIENTS = 10
TARGET_P99 = {1_000: 1.0, 10_000: 2.0}


def duration(quick: bool) -> float:
    """Seconds of traffic per run."""
    return 0.6 if quick else 3.0


def run(
    *,
    quick: bool = False,
    reps: int = 3,
    node_env: dict[str, str] | None = None,
    log: Any = print,
) -> dict[str, Any]:
    loadgen = "node" if node_env is not None else "py"
    servers = start_servers(node_env)
    runs: dict[str, list[dict[str, Any]]] = {}
    try:
        for rate in RATES:
            count = int(rate * duration(quick))
            for rep in range(reps):
                for label, impl, query in VARIANTS:
                    if impl not in servers:
                        continue
                    try:
                        r = h.run_load(
                            servers[impl],
                            loadgen=loadgen,
                            query=query,
                            clients=CLIENTS,
                            expect=count,
                            rate=rate,
                            deflate=False,
                            node_env=node_env,
                            chunk=1000,
                            timeout=60,
                        )
                    except Exception as exc:
                        r = {"error": str(exc)[:300]}
                    runs.setdefault(f"{rate}|{label}", []).append(r)
                log(f"  latency {rate} ev/s rep {rep + 1}/{reps}")
    finally:
        for s in servers.values():
            s.close()
    rows = []
    for key, rs in runs.items():
        rate_s, label = key.split("|")
        ok = [r for r in rs if "error" not in r and r.get("lat")]
        row: dict[str, Any] = {"rate": int(rate_s), "server": label, "reps": len(rs)}
        for q in ("p50", "p90", "p99", "p99_9"):
            row[q] = h.median(r["lat"][q] for r in ok)
        row["delivered_min"] = min((r["delivered"] or 0.0) for r in ok) if ok else None
        row["errors"] = len(rs) - len(ok)
        rows.append(row)
    by = {(r["rate"], r["server"]): r for r in rows}
    for r in rows:
        per_event = by.get((r["rate"], "wsnotebook per-event"), {}).get("p99")
        r["p99_vs_per_event"] = h.ratio(r["p99"], per_event)
        r["p99_vs_node_ws"] = h.ratio(r["p99"], by.get((r["rate"], "node-ws"), {}).get("p99"))
        r["p99_vs_websockets"] = h.ratio(r["p99"], by.get((r["rate"], "websockets"), {}).get("p99"))
    return {"rows": rows, "runs": runs, "clients": CLIENTS, "duration_s": duration(quick)}


def detail_table(rows: list[dict[str, Any]]) -> str:
    header = ["ev/s", "server", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "p99 vs websockets"]
    out = [
        [
            r["rate"],
            r["server"],
            h.fmt(r["p50"]),
            h.fmt(r["p90"]),
            h.fmt(r["p99"]),
            h.fmt(r["p99_9"]),
            h.fmt(r["p99_vs_websockets"], "x"),
        ]
        for r in rows
    ]
    return h.table(out, header)


def summary(rows: list[dict[str, Any]]) -> list[list[Any]]:
    out: list[list[Any]] = []
    by = {(r["rate"], r["server"]): r for r in rows}
    for rate in RATES:
        base = by.get((rate, "websockets"))
        for label in ("wsnotebook per-event", "wsnotebook batch=auto"):
            r = by.get((rate, label))
            if r is None:
                continue
            p99 = r["p99"]
            verdict = "" if p99 is None else ("met" if p99 <= TARGET_P99[rate] else "NOT met")
            out.append(
                [
                    "3 latency",
                    f"p99 ms @{rate // 1000}k ev/s x{CLIENTS} {label[11:]}",
                    h.fmt(p99),
                    "websockets",
                    h.fmt(base["p99"] if base else None),
                    h.fmt(r["p99_vs_websockets"], "x"),
                    f"<= {TARGET_P99[rate]:g} ms",
                    verdict,
                ]
            )
        auto = by.get((rate, "wsnotebook batch=auto"))
        if rate == 1_000 and auto is not None:
            rel = auto["p99_vs_per_event"]
            out.append(
                [
                    "2 adaptive",
                    "p99 batch=auto / per-event @1k ev/s",
                    h.fmt(rel, "x"),
                    "per-event p99",
                    h.fmt(by.get((rate, "wsnotebook per-event"), {}).get("p99")),
                    h.fmt(rel, "x"),
                    "<= 1.10x",
                    "" if rel is None else ("met" if rel <= 1.10 else "NOT met"),
                ]
            )
    return out


def main(argv: list[str] | None = None) -> None:
    h.bench_main("latency", __doc__, run, detail_table, argv)


if __name__ == "__main__":
    main()
