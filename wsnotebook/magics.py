"""The IPython extension: ``%load_ext wsnotebook`` registers the ``%ws`` line magic.

::

    %ws                          help
    %ws serve [--port N] [--host H] [--store SPEC]
                                 start (or return) a background server -> ws_server
    %ws connect [URL]            reconnecting client (default: ws_server.url) -> ws_client
    %ws monitor [NAME] [--window 1m|5m|15m|all] [--by-type] [--new]
                                 live monitor widget of NAME (a Client, Server or EventFrame in the
                                 namespace; default ws_client, else ws_server) -> ws_monitor
                                 (replaces NAME's previous monitor unless --new)
    %ws demo [--rate R] [--batch N] [--max-events N]
                                 synthetic agent-hook events into ws_server -> ws_demo
    %ws demo --replay [FILE] [--speed S]
                                 replay a recording (default: the shipped session) -> ws_demo
    %ws stats                    metrics of what the extension started (a dict, shown as one
                                 line per object)
    %ws pending [NAME]           human-in-the-loop questions waiting for an answer (DataFrame) of
                                 NAME (a Client or Server; default ws_client, else ws_server)
    %ws respond ID (--yes | --no | --text T | --choice C) [--on NAME]
                                 answer question ID (as the seed dashboard would) -> the event
    %ws stop [all]               stop what the extension started; ``all``: every server, client,
                                 monitor and demo producer in the process

Each magic returns the object it made (so ``%ws monitor`` as a cell's last line displays the
widget) and binds it in the user namespace under the name shown after ``->``.  Heavy modules
(aiohttp, websockets, ipywidgets) are imported on first use.  Wrong arguments print one usage
line (an IPython ``UsageError``), never a traceback.  A magic checks its arguments and builds
the new object before it stops the one it replaces: a failed ``%ws connect 'not a url'`` or
``%ws serve --port <busy>`` leaves the running ``ws_client`` / ``ws_server`` as they were.
Loading the extension twice is harmless; ``%unload_ext wsnotebook`` stops everything wsnotebook
runs in the kernel (servers, clients, monitors, demo producers, recorders).
"""

from __future__ import annotations

import argparse
import logging
import shlex
from typing import Any, NoReturn

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from ._validate import arg_port, arg_positive_float

log = logging.getLogger("wsnotebook")

__all__ = ["WsMagics", "load_ipython_extension", "unload_ipython_extension"]

HELP = """\
%ws — wsnotebook live event monitor
  %ws serve [--port N] [--host H] [--store SPEC]   start a server            -> ws_server
  %ws connect [URL]                                client (default ws_server) -> ws_client
  %ws monitor [NAME] [--window 1m|5m|15m|all] [--by-type] [--new]
                                                   live widget               -> ws_monitor
  %ws demo [--rate R] [--batch N] [--max-events N] synthetic events into ws_server -> ws_demo
  %ws demo --replay [FILE] [--speed S]   replay a recording (default: the shipped one) instead
  %ws stats                                        metrics of what %ws started
  %ws pending [NAME]                               questions waiting for an answer
  %ws respond ID (--yes|--no|--text T|--choice C) [--on NAME]   answer question ID
  %ws stop [all]                                   stop what %ws started (all: everything)"""

_COMMANDS = (
    "serve",
    "connect",
    "monitor",
    "demo",
    "stats",
    "pending",
    "respond",
    "stop",
    "help",
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing to stderr and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message}\nusage: {self.format_usage().strip().removeprefix('usage: ')}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise UsageError(message or self.format_usage().strip())

    def print_help(self, file: Any = None) -> None:  # --help: show it, then stop via exit()
        raise UsageError(self.format_help().strip())


def _parsers() -> dict[str, _Parser]:
    p: dict[str, _Parser] = {}
    serve = p["serve"] = _Parser(prog="%ws serve", add_help=True, exit_on_error=False)
    serve.add_argument("--port", type=arg_port, default=None, help="TCP port (0 = any free port)")
    serve.add_argument("--host", default=None, help="bind address (default 127.0.0.1)")
    serve.add_argument("--store", default=None, help="'memory' or 'sqlite:///path/to/events.db'")
    connect = p["connect"] = _Parser(prog="%ws connect", exit_on_error=False)
    # "*", not "?": "%ws connect not a url" gets its own message (_cmd_connect), not argparse's
    connect.add_argument("url", nargs="*", help="ws://host:port/stream")
    mon = p["monitor"] = _Parser(prog="%ws monitor", exit_on_error=False)
    mon.add_argument("target", nargs="?", default=None, help="a name in the user namespace")
    mon.add_argument("--window", choices=("1m", "5m", "15m", "all"), default="1m")
    mon.add_argument("--by-type", action="store_true", help="one chart line per event type")
    mon.add_argument("--new", action="store_true", help="keep the previous ws_monitor running")
    demo = p["demo"] = _Parser(prog="%ws demo", exit_on_error=False)
    demo.add_argument("--rate", type=arg_positive_float, default=50.0, help="events/s (default 50)")
    demo.add_argument("--batch", type=int, default=1)
    demo.add_argument("--max-events", type=int, default=None)
    demo.add_argument("--replay", nargs="?", const="", default=None, metavar="FILE")
    demo.add_argument("--speed", default="1", help="replay time scale or 'max' (default 1)")
    p["stats"] = _Parser(prog="%ws stats", exit_on_error=False)
    pending = p["pending"] = _Parser(prog="%ws pending", exit_on_error=False)
    pending.add_argument("target", nargs="?", default=None, help="a Client or Server name")
    respond = p["respond"] = _Parser(prog="%ws respond", exit_on_error=False)
    respond.add_argument("event_id", type=int, help="the question's event id")
    answer = respond.add_mutually_exclusive_group(required=True)
    answer.add_argument("--yes", action="store_true", help="permission: true")
    answer.add_argument("--no", action="store_true", help="permission: false")
    answer.add_argument("--text", default=None, help="a free-text response")
    answer.add_argument("--choice", default=None, help="one of the question's choices")
    respond.add_argument("--on", default=None, help="a Client or Server name")
    stop = p["stop"] = _Parser(prog="%ws stop", exit_on_error=False)
    stop.add_argument("what", nargs="?", choices=("all",), default=None)
    return p


def _is_running(obj: Any) -> bool:
    if obj is None:
        return False
    running = getattr(obj, "running", None)
    if isinstance(running, bool):
        return running
    state = getattr(obj, "state", None)
    # Anything else (say, a user's own ``ws_server = "ws://..."``) is not ours to reuse.
    return state != "closed" if isinstance(state, str) else False


def _stop(obj: Any) -> None:
    for name in ("stop", "close"):
        fn = getattr(obj, name, None)
        if callable(fn):
            try:
                fn()
            except Exception:
                log.warning("%%ws stop: %s.%s() failed", type(obj).__name__, name, exc_info=True)
            return


def _preflight_serve(kwargs: dict[str, Any], current: Any) -> None:
    """Raise what ``serve(**kwargs)`` would refuse of its options, host or store, without
    touching ``current``, the running server whose port the new one takes over (stopped only
    once this passed: a command that fails must leave it running).  A failure left for the
    bind itself: a port someone else holds (the same port as ``current``'s is free then)."""
    import socket

    from .runtime import loop as _loop
    from .server import ServerOptions
    from .store import open_store

    ServerOptions.validate(**kwargs)  # bounds and the store URL's form: ConfigError
    host = kwargs.get("host")
    if host is not None and host != getattr(current, "host", None):
        try:
            family, kind, proto, _, addr = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)[0]
            with socket.socket(family, kind, proto) as probe:
                probe.bind(addr)
        except OSError as exc:
            raise UsageError(f"%ws serve: cannot bind {host}: {exc.strerror or exc}") from None
    store = kwargs.get("store")
    if store is not None and store != _store_spec(current) and store != "memory":
        opened = open_store(store, retain=1)
        try:
            _loop.run(opened.open(), timeout=30)
        except Exception as exc:
            raise UsageError(f"%ws serve: cannot open the store {store!r}: {exc}") from None
        _loop.run(opened.close(), timeout=30)


def _attached(obj: Any, server: Any) -> bool:
    """Is ``obj`` (a demo producer, a client) fed by or subscribed to ``server``?"""
    urls = (getattr(server, "url", None), getattr(server, "http_url", None))
    return getattr(obj, "server", None) is server or getattr(obj, "url", None) in urls


def _store_spec(server: Any) -> Any:
    """The store option a running server was started with (its public ``options``)."""
    return getattr(getattr(server, "options", None), "store", None)


@magics_class
class WsMagics(Magics):
    """The ``%ws`` line magic.  Keeps what it started in :attr:`started` (newest last)."""

    def __init__(self, shell: Any = None) -> None:
        super().__init__(shell)
        self.started: list[Any] = []
        self._parsers = _parsers()

    # ----------------------------------------------------------------- dispatch
    @line_magic
    def ws(self, line: str = "") -> Any:
        """wsnotebook: %ws serve|connect|monitor|demo|stats|stop (``%ws`` alone prints help)."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%ws: {exc}") from None
        if not argv or argv[0] in ("help", "-h", "--help"):
            print(HELP)
            return None
        command, rest = argv[0], argv[1:]
        if command not in self._parsers:
            raise UsageError(
                f"%ws: unknown command {command!r}; one of: {', '.join(_COMMANDS)} (try %ws)"
            )
        try:
            args = self._parsers[command].parse_args(rest)
        except argparse.ArgumentError as exc:
            usage = self._parsers[command].format_usage().strip().removeprefix("usage: ")
            raise UsageError(f"{exc}\nusage: {usage}") from None
        handler = getattr(self, f"_cmd_{command}")
        try:
            return handler(args)
        except UsageError:
            raise
        except Exception as exc:
            from .errors import WsnError

            if isinstance(exc, WsnError):  # a clear, expected failure: one line, no traceback
                raise UsageError(f"%ws {command}: {exc}") from None
            raise

    # ----------------------------------------------------------------- helpers
    @property
    def ns(self) -> dict[str, Any]:
        return self.shell.user_ns if self.shell is not None else {}

    def _track(self, obj: Any, name: str | None) -> Any:
        if all(o is not obj for o in self.started):
            self.started.append(obj)
        if name is not None:
            self.ns[name] = obj
        return obj

    def _current(self, name: str) -> Any:
        obj = self.ns.get(name)
        return obj if _is_running(obj) else None

    # ----------------------------------------------------------------- commands
    def _cmd_serve(self, args: argparse.Namespace) -> Any:
        from .server import serve

        current = self._current("ws_server")
        if current is not None and (
            args.port in (None, 0, getattr(current, "port", None))
            and args.host in (None, getattr(current, "host", None))
            and args.store in (None, _store_spec(current))
        ):
            print(f"wsnotebook server: {current.url}  (ws_server, already running)")
            return current  # re-running the cell keeps the running server
        same_port = current is not None and args.port in (None, getattr(current, "port", None))
        ours = current is not None and any(o is current for o in self.started)
        kwargs: dict[str, Any] = {}
        if args.port is not None:
            kwargs["port"] = args.port
        if args.host is not None:
            kwargs["host"] = args.host
        if args.store is not None:
            kwargs["store"] = args.store
        if same_port and ours:
            if "port" not in kwargs:
                kwargs["port"] = current.port
            _preflight_serve(kwargs, current)  # a bad host or store fails here, not after
            _stop(current)  # it holds the port the new one needs
        server = serve(**kwargs)  # fails (busy port, bad store) before the old one is touched
        if current is not None and not same_port and ours:
            _stop(current)  # replaced by the new one: never leak the old server
        if ours:
            self._detach(current, server)
        print(f"wsnotebook server: {server.url}  (ws_server)")
        return self._track(server, "ws_server")

    def _detach(self, old: Any, new: Any) -> None:
        """Stop the ws_demo / ws_client that fed or watched the replaced server ``old`` (they
        would publish into, or reconnect to, a server that is gone) and say so.  A client of
        the same URL (the new server took the old one's port) reconnects to it: kept."""
        gone = []
        for name in ("ws_demo", "ws_client"):
            obj = self._current(name)
            if name == "ws_client" and getattr(obj, "url", None) == getattr(new, "url", ""):
                continue
            if obj is not None and _attached(obj, old) and any(o is obj for o in self.started):
                _stop(obj)
                gone.append(name)
        if gone:
            print(
                f"wsnotebook: stopped {' and '.join(gone)} (attached to the replaced server "
                f"{old.url}); run %ws {' / %ws '.join(n[3:] for n in gone)} again for the new one"
            )

    def _cmd_connect(self, args: argparse.Namespace) -> Any:
        from .client import connect

        if len(args.url) > 1:
            words = " ".join(args.url)
            raise UsageError(f"%ws connect: one URL expected, got {len(args.url)} words: {words!r}")
        url = args.url[0] if args.url else None
        if url is None:
            server = self._current("ws_server")
            if server is None:
                raise UsageError("%ws connect: give a URL, or run %ws serve first")
            url = server.url
        old = self._current("ws_client")
        if old is not None and getattr(old, "url", None) == url:
            return old  # re-running the cell: keep the running client
        client = connect(url)  # a bad URL fails here, before the running client is touched
        if old is not None and any(o is old for o in self.started):
            _stop(old)
        print(f"wsnotebook client: {url}  (ws_client)")
        return self._track(client, "ws_client")

    def _cmd_monitor(self, args: argparse.Namespace) -> Any:
        from .widget import monitor

        if args.target is not None:
            if args.target not in self.ns:
                raise UsageError(f"%ws monitor: no variable {args.target!r} in the namespace")
            target = self.ns[args.target]
        else:
            target = self._current("ws_client") or self._current("ws_server")
            if target is None:
                raise UsageError(
                    "%ws monitor: nothing to monitor; run %ws serve or %ws connect URL first"
                )
        # the same target's previous monitor is replaced (closed) by monitor() itself
        mon = monitor(target, window=args.window, split_by_type=args.by_type, new=args.new)
        return self._track(mon, "ws_monitor")

    def _cmd_demo(self, args: argparse.Namespace) -> Any:
        from .demo import start_demo

        server = self._current("ws_server")
        if server is None:
            raise UsageError("%ws demo: no server; run %ws serve first")
        # Re-running the cell replaces the producer instead of adding one; the new one starts
        # first, so options it refuses (a bad rate, a missing recording) leave the old running.
        old = self._current("ws_demo")
        if args.replay is not None:  # no live agents (Binder): a captured session instead
            from .recording import replay

            handle: Any = replay(args.replay or None, server, speed=args.speed, retime=True)
            text = f"replaying {handle.source.name} into {server.url}"
        else:
            handle = start_demo(
                server, rate=args.rate, batch=args.batch, max_events=args.max_events
            )
            text = f"{args.rate:g} events/s into {server.url}"
        if old is not None:
            _stop(old)
        print(f"wsnotebook demo: {text}  (ws_demo)")
        return self._track(handle, "ws_demo")

    def _cmd_stats(self, args: argparse.Namespace) -> StatsReport:
        stats = StatsReport()
        for name in ("ws_server", "ws_client", "ws_demo"):
            obj = self.ns.get(name)
            if obj is not None and callable(getattr(obj, "metrics", None)):
                try:
                    stats[name] = obj.metrics()
                except Exception as exc:
                    stats[name] = {"error": str(exc)}
        mon = self.ns.get("ws_monitor")
        if mon is not None and hasattr(mon, "ticks"):
            stats["ws_monitor"] = {
                "running": mon.running,
                "ticks": mon.ticks,
                "sends": mon.sends,
                "errors": mon.errors,
            }
        return stats

    def _answerer(self, name: str | None) -> Any:
        """The Client or Server named ``name`` (default ws_client, else ws_server)."""
        for candidate in [name] if name else ["ws_client", "ws_server"]:
            obj = self.ns.get(candidate)
            if obj is not None and callable(getattr(obj, "respond", None)):
                return obj
            if name:
                raise UsageError(f"%ws: {name!r} is not a wsnotebook Client or Server")
        raise UsageError("%ws: no ws_client or ws_server (run %ws connect or %ws serve first)")

    def _cmd_pending(self, args: argparse.Namespace) -> Any:
        return self._answerer(args.target).pending()

    def _cmd_respond(self, args: argparse.Namespace) -> Any:
        target = self._answerer(args.on)
        if args.yes or args.no:
            return target.respond(args.event_id, permission=bool(args.yes))
        if args.text is not None:
            return target.respond(args.event_id, response=args.text)
        return target.respond(args.event_id, choice=args.choice)

    def _cmd_stop(self, args: argparse.Namespace) -> int:
        n = self.stop_started()
        if args.what == "all":
            n += stop_everything()
        print(f"wsnotebook: stopped {n} object(s)")
        return n

    def stop_started(self) -> int:
        """Stop what this extension started, newest first (monitors, demo, clients, servers)."""
        n = 0
        while self.started:
            obj = self.started.pop()
            if _is_running(obj):
                n += 1
            _stop(obj)
        return n


class StatsReport(dict[str, Any]):
    """What ``%ws stats`` returns: the metrics of each object ``%ws`` started, by name.  As a
    cell's result (IPython's pretty printer) and in ``print()`` it reads as one line per object;
    ``repr`` stays the dict's.  (It used to print those lines and also return the dict, which
    a cell ending in ``%ws stats`` then showed a second time, as the whole nested dict.)"""

    def __str__(self) -> str:
        if not self:
            return "%ws stats: nothing started yet (try %ws serve)"
        return "\n".join(
            f"{name}: " + ", ".join(f"{k}={_short(v)}" for k, v in metrics.items())
            for name, metrics in self.items()
        )

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(str(self))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    text = repr(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:39] + "…"


def stop_everything() -> int:
    """Stop every monitor, demo producer, client and server of the process (imported modules
    only: nothing is imported just to stop it).  Returns how many producers/monitors/objects
    reported running; errors are logged, never raised."""
    import sys

    n = 0
    # The subpackages' public interfaces (their ``__init__``), looked up by name so that a
    # process that never imported, say, the widgets does not import them here.
    # Monitors last: their final rows then include everything the stopped sources delivered.
    for module, names in (
        ("wsnotebook.demo", ("active_producers", "stop_all")),
        ("wsnotebook.recording", ("running", "stop_all")),
        ("wsnotebook.client", ("running_clients", "close_all")),
        ("wsnotebook.server", ("running_servers", "stop_all")),
        ("wsnotebook.widget", ("running_monitors", "stop_all")),
    ):
        mod = sys.modules.get(module)
        if mod is None:
            continue
        running, stop = getattr(mod, names[0], None), getattr(mod, names[1], None)
        try:
            if callable(running):
                n += len(running())
            if callable(stop):
                stop()
        except Exception:
            log.warning("%%ws stop all: %s.%s() failed", module, names[1], exc_info=True)
    return n


_magics: WsMagics | None = None


def load_ipython_extension(ip: Any) -> None:
    """Register the ``%ws`` magic (``%load_ext wsnotebook``); loading twice is harmless."""
    global _magics
    existing = ip.magics_manager.registry.get("WsMagics")
    if isinstance(existing, WsMagics):
        _magics = existing
        return
    _magics = WsMagics(ip)
    ip.register_magics(_magics)


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext wsnotebook``: stop what the extension started and drop the magic."""
    global _magics
    magics = ip.magics_manager.registry.get("WsMagics")
    if isinstance(magics, WsMagics):
        magics.stop_started()
        ip.magics_manager.registry.pop("WsMagics", None)
        ip.magics_manager.magics["line"].pop("ws", None)
    stop_everything()  # what wsnotebook runs in the kernel, started by %ws or not
    _magics = None
