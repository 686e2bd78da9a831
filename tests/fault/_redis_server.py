"""A wsnotebook server on a Redis stream, run as a subprocess by the scale-out fault test
(tests/fault/test_fault_redis_scaleout.py), which SIGKILLs and restarts it.

Usage: ``python _redis_server.py --store redis://... [--port N] [--max-lifetime S]``.  Prints ONE
line of JSON to stdout once bound: ``{"port": N, "epoch": "..."}``, or ``{"error": "..."}`` (exit
2).  Then serves on 127.0.0.1 until killed, until its stdin reaches EOF (graceful stop), or for
``--max-lifetime`` seconds (default 120: it never outlives a stuck test).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-lifetime", type=float, default=120.0)
    args = parser.parse_args()

    from wsnotebook.server import serve

    try:
        srv = serve(host="127.0.0.1", port=args.port, store=args.store, heartbeat_interval=0.5)
    except Exception as exc:
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 2
    deadline = threading.Timer(args.max_lifetime, os._exit, (3,))
    deadline.daemon = True
    deadline.start()
    print(json.dumps({"port": srv.port, "epoch": srv.epoch}), flush=True)
    sys.stdin.read()  # until EOF
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
