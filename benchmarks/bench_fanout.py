"""Fan-out to 10 clients: wsnotebook's server beside a bare ``websockets`` broadcast server.

Both servers run in their own process and produce the same events flat out (~270 B stored,
~295 B per ``event`` message; see ``benchmarks/_harness.py``); one load-generator process holds
10 Python ``websockets`` clients for every server, so the client cost is equal.  Variants:

* ``websockets`` (baseline): ``websockets.broadcast`` per event, no validation/storage/queues;
* ``wsnotebook per-event`` (``?batch=0``): validation, store, per-client bounded queues;
* ``wsnotebook batch=auto`` and ``batch=100`` (``interval_ms=20``): batched delivery.

Our server runs with ``queue_size`` large enough for a whole run: the baseline buffers without
bound, while our default queue (4096 messages) drops clients that fall that far behind a
flat-out producer with close 1013 -- an overload policy, not a speed difference.

Figures: per-client delivered events/s (aggregate / clients, see ``_harness.summarize``: the
median client would flatter a server that serves its clients unevenly) and aggregate events/s,
medians of ``--reps`` (>= 3) runs interleaved across servers, each beside the baseline of the
same run.

Run: ``.venv/bin/python -m benchmarks.bench_fanout [--quick] [--reps N]``; writes
``benchmarks/results/bench_fanout.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

CLIENTS = 10
VARIANTS: list[tuple[str, str, str]] = [
    ("websockets (baseline)", "websockets", ""),
    ("wsnotebook per-event", "wsnotebook", "batch=0"),
    ("wsnotebook batch=auto", "wsnotebook", "batch=auto"),
    ("wsnotebook batch=100", "wsnotebook", "batch=100&interval_ms=20"),
]


def run(*, quick: bool = False, reps: int = 3, log: Any = print) -> dict[str, Any]:
    count = 3000 if quick else 20000
    # The bare baseline buffers without bound; our default per-client queue (4096 messages) sheds
    # clients that fall that far behind a flat-out producer (close 1013, by design).  To compare
    # delivery speed rather than overload policy, our server gets a queue that holds a whole run.
    ours_cmd = h.server_cmd("wsnotebook")[0] + [json.dumps({"queue_size": max(count, 4096)})]
    servers: dict[str, h.BenchServer] = {}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in VARIANTS}
    try:
        # Started inside the try: a failed second start must not leave the first running.
        servers["websockets"] = h.BenchServer("websockets", h.server_cmd("websockets")[0])
        servers["wsnotebook"] = h.BenchServer("wsnotebook", ours_cmd)
        for rep in range(reps):
            for label, impl, query in VARIANTS:
                try:
                    r = h.run_load(
                        servers[impl],
                        loadgen="py",
                        query=query,
                        clients=CLIENTS,
                        expect=count,
                        rate=0,
                        deflate=False,
                        node_env=None,
                        timeout=60,
                    )
                except Exception as exc:  # recorded; the run goes on
                    r = {"error": str(exc)[:300]}
                runs[label].append(r)
            log(f"  rep {rep + 1}/{reps} done")
    finally:
        for s in servers.values():
            s.close()
    rows = []
    base = runs[VARIANTS[0][0]]
    for label, _, _ in VARIANTS:
        ok = [r for r in runs[label] if "error" not in r]
        # ratio per rep against the baseline of the same rep, then the median of the ratios
        ratios = [
            h.ratio(r.get("per_client_evs"), b.get("per_client_evs"))
            for r, b in zip(runs[label], base)
            if "error" not in r and "error" not in b
        ]
        rows.append(
            {
                "server": label,
                "per_client_evs": h.median(r.get("per_client_evs") for r in ok),
                "aggregate_evs": h.median(r.get("aggregate_evs") for r in ok),
                "delivered": h.median(r.get("delivered") for r in ok),
                "vs_baseline": h.median(ratios),
                "ok_runs": len(ok),
                "closed_early": sum(int(r.get("closed_early") or 0) for r in ok),
                "errors": [r["error"] for r in runs[label] if "error" in r],
            }
        )
    return {"clients": CLIENTS, "events": count, "reps": reps, "rows": rows, "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer events per run")
    parser.add_argument("--reps", type=int, default=5, help="repetitions (>= 3), default 5")
    args = parser.parse_args()
    reps = max(3, args.reps)
    t0 = time.monotonic()
    res = run(quick=args.quick, reps=reps)
    res["machine"] = h.machine()
    res["seconds"] = round(time.monotonic() - t0, 1)
    print(f"\nFan-out to {CLIENTS} clients, {res['events']} events of ~295 B, medians of {reps}")
    print(
        h.table(
            [
                [
                    r["server"],
                    h.fmt(r["per_client_evs"]),
                    h.fmt(r["aggregate_evs"]),
                    h.fmt(r["delivered"]),
                    h.fmt(r["vs_baseline"]),
                    str(r["closed_early"]),
                ]
                for r in res["rows"]
            ],
            [
                "server",
                "per-client ev/s",
                "aggregate ev/s",
                "delivered",
                "x baseline",
                "closed early",
            ],
        )
    )
    path = h.write_json("bench_fanout", res)
    print(f"wrote {path} in {res['seconds']} s")


if __name__ == "__main__":
    main()
