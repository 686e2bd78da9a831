"""The kernel bench's pipeline in its own process: the reference row of ``bench_kernel.py``.

Runs what the in-kernel scenarios run -- ``wsnotebook.serve(port=0)``, the demo producer
(``start_demo(rate, batch)``) and one ``wsnotebook.connect`` client (default ``batch="auto"``) --
in this process, outside any kernel (no CPU budget), with no monitor (nothing to display it).
Prints ``ready`` once events flow, then runs until stdin closes (or ``limit`` seconds) and
prints one JSON line: events/s the client received and this process's CPU share.  The kernel
bench times an idle kernel's cells meanwhile: same work, same machine, no shared GIL.

Usage: ``python _pipeline_proc.py RATE BATCH [LIMIT_S]``.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time


def main() -> None:
    rate, batch = float(sys.argv[1]), int(sys.argv[2])
    limit = float(sys.argv[3]) if len(sys.argv) > 3 else 120.0
    import wsnotebook as wsn
    from wsnotebook import demo

    srv = wsn.serve(port=0)
    cli = wsn.connect(srv.url, max_rows=200_000, in_process=False)  # the socket, as before
    cli.wait_state("open", timeout=30)
    prod = demo.start_demo(srv, rate=rate, batch=batch)
    if not cli.wait_for(1000, timeout=60):
        raise SystemExit("pipeline: no events reached the client")
    t0, n0, c0 = time.monotonic(), cli.frame.total, time.process_time()
    print("ready", flush=True)
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    closed.wait(limit)
    dt = time.monotonic() - t0
    out = {
        "client_evs": (cli.frame.total - n0) / dt,
        "cpu_share": round((time.process_time() - c0) / dt, 3),
        "producer_wakeups": prod.metrics().get("wakeups"),
    }
    print(json.dumps(out), flush=True)
    prod.stop()
    cli.close()
    srv.stop()
    os._exit(0)  # the bench waits on this process; don't linger in interpreter teardown


if __name__ == "__main__":
    main()
