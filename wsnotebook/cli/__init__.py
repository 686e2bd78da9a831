"""Command line: ``python -m wsnotebook {demo,serve,send,bench}`` (also the ``wsnotebook`` script).

* ``demo``  — serve + synthetic agent events + a client, with a one-line live summary (events,
  ev/s, clients, latency p50/p99, reconnects) refreshed in place; ``--duration S`` stops by itself.
* ``serve`` — a drop-in for the seed-origin server (``--port 4000 --db events.db``); runs until
  Ctrl-C / SIGTERM.
* ``send``  — post one event (JSON on stdin, or built from flags) and print the stored event;
  exits 1 with the server's error on a 4xx/5xx reply, 3 when the server cannot be reached.
* ``bench`` — run ``benchmarks/run_all.py`` (``--quick`` and any further arguments pass through).

Exit codes: 0 success, 1 the server refused (HTTP error), 2 usage error, 3 connection failure,
130 interrupted (``demo`` stopped by Ctrl-C before its ``--duration``; for ``serve``, Ctrl-C and
SIGTERM are the normal way to stop, a clean stop exits 0).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

EXIT_OK = 0
EXIT_HTTP_ERROR = 1
EXIT_USAGE = 2
EXIT_CONNECTION = 3
EXIT_INTERRUPTED = 130


# --------------------------------------------------------------------------- helpers


class _StopSignal:
    """Turn SIGINT/SIGTERM into an event the main thread waits on (restores handlers on exit)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _StopSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum
        self.event.set()

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def wait(self, timeout: float | None) -> bool:
        return self.event.wait(timeout)


def _fmt_ms(value: Any) -> str:
    if value is None:
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-"
    if v != v:  # NaN
        return "-"
    return f"{v:.1f}ms" if v < 100 else f"{v:.0f}ms"


def _first(d: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return default


def summary_line(
    *,
    events: int,
    rate: float,
    clients: int,
    p50: float | None,
    p99: float | None,
    reconnects: int,
    sent: int,
    elapsed: float,
) -> str:
    """The demo's one-line summary (pure; tested)."""
    return (
        f"[{elapsed:6.1f}s] events {events:>8,d} | {rate:8.1f} ev/s | clients {clients:>3d} | "
        f"latency p50 {_fmt_ms(p50):>7} p99 {_fmt_ms(p99):>7} | reconnects {reconnects} | "
        f"sent {sent:,d}"
    )


# --------------------------------------------------------------------------- demo


def _client_latency(client: Any) -> tuple[float | None, float | None]:
    """(p50, p99) producer->client latency in ms from the client's metrics or its frame."""
    try:
        m = client.metrics()
    except Exception:
        m = {}
    lat = m.get("latency_ms") if isinstance(m, dict) else None
    if isinstance(lat, dict):
        p50 = _first(lat, "p50", "0.5")
        p99 = _first(lat, "p99", "0.99")
        if p50 is not None:
            return p50, p99
    p50 = _first(m, "latency_p50_ms", "p50_ms") if isinstance(m, dict) else None
    p99 = _first(m, "latency_p99_ms", "p99_ms") if isinstance(m, dict) else None
    if p50 is not None:
        return p50, p99
    try:
        row = client.frame.latency(percentiles=(0.5, 0.99)).loc["latency_ms"]
        return float(row["p50"]), float(row["p99"])
    except Exception:
        return None, None


def cmd_demo(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
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
        with _StopSignal() as stop:
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
                p50, p99 = _client_latency(client)
                line = summary_line(
                    events=total,
                    rate=rate,
                    clients=int(_first(smet, "connections", "clients", default=0)),
                    p50=p50,
                    p99=p99,
                    reconnects=int(_first(cmet, "reconnects", default=0)),
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


# --------------------------------------------------------------------------- serve


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
        with _StopSignal() as stop:
            stop.wait(None)
        print("stopping...", file=out, flush=True)
        return EXIT_OK
    finally:
        server.stop()


# --------------------------------------------------------------------------- send


def build_event(args: argparse.Namespace, stdin: TextIO) -> Any:
    """The JSON value to post: stdin when no --type/--source-app/--session-id flags are given."""
    if args.type is None and args.source_app is None and args.session_id is None:
        text = stdin.read()
        if not text.strip():
            raise ValueError(
                "no event: pipe JSON on stdin or give --source-app/--session-id/--type"
            )
        return json.loads(text)
    missing = [
        flag
        for flag, value in (
            ("--source-app", args.source_app),
            ("--session-id", args.session_id),
            ("--type", args.type),
        )
        if not value
    ]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    payload = json.loads(args.payload) if args.payload else {}
    event: dict[str, Any] = {
        "source_app": args.source_app,
        "session_id": args.session_id,
        "hook_event_type": args.type,
        "payload": payload,
    }
    if args.summary:
        event["summary"] = args.summary
    if args.model_name:
        event["model_name"] = args.model_name
    return event


def cmd_send(args: argparse.Namespace, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    from ..demo import events_url

    try:
        event = build_event(args, stdin)
        url = events_url(args.url)
        body = json.dumps(event, allow_nan=False, ensure_ascii=False).encode()
        req = urllib.request.Request(url, data=body, method="POST")
        req.host.encode("idna")  # a bad host: a usage error here, not a traceback later
        port = urllib.parse.urlsplit(url).port  # raises ValueError on a bad port
        del port
    except (ValueError, json.JSONDecodeError, UnicodeError) as exc:
        # allow_nan=False: NaN/Infinity from stdin would be posted as invalid JSON.
        print(f"wsnotebook send: {exc}", file=sys.stderr)
        return EXIT_USAGE
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "wsnotebook-send/1.0",
        "Connection": "close",
    }
    token = args.token or os.environ.get("WSNOTEBOOK_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    for name, value in headers.items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:
            reply = resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        print(f"wsnotebook send: HTTP {exc.code}: {detail}", file=sys.stderr)
        return EXIT_HTTP_ERROR
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        # HTTPException: the peer answered, but not with HTTP (a bad status line, a cut body).
        reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
        print(f"wsnotebook send: cannot reach {url}: {reason}", file=sys.stderr)
        return EXIT_CONNECTION
    try:
        print(json.dumps(json.loads(reply), indent=None if args.compact else 2), file=out)
    except ValueError:
        print(reply, file=out)
    return EXIT_OK


# --------------------------------------------------------------------------- bench


def find_bench_script(start: Path | None = None) -> Path | None:
    """``benchmarks/run_all.py`` in the current directory or the source checkout."""
    candidates = [Path.cwd(), Path(__file__).resolve().parent.parent]
    if start is not None:
        candidates.insert(0, start)
    for base in candidates:
        script = base / "benchmarks" / "run_all.py"
        if script.is_file():
            return script
    return None


def cmd_bench(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    script = find_bench_script()
    if script is None:
        print(
            "wsnotebook bench: benchmarks/run_all.py not found (run from a source checkout)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    cmd = [sys.executable, str(script)]
    if args.quick:
        cmd.append("--quick")
    cmd.extend(a for a in args.rest if a != "--")
    print("running: " + " ".join(cmd), file=out, flush=True)
    try:
        return subprocess.call(cmd, cwd=str(script.parent.parent))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


# --------------------------------------------------------------------------- parser


def _positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _seconds(text: str) -> float:
    """A period or timeout in seconds: 0.01 .. 86400 (a day)."""
    value = float(text)
    if not 0.01 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"must be in 0.01..86400 s, got {text}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"port must be in 0..65535 (0 = any free port), got {text}"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wsnotebook",
        description="Live event monitoring for Jupyter: server, demo, sender, benchmarks.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "demo",
        help="serve + synthetic agent events + a client, with a live one-line summary",
        description="Start a server, a synthetic agent-event producer and a client; print a live "
        "summary (events, ev/s, clients, latency p50/p99, reconnects). Ctrl-C stops cleanly.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=0, help="port (default 0: any free port)")
    p.add_argument("--db", default=None, help="SQLite file for the store (default: in memory)")
    p.add_argument(
        "--rate", type=_positive_float, default=50.0, help="events/s produced (default 50)"
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
        type=_positive_float,
        default=None,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.add_argument(
        "--refresh", type=_seconds, default=1.0, help="summary refresh period s (default 1)"
    )
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "serve",
        help="run a server (drop-in for the seed's observability server)",
        description="Run the HTTP + WebSocket server until Ctrl-C: POST /events, GET "
        "/events/recent, GET /events/filter-options, WebSocket /stream.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=4000, help="port (default 4000; 0 = any free)")
    p.add_argument("--db", default="events.db", help="SQLite database file (default events.db)")
    p.add_argument(
        "--memory", action="store_true", help="keep events in a bounded in-memory ring instead"
    )
    p.add_argument(
        "--token",
        default=None,
        help="bearer token required from clients (generated when binding a non-local address)",
    )
    p.set_defaults(func=cmd_serve)

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
    p.add_argument("--timeout", type=_seconds, default=10.0, help="seconds (default 10)")
    p.add_argument("--compact", action="store_true", help="print the reply on one line")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser(
        "bench",
        help="run the benchmark suite (benchmarks/run_all.py)",
        description="Run benchmarks/run_all.py; it prints a table and writes "
        "benchmarks/results/*.json. Extra arguments pass through.",
    )
    p.add_argument("--quick", action="store_true", help="fewer/shorter repetitions")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to run_all.py")
    p.set_defaults(func=cmd_bench)
    return parser


def _version() -> str:
    from .._version import __version__

    return f"wsnotebook {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    # ``bench`` passes options it does not know to run_all.py (``bench --only fanout``), with or
    # without a ``--`` first; every other command refuses them.
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.command != "bench":
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.rest = [*unknown, *args.rest]
    if getattr(args, "publish_batch", 1) < 1:
        parser.error("--publish-batch must be >= 1")
    if not 0 <= (getattr(args, "batch", None) or 0) <= 100_000:
        parser.error("--batch must be in 0..100000")
    from ..errors import WsnError

    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except WsnError as exc:
        print(f"wsnotebook {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
