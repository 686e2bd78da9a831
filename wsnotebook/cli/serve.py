"""``wsnotebook serve``: the HTTP + WebSocket server in the foreground, a drop-in for the seed
origin's observability server (``--port 4000 --db events.db``).

Runs until SIGINT or SIGTERM, both the normal way to stop: the server is stopped (its port
released, the store closed) and the exit code is 0.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from .common import EXIT_OK, StopSignal

__all__ = ["cmd_serve"]


def cmd_serve(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from ..server import serve

    store = "memory" if args.memory else f"sqlite:///{args.db}"
    kwargs: dict[str, Any] = {"host": args.host, "port": args.port, "store": store}
    if args.token:
        kwargs["token"] = args.token
    server = serve(**kwargs)
    try:
        token = getattr(server, "token", None)
        print(f"wsnotebook server listening on {server.http_url}", file=out)
        print(f"  POST {server.http_url.rstrip('/')}/events   stream {server.url}", file=out)
        print(f"  store: {store}", file=out)
        if token:
            print(f"  token: {token}  (Authorization: Bearer <token> or ?token=)", file=out)
        print("Press Ctrl-C to stop.", file=out, flush=True)
        with StopSignal() as stop:
            stop.wait(None)
        print("stopping...", file=out, flush=True)
        return EXIT_OK
    finally:
        server.stop()
