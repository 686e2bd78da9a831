"""A wsnotebook server on a SQLite file, run as a subprocess by the crash tests
(tests/fault/test_fault_crash.py), which SIGKILL it.

Usage: ``python _crash_server.py --db FILE [--port N] [--max-lifetime S]``.  Prints ONE line of
JSON to stdout once bound: ``{"port": N, "epoch": "..."}``, or ``{"error": "..."}`` (exit 2) when
the server cannot start (e.g. the store's lock is still held).  Then serves on 127.0.0.1 until it
is killed, its stdin reaches EOF (the test closed it, or the test process died: graceful stop),
or ``--max-lifetime`` seconds passed (default 120: it never outlives a stuck test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-lifetime", type=float, default=120.0)
    args = parser.parse_args()

    from wsnotebook.server import serve

    try:
        srv = serve(
            host="127.0.0.1", port=args.port, store=f"sqlite:///{args.db}", heartbeat_interval=0.5
        )
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 2
    deadline = threading.Timer(args.max_lifetime, os._exit, (3,))
    deadline.daemon = True
    deadline.start()
    port = int(srv.url.rsplit(":", 1)[1].split("/", 1)[0])
    print(json.dumps({"port": port, "epoch": srv.store.epoch}), flush=True)
    sys.stdin.read()  # until EOF
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
