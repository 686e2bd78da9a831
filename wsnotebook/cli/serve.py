"""``wsnotebook serve``: the HTTP + WebSocket server in the foreground, a drop-in for the seed
origin's observability server (``--port 4000 --db events.db``).

Runs until SIGINT or SIGTERM, both the normal way to stop: the server is stopped (its port
released, the store closed) and the exit code is 0.  Tokens follow ``serve()``: on a
non-loopback ``--host`` without ``--token`` one is generated and printed once; ``--token ""``
there refuses to start (exit 2, one line).  ``--allowed-host NAME`` (repeatable) adds names
accepted in the ``Host`` header (``serve(allowed_hosts=...)``); ``--hitl-host NAME``
(repeatable, ``*`` for any) a host answered questions may be delivered to
(``serve(hitl_hosts=...)``).  ``--store URL`` takes any ``serve(store=...)`` URL
(``redis://...``: several servers on one stream); a bad URL or an unreachable Redis is one error
line (exit 2), its password never printed.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from .common import EXIT_OK, StopSignal

__all__ = ["cmd_serve"]


def cmd_serve(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    from ..server import serve
    from ..store import safe_store_url

    # argparse refuses two of --db/--memory/--store; none: the seed's events.db
    store = args.store or ("memory" if args.memory else f"sqlite:///{args.db or 'events.db'}")
    kwargs: dict[str, Any] = {"host": args.host, "port": args.port, "store": store}
    # --token "" is passed on as given: serve() refuses it on a non-loopback host (ConfigError:
    # exit 2 with one line) instead of silently generating a token
    if args.token is not None:
        kwargs["token"] = args.token
    if args.allowed_host:
        kwargs["allowed_hosts"] = args.allowed_host
    if getattr(args, "hitl_host", None):
        kwargs["hitl_hosts"] = args.hitl_host
    server = serve(**kwargs)
    try:
        token = getattr(server, "token", None)
        print(f"wsnotebook server listening on {server.http_url}", file=out)
        print(f"  POST {server.http_url.rstrip('/')}/events   stream {server.url}", file=out)
        print(f"  store: {safe_store_url(store)}", file=out)  # never a password
        if token:
            # a generated token was printed once by serve() (stdout, never logged); a given
            # one is not echoed
            origin = "generated, printed above" if args.token is None else "as given"
            print(
                f"  token: required ({origin}; Authorization: Bearer <token> or ?token=)", file=out
            )
        with StopSignal() as stop:  # installed first: a Ctrl-C right after the line stops us
            print("Press Ctrl-C to stop.", file=out, flush=True)
            stop.wait(None)
        print("stopping...", file=out, flush=True)
        return EXIT_OK
    finally:
        server.stop()
