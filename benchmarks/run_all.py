"""Run every wsnotebook benchmark, print ONE table, write ``benchmarks/results/all.json``.

Usage: ``python benchmarks/run_all.py [--quick] [--reps N] [--only fanout,latency,...]``
(``python -m wsnotebook bench [--quick]`` runs this).  Every figure sits beside a baseline
measured in the same run (medians of >= 3 reps and their ratio); traffic stays on 127.0.0.1 and
every process is bounded by timeouts.  ``--quick`` runs the same suite at small sizes (< 2 min);
the full run takes about 10 minutes on 2 cores.  The Node ``ws`` baselines install the pinned
``ws`` into ``benchmarks/.node`` on first use (npm registry); without node they are skipped and
the table says so.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h
import bench_client
import bench_fanout_matrix
import bench_ingest
import bench_kernel
import bench_latency
import bench_memory
import bench_monitor
import bench_redis
import bench_soak

SUITE = {
    "fanout": bench_fanout_matrix,
    "latency": bench_latency,
    "client": bench_client,
    "ingest": bench_ingest,
    "kernel": bench_kernel,
    "memory": bench_memory,
    "soak": bench_soak,
    "redis": bench_redis,
    "monitor": bench_monitor,
}

HEADER = ["#", "measure", "wsnotebook", "baseline", "baseline value", "ratio", "target", "verdict"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, < 2 minutes")
    ap.add_argument(
        "--reps",
        type=int,
        default=None,
        help="repetitions per figure (>= 3 for a full run; --quick defaults to 1)",
    )
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ",".join(SUITE))
    args = ap.parse_args(argv)
    # A full run quotes medians of >= 3 reps.  --quick is a look, not a quote: one rep by
    # default so the whole suite fits in about two minutes on 2 cores.
    reps = (args.reps or 1) if args.quick else max(3, args.reps or 3)
    names = [n for n in args.only.split(",") if n] or list(SUITE)
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        ap.error(f"unknown benchmark(s): {', '.join(unknown)}")
    started = time.monotonic()
    node_env = h.ensure_node(log)
    results: dict[str, Any] = {}
    rows: list[list[Any]] = []
    details: list[str] = []
    for name in names:
        mod = SUITE[name]
        t0 = time.monotonic()
        log(f"== {name}")
        try:
            res = mod.run(quick=args.quick, reps=reps, node_env=node_env, log=log)
        except Exception as exc:  # one broken benchmark must not hide the others
            log(traceback.format_exc())
            results[name] = {"error": repr(exc)}
            rows.append([name, "FAILED: " + repr(exc)[:80], "", "", "", "", "", ""])
            continue
        res["seconds"] = round(time.monotonic() - t0, 1)
        results[name] = res
        rows.extend(mod.summary(res["rows"]))
        details.append(f"{name} ({res['seconds']} s)\n{mod.detail_table(res['rows'])}")
        log(f"   {name}: {res['seconds']} s")
    total = round(time.monotonic() - started, 1)
    rows.sort(key=lambda r: str(r[0]))
    table = h.table(rows, HEADER)
    print("\n\n".join(details))
    print()
    print(
        f"wsnotebook benchmarks ({'quick' if args.quick else 'full'}, medians of {reps} reps, "
        f"{total} s{'' if node_env else ', Node baselines SKIPPED'})"
    )
    print(table)
    path = h.write_json(
        "all",
        {
            "machine": h.machine(),
            "quick": args.quick,
            "reps": reps,
            "seconds": total,
            "node": node_env is not None,
            "table": table,
            "summary": [dict(zip(HEADER, r)) for r in rows],
            "results": results,
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
