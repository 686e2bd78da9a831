"""``wsnotebook demo``: a server, a synthetic agent-event producer and a client in one process,
with a one-line live summary refreshed every ``--refresh`` seconds.

Bounds: the last wait ends with ``--duration`` (never rounded up to the refresh period); after
the producer stops, the final count waits at most 5 s for the events still in flight.  On a
terminal the summary is redrawn in place (``\\r``), otherwise one line per refresh.  Whatever
happens, the producer, the client and the server are stopped before returning.  Exit code:
130 when stopped by Ctrl-C, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import time
from typing import Any, TextIO

from .common import EXIT_INTERRUPTED, EXIT_OK, StopSignal
from .summary import client_latency, first, summary_line

__all__ = ["cmd_demo"]


def cmd_demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    # Imported here: ``wsnotebook --help`` must not pay for aiohttp/websockets/pandas.
    from .. import demo as _demo
    from ..client import connect
    from ..server import serve

    store = f"sqlite:///{args.db}" if args.db else "memory"
    server = serve(host=args.host, port=args.port, store=store)
    producer = None
    client = None
    tty = out.isatty()
    try:
        url = server.url
        print(f"wsnotebook demo: server {server.http_url}  stream {url}", file=out, flush=True)
        connect_kwargs: dict[str, Any] = {}
        if args.batch is not None:
            connect_kwargs["batch"] = args.batch
        client = connect(url, **connect_kwargs)
        producer = _demo.DemoProducer(
            server, rate=args.rate, batch=args.publish_batch, seed=args.seed
        )
        start = time.monotonic()
        last_total, last_t = 0, start
        rate = 0.0
        with StopSignal() as stop:
            while True:
                wait = args.refresh
                if args.duration is not None:  # the last wait ends with the duration
                    wait = max(0.0, min(wait, start + args.duration - time.monotonic()))
                interrupted = stop.wait(wait)
                now = time.monotonic()
                total = int(getattr(client.frame, "total", len(client.frame)))
                dt = now - last_t
                if dt > 0:
                    rate = (total - last_total) / dt
                last_total, last_t = total, now
                try:
                    smet = server.metrics()
                except Exception:
                    smet = {}
                try:
                    cmet = client.metrics()
                except Exception:
                    cmet = {}
                p50, p99 = client_latency(client)
                line = summary_line(
                    events=total,
                    rate=rate,
                    clients=int(first(smet, "connections", "clients", default=0)),
                    p50=p50,
                    p99=p99,
                    reconnects=int(first(cmet, "reconnects", default=0)),
                    sent=producer.sent,
                    elapsed=now - start,
                )
                if tty:
                    out.write("\r\x1b[2K" + line)
                else:
                    out.write(line + "\n")
                out.flush()
                if interrupted or (args.duration is not None and now - start >= args.duration):
                    break
        if tty:
            out.write("\n")
        producer.stop()
        # Events still in flight reach the client before the final count (bounded wait).
        with contextlib.suppress(TimeoutError):
            client.wait_for(producer.sent, timeout=5.0)
        print(
            f"done: produced {producer.sent:,d} events, client received "
            f"{int(getattr(client.frame, 'total', 0)):,d}, producer errors {producer.errors}",
            file=out,
            flush=True,
        )
        return EXIT_INTERRUPTED if stop.signum == signal.SIGINT else EXIT_OK
    finally:
        if producer is not None:
            producer.stop()
        if client is not None:
            client.close()
        server.stop()
