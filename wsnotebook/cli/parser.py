"""The ``wsnotebook`` argument parser and :func:`main`, the dispatcher to the commands.

Every option value is checked by the shared ``wsnotebook._validate.arg_*`` types (the same rule
as the ``%ws`` magics); a bad value or an unknown option is a usage error (exit 2, argparse's
message), except for ``bench``, which passes options it does not know on to ``run_all.py``.
A :class:`~wsnotebook.errors.WsnError` raised by a command prints one line and exits 2; Ctrl-C
outside a command's own handling exits 130.  Heavy modules are imported by the commands, not
here, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .._validate import arg_port, arg_positive_float, arg_seconds
from .bench import cmd_bench
from .common import EXIT_INTERRUPTED, EXIT_USAGE
from .demo import cmd_demo
from .record import cmd_record
from .replay import cmd_replay
from .send import cmd_send
from .serve import cmd_serve

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsnotebook",
        description="Live event monitoring for Jupyter: server, demo, sender, benchmarks.",
    )
    parser.add_argument("--version", action="version", version=version_text())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        help="serve + synthetic agent events + a client, with a live one-line summary",
        description="Start a server, a synthetic agent-event producer and a client; print a live "
        "summary (events, ev/s, clients, latency p50/p99, reconnects). Ctrl-C stops cleanly.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=arg_port, default=0, help="port (default 0: any free port)")
    p.add_argument("--db", default=None, help="SQLite file for the store (default: in memory)")
    p.add_argument(
        "--rate", type=arg_positive_float, default=50.0, help="events/s produced (default 50)"
    )
    p.add_argument(
        "--publish-batch", type=int, default=1, help="events per publish call (default 1)"
    )
    p.add_argument(
        "--batch",
        type=int,
        default=None,
        help="client ?batch=N streaming, 0 = one message per event (default: batch=auto)",
    )
    p.add_argument("--seed", type=int, default=None, help="generator seed (default random)")
    p.add_argument(
        "--duration",
        type=arg_positive_float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--refresh", type=arg_seconds, default=1.0, help="summary refresh period s (default 1)"
    )
    p.set_defaults(func=cmd_demo, parser=p)

    p = sub.add_parser(
        "serve",
        help="run a server (drop-in for the seed's observability server)",
        description="Run the HTTP + WebSocket server until Ctrl-C: POST /events, GET "
        "/events/recent, GET /events/filter-options, WebSocket /stream.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=arg_port, default=4000, help="port (default 4000; 0 = any free)")
    # one store: giving two of these is a usage error, not one silently ignored
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", default=None, help="SQLite database file (default events.db)")
    where.add_argument(
        "--memory", action="store_true", help="keep events in a bounded in-memory ring instead"
    )
    where.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="store URL instead of --db/--memory: memory, sqlite:///file.db, or "
        "redis://[:password@]host:port/db?stream=NAME (rediss:// for TLS; several servers on "
        "one Redis stream behave as one)",
    )
    p.add_argument(
        "--token",
        default=None,
        help="bearer token required from clients (generated when binding a non-local address; "
        "'' there refuses to start)",
    )
    p.add_argument(
        "--allowed-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a host name accepted in the Host header besides localhost/127.0.0.1/[::1] "
        "(DNS-rebinding guard; repeatable)",
    )
    p.add_argument(
        "--hitl-host",
        action="append",
        default=None,
        metavar="NAME",
        help="a host whose responseWebSocketUrl an answered question may be delivered to, "
        "besides loopback ('*': any; repeatable, at most 256)",
    )
    p.set_defaults(func=cmd_serve, parser=p)

    p = sub.add_parser(
        "send",
        help="post one event and print the stored event",
        description="POST an event to /events. Give JSON on stdin, or --source-app, "
        "--session-id and --type (plus optional --payload JSON). Exits 1 on an HTTP error.",
    )
    p.add_argument(
        "--url",
        default="http://127.0.0.1:4000",
        help="server URL, http(s):// or ws(s):// (default http://127.0.0.1:4000)",
    )
    p.add_argument("--source-app", default=None)
    p.add_argument("--session-id", default=None)
    p.add_argument("--type", default=None, help="hook_event_type, e.g. PreToolUse")
    p.add_argument("--payload", default=None, help="payload as a JSON object (default {})")
    p.add_argument("--summary", default=None)
    p.add_argument("--model-name", default=None)
    p.add_argument("--token", default=None, help="bearer token (or $WSNOTEBOOK_TOKEN)")
    p.add_argument(
        "--jupyter-token",
        default=None,
        help="Jupyter's token, sent as 'Authorization: token ...' (a server behind Jupyter's "
        "/proxy/PORT; a ?token= in --url works too)",
    )
    p.add_argument("--timeout", type=arg_seconds, default=10.0, help="seconds (default 10)")
    p.add_argument("--compact", action="store_true", help="print the reply on one line")
    p.set_defaults(func=cmd_send, parser=p)

    p = sub.add_parser(
        "record",
        help="capture a stream into a crash-safe Parquet recording",
        description="Subscribe to URL (reconnecting, resuming, gaps recorded) and write what "
        "arrives to --out, a Parquet dataset directory flushed in crash-safe segments. Runs "
        "until Ctrl-C/SIGTERM, --duration or --max-events.",
    )
    p.add_argument("url", help="stream URL (ws(s):// or http(s)://; Jupyter /proxy/PORT URLs too)")
    p.add_argument("--out", required=True, help="new recording path, e.g. session.parquet")
    p.add_argument("--token", default=None, help="the server's bearer token")
    p.add_argument(
        "--since",
        type=int,
        default=None,
        help="start after this id (0: everything the server retains; default: its recent "
        "snapshot, then live)",
    )
    p.add_argument(
        "--flush-interval",
        type=arg_seconds,
        default=1.0,
        help="longest seconds an event waits before it is on disk (default 1)",
    )
    p.add_argument(
        "--flush-rows", type=int, default=20_000, help="events that force a flush (default 20000)"
    )
    p.add_argument("--duration", type=arg_positive_float, default=None, help="stop after S s")
    p.add_argument("--max-events", type=int, default=None, help="stop after N events")
    p.add_argument("--quiet", action="store_true", help="no start message on stderr")
    p.set_defaults(func=cmd_record, parser=p)

    p = sub.add_parser(
        "replay",
        help="send a recording's events to a server at its original pace (scaled)",
        description="POST the events of FILE (default: the shipped demo session) to --to, "
        "keeping the original inter-arrival times divided by --speed.",
    )
    p.add_argument("file", nargs="?", default=None, help="recording (default: shipped session)")
    p.add_argument("--to", required=True, help="server URL (http(s):// or ws(s)://)")
    p.add_argument("--speed", default="10", help="time scale factor, or 'max' (default 10)")
    p.add_argument("--token", default=None, help="the target server's bearer token")
    p.add_argument("--jupyter-token", default=None, help="Jupyter's token (server behind /proxy)")
    p.add_argument(
        "--retime", action="store_true", help="stamp each event's timestamp with its send time"
    )
    p.add_argument("--batch", type=int, default=1000, help="most events per POST (default 1000)")
    p.set_defaults(func=cmd_replay, parser=p)

    p = sub.add_parser(
        "bench",
        help="run the benchmark suite (benchmarks/run_all.py)",
        description="Run benchmarks/run_all.py; it prints a table and writes "
        "benchmarks/results/*.json. Extra arguments pass through.",
    )
    p.add_argument("--quick", action="store_true", help="fewer/shorter repetitions")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to run_all.py")
    p.set_defaults(func=cmd_bench, parser=p)
    return parser


def version_text() -> str:
    """``wsnotebook X.Y.Z`` for ``--version``."""
    from .._version import __version__

    return f"wsnotebook {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # ``bench`` passes options it does not know to run_all.py (``bench --only fanout``), with or
    # without a ``--`` first; every other command refuses them.
    args, unknown = parser.parse_known_args(argv)
    command = args.parser  # usage errors show the command's usage, not the top level's
    if unknown:
        if args.command != "bench":
            command.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.rest = [*unknown, *args.rest]
    if getattr(args, "publish_batch", 1) < 1:
        command.error("--publish-batch must be >= 1")
    if not 0 <= (getattr(args, "batch", None) or 0) <= 100_000:
        command.error("--batch must be in 0..100000")
    from ..errors import WsnError

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except WsnError as exc:
        print(f"wsnotebook {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
