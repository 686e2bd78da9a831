"""wsnotebook's server under the bench control protocol (see benchmarks/_harness.py).

Runs ``wsnotebook.serve(port=0)`` in this process (its background loop thread, CPU budget off as
outside a kernel) and produces events from a producer thread with ``server.publish_nowait`` --
the path a notebook cell producing a flood uses (validates in the caller's thread, never waits
for the loop).  ``GO count rate chunk``: ``rate`` 0 hands over ``chunk``-event lists back to
back; otherwise the thread wakes every millisecond and hands over the events due.  When the
server refuses part of a list (``NOWAIT_MAX_PENDING`` accepted events not yet ingested), the
producer waits 0.5 ms and offers the rest again: backpressure, never a drop.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import make_event


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def produce(server: Any, count: int, rate: float, chunk: int) -> float:
    t0 = time.perf_counter()
    i = 0
    while i < count:
        if rate > 0:
            due = min(count, int((time.perf_counter() - t0) * rate) + 1)
            n = min(due - i, chunk)
            if n <= 0:
                time.sleep(0.001)
                continue
        else:
            n = min(chunk, count - i)
        events = [make_event(k) for k in range(i, i + n)]
        while events:
            taken = server.publish_nowait(events)
            if taken < len(events):
                events = events[taken:]
                time.sleep(0.0005)
            else:
                events = []
        i += n
    return time.perf_counter() - t0


def main() -> None:
    raise_nofile()
    import psutil

    import wsnotebook as wsn

    opts = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    # Every load generator connects from 127.0.0.1: the per-IP handshake rate limit (a defence
    # against one abusive address) would otherwise refuse the 100- and 1,000-client runs.
    opts.setdefault("connect_rate", 0)
    server = wsn.serve(port=0, **opts)
    port = int(server.url.split(":")[2].split("/")[0])
    print(f"PORT {port}", flush=True)
    proc = psutil.Process()
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "GO":
            count, rate, chunk = int(parts[1]), float(parts[2]), int(parts[3])

            def job(count: int = count, rate: float = rate, chunk: int = chunk) -> None:
                secs = produce(server, count, rate, chunk)
                print(f"DONE {count} {secs:.4f}", flush=True)

            threading.Thread(target=job, daemon=True).start()
        elif parts[0] == "STATS":
            # "STATS gc" (RSS reads): collect garbage first, like the baselines do
            collect = parts[1:] == ["gc"]
            if collect:
                gc.collect()
            m = dict(server.metrics())
            m["rss"] = proc.memory_info().rss
            if collect:
                m["gc"] = True
            print("STATS " + json.dumps(m, default=str), flush=True)
        elif parts[0] == "QUIT":
            break
    server.stop()


if __name__ == "__main__":
    main()
