"""wsnotebook's server under the bench control protocol (see benchmarks/_harness.py).

Runs ``wsnotebook.serve(port=0)`` in this process (its background loop thread, CPU budget off as
outside a kernel) and produces events with ``server.publish`` from a producer thread -- the same
path a notebook cell uses.  ``GO count rate chunk``: ``rate`` 0 publishes ``chunk``-event lists
back to back; otherwise the thread wakes every millisecond and publishes the events due.
"""

from __future__ import annotations

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
        server.publish([make_event(k) for k in range(i, i + n)])
        i += n
    return time.perf_counter() - t0


def main() -> None:
    raise_nofile()
    import psutil

    import wsnotebook as wsn

    opts = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
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
            m = dict(server.metrics())
            m["rss"] = proc.memory_info().rss
            print("STATS " + json.dumps(m, default=str), flush=True)
        elif parts[0] == "QUIT":
            break
    server.stop()


if __name__ == "__main__":
    main()
