"""The client facade: :class:`Client` (what users hold) and :func:`connect` (how they get one).

Built on the ``websockets`` library (asyncio implementation): its handshake, keepalive
ping/pong with timeout (``ping_interval``/``ping_timeout``, RTT in ``.latency``), open timeout,
permessage-deflate and exception classification are used as they are.  Our own code adds what
it does not do, one collaborator per concern, all held by the :class:`Client`:

* :class:`~.options.ClientOptions`: every option, its bound, validated in one place;
* :class:`~.session.Session`: connect / consume / reconnect with exponential backoff and full
  jitter (:class:`~wsnotebook.protocol.Backoff`, injectable RNG), keepalive RTT, wire totals;
* :class:`~.sink.MessageSink`: messages -> frame rows, lossless resume with ``?since=&epoch=``
  (:class:`~wsnotebook.protocol.ResumeState`), gap accounting;
* :class:`~.traffic.TrafficLog`, :mod:`.metering` (wire bytes), :mod:`.redact` (no token in logs).

The facade owns the state machine (``connecting`` -> ``open`` <-> ``reconnecting`` ->
``closed``; ``closed`` is final), the terminal ``error``, the blocking waits, ``metrics()`` and
the registry of running clients (strong references: a running client lives until closed).
Everything runs on the shared background loop (:mod:`wsnotebook.runtime.loop`); :func:`connect`
returns at once.  Semantics (reconnection, resume, gaps) are documented in ``docs/client.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import random
import ssl as ssl_module
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar, cast, overload

from ..errors import (
    ConfigError,
    ConnectionClosedError,
    LoopThreadError,
    WaitTimeout,
    WsnError,
)
from ..events import DEFAULT_MAX_MESSAGE_BYTES, Event, encode_json, validate_events
from ..frame import EventFrame
from ..runtime import Registry
from ..runtime import loop as _loop
from .cellcalls import CellCalls, cell_call
from .classify import ErrorCounts
from .hitl import HitlClientMixin
from .options import ClientOptions
from .redact import redact_url
from .session import STATES, Session, State
from .sink import MessageSink
from .traffic import TrafficLog
from .url import normalize_urls

__all__ = [
    "Client",
    "close_all",
    "connect",
    "connect_async",
    "running_clients",
]

log = logging.getLogger("wsnotebook")

T = TypeVar("T")


class _Forward(Generic[T]):
    """A read-only attribute of the facade kept by a collaborator: ``client.events`` reads
    ``client._sink.events`` (the counters are written on the loop thread, where they live)."""

    __slots__ = ("holder", "name")

    def __init__(self, holder: str) -> None:
        self.holder = holder
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> _Forward[T]: ...
    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> T: ...
    def __get__(self, obj: object, objtype: type | None = None) -> T | _Forward[T]:
        if obj is None:  # on the class: the descriptor itself (help(), autodoc)
            return self
        return cast(T, getattr(getattr(obj, self.holder), self.name))

    def __set__(self, obj: object, value: T) -> None:
        raise AttributeError(f"{self.name} is read-only")


class Client(HitlClientMixin):
    """A reconnecting subscriber; create it with :func:`connect`.

    Attributes: ``url``, ``frame`` (:class:`EventFrame`), ``state``, ``traffic``
    (:class:`~wsnotebook.client.TrafficLog`), ``error`` (the terminal error once it stopped
    for a non-retryable reason, else ``None``).  Thread-safe; all I/O runs on the shared
    background loop.
    """

    # Message counters (the sink's) and connection counters (the session's).
    events: _Forward[int] = _Forward("_sink")
    messages: _Forward[int] = _Forward("_sink")
    decode_failures: _Forward[int] = _Forward("_sink")
    invalid_events: _Forward[int] = _Forward("_sink")
    unknown_messages: _Forward[int] = _Forward("_sink")
    server_errors: _Forward[int] = _Forward("_sink")
    duplicates_skipped: _Forward[int] = _Forward("_sink")
    gaps: _Forward[int] = _Forward("_sink")
    gaps_open_ended: _Forward[int] = _Forward("_sink")
    gap_events_at_least: _Forward[int] = _Forward("_sink")
    connects: _Forward[int] = _Forward("_session")
    attempts: _Forward[int] = _Forward("_session")
    last_rtt_ms: _Forward[float | None] = _Forward("_session")
    last_disconnect: _Forward[str | None] = _Forward("_session")
    #: The most recent backoff delays (seconds), newest last (at most 100).
    delays: _Forward[deque[float]] = _Forward("_session")

    def __init__(
        self,
        url: Any,
        *,
        frame: EventFrame | None = None,
        max_rows: int = 1_000_000,
        token: str | None = None,
        batch: int | str | None = "auto",
        interval_ms: float | None = None,
        compression: bool | str = "auto",
        since: int | None = None,
        backoff_base: float = 0.1,
        backoff_factor: float = 2.0,
        backoff_cap: float = 10.0,
        max_attempts: int | None = None,
        stable_after: float = 5.0,
        ping_interval: float | None = 5.0,
        ping_timeout: float | None = 10.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        traffic_size: int = 100_000,
        ssl: ssl_module.SSLContext | None = None,
        rng: random.Random | None = None,
        in_process: bool | str = "auto",
        wire_format: str = "columns",
    ) -> None:
        #: every URL this client may connect to (one, or servers sharing a store to fail over
        #: between); ``url`` is the first, ``metrics()["url"]`` the one in use
        self.urls = normalize_urls(url)
        self.url = self.urls[0]
        self.options = options = ClientOptions(
            frame=frame,
            max_rows=max_rows,
            token=token,
            batch=batch,
            interval_ms=interval_ms,
            compression=compression,
            since=since,
            backoff_base=backoff_base,
            backoff_factor=backoff_factor,
            backoff_cap=backoff_cap,
            max_attempts=max_attempts,
            stable_after=stable_after,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            max_message_bytes=max_message_bytes,
            traffic_size=traffic_size,
            ssl=ssl,
            rng=rng,
            in_process=in_process,
            wire_format=wire_format,
        )
        self.frame: EventFrame = frame if frame is not None else EventFrame(max_rows=max_rows)
        self.traffic = TrafficLog(size=traffic_size)
        self._failures = ErrorCounts()
        self.errors: dict[str, int] = self._failures.counts  # failures by kind (classify.py)
        self._state: State = "connecting"
        self.error: WsnError | None = None
        self._cond = threading.Condition()
        self._sink = MessageSink(
            self.frame,
            self.traffic,
            since=since,
            failures=self._failures,
            cond=self._cond,
            clock=time.monotonic,
        )
        self._session = Session(
            self.urls,
            options,
            self._sink,
            failures=self._failures,
            set_state=self._set_state,
            stop=self._stop,
            on_exit=self._unregister,
        )
        self._task: asyncio.Task[None] | None = None
        self._future: concurrent.futures.Future[None] | None = None
        self._started = time.monotonic()

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> State:
        """``"connecting"`` (first attempt), ``"open"``, ``"reconnecting"`` or ``"closed"``."""
        return self._state

    @property
    def reconnects(self) -> int:
        """Successful connections after the first one."""
        return max(0, self._session.connects - 1)

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    @property
    def _handle(self) -> Callable[[bytes, int], None]:
        """The per-message handler the session calls (benchmarks feed it directly, and may
        replace it with a wrapper)."""
        return self._session.handle

    @_handle.setter
    def _handle(self, handler: Callable[[bytes, int], None]) -> None:
        self._session.handle = handler

    def wait_for(self, n: int, timeout: float | None = 10.0) -> bool:
        """Block the calling thread until ``frame.total`` (rows ever added) reaches ``n``.

        Returns True when reached, False when the client closed first (see ``.error``); raises
        :class:`~wsnotebook.errors.WaitTimeout` (a ``TimeoutError``) after ``timeout`` seconds
        (``None``: no limit).  Must not be called from the background loop thread (raises
        :class:`~wsnotebook.errors.LoopThreadError`, a ``RuntimeError``).
        """
        return self._wait(lambda: self.frame.total >= n, timeout, f"{n} events")

    def wait_state(self, state: str, timeout: float | None = 10.0) -> bool:
        """Block until ``state`` is reached.  True when reached; False when the client closed
        instead; :class:`~wsnotebook.errors.WaitTimeout` after ``timeout`` seconds."""
        if state not in STATES:
            raise ConfigError(f"state must be one of {STATES}, got {state!r}")
        return self._wait(lambda: self._state == state, timeout, f"state {state!r}")

    def _wait(self, pred: Callable[[], bool], timeout: float | None, what: str) -> bool:
        if _loop.in_loop_thread():
            raise LoopThreadError(
                "wsnotebook: blocking wait called from the background loop thread"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if pred():
                    return True
                if self._state == "closed":
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise WaitTimeout(
                        f"wsnotebook client: {what} not reached within {timeout} s "
                        f"(state {self._state}, {self.frame.total} events)"
                    )
                # Wake up at least every 0.25 s: the frame may be fed by others too.
                self._cond.wait(0.25 if remaining is None else min(remaining, 0.25))

    async def wait_for_async(self, n: int, timeout: float | None = 10.0) -> bool:
        """:meth:`wait_for` for async code (waits in a worker thread)."""
        return await asyncio.to_thread(self.wait_for, n, timeout)

    def publish(self, events: Event | list[Event], timeout: float = 10.0) -> None:
        """Send ``{"type":"publish","data":...}`` (the server ingests it like ``POST /events``).

        Validates locally first (:class:`~wsnotebook.errors.EventValidationError`); raises
        :class:`~wsnotebook.errors.ConnectionClosedError` when not open and
        :class:`~wsnotebook.errors.WaitTimeout` when not sent within ``timeout`` s.  Rejections
        by the server arrive asynchronously as ``error`` messages (counted in ``metrics()``).
        """
        validate_events(events)
        data = encode_json({"type": "publish", "data": events})
        if _loop.in_loop_thread():
            raise LoopThreadError("use 'await client.publish_async(...)' on the background loop")
        n = len(events) if isinstance(events, list) else 1
        try:
            _loop.run(self._send(data, n), timeout)
        except (TimeoutError, concurrent.futures.TimeoutError) as exc:
            if isinstance(exc, WsnError):
                raise
            raise WaitTimeout(
                f"wsnotebook client: publish not sent within {timeout} s (state {self._state})"
            ) from None

    async def publish_async(self, events: Event | list[Event]) -> None:
        validate_events(events)
        data = encode_json({"type": "publish", "data": events})
        n = len(events) if isinstance(events, list) else 1
        loop = _loop.get_loop()
        if asyncio.get_running_loop() is loop:
            await self._send(data, n)
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._send(data, n), loop))

    async def _send(self, data: bytes, n_events: int) -> None:
        ws = self._session.ws
        link = self._session.local.link  # in-process: the server handles it as from a socket
        if ws is None and link is not None and self._state == "open":
            await link.publish(data)
            self.traffic.record("out", "publish", len(data), n_events=n_events)
            return
        if ws is None or self._state != "open":
            raise ConnectionClosedError(f"client is {self._state}; cannot publish")
        meter = self._session.meter
        await ws.send(data, text=True)
        wire = meter.out_sizes.popleft() if meter is not None and meter.out_sizes else len(data)
        self.traffic.record("out", "publish", wire, decoded_bytes=len(data), n_events=n_events)

    def close(self, timeout: float = 5.0) -> None:
        """Stop reconnecting, close the connection (code 1000) and wait up to ``timeout`` s.

        Idempotent; safe from any thread (from the loop thread it does not wait).
        """
        self._session.closing = True
        task = self._task
        loop = _loop.get_loop()
        if task is not None and not task.done():
            loop.call_soon_threadsafe(task.cancel)
        fut = self._future
        if fut is not None and not _loop.in_loop_thread():
            try:
                fut.result(timeout)
            except (concurrent.futures.CancelledError, concurrent.futures.TimeoutError):
                pass
            except Exception:  # the run loop never raises, but never let close() fail
                log.debug("client run ended with an error", exc_info=True)
        if fut is None or fut.done():
            self._set_state("closed")
        self._unregister()

    async def aclose(self) -> None:
        """:meth:`close` for async code."""
        self._session.closing = True
        task = self._task
        if task is None:
            self._set_state("closed")
            return
        loop = _loop.get_loop()
        if asyncio.get_running_loop() is loop:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            self._unregister()
        else:
            await asyncio.to_thread(self.close)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def metrics(self) -> dict[str, Any]:
        """A snapshot of counters and gauges (see ``docs/client.md`` for each key)."""
        session, sink = self._session, self._sink
        meter = session.meter
        tcp_in = session.tcp_in + (meter.tcp_in if meter is not None else 0)
        tcp_out = session.tcp_out + (meter.tcp_out if meter is not None else 0)
        traffic = self.traffic.totals()  # O(1): stats() would walk 10 s of entries per call
        errors = self._failures.snapshot()
        tin, tout = traffic["in"], traffic["out"]
        now = time.monotonic()
        opened_at = session.opened_at
        return {
            "url": redact_url(session.url),
            "urls": [redact_url(u) for u in self.urls],
            "failovers": session.failovers,
            "state": self._state,
            "connects": session.connects,
            "reconnects": self.reconnects,
            "reconnects_per_min": session.reconnect_rate.rate() * 60.0,
            "failed_attempts": session.attempts,
            "backoff_attempts": session.backoff.attempts,
            "last_delay_s": session.delays[-1] if session.delays else None,
            "events": sink.events,
            "events_per_s": sink.rate.rate(),
            "messages": sink.messages,
            "errors": errors,
            "errors_total": sum(errors.values()),
            "decode_failures": sink.decode_failures,
            "invalid_events": sink.invalid_events,
            "unknown_messages": sink.unknown_messages,
            "server_errors": sink.server_errors,
            "duplicates_skipped": sink.duplicates_skipped,
            "gaps": sink.gaps,
            "gaps_open_ended": sink.gaps_open_ended,
            "gap_events_at_least": sink.gap_events_at_least,
            "epoch": sink.resume.epoch,
            "last_id": sink.resume.last_id,
            "server_seq": sink.server_seq,
            "last_rtt_ms": session.last_rtt_ms,
            "latency_ms": sink.latency.summary((0.5, 0.9, 0.99)),
            # live events (with a timestamp) as opposed to the initial/replayed backfill
            "live_events": sink.latency.count,
            "bytes_in_wire": tin["bytes"],
            "bytes_in_decoded": tin["decoded_bytes"],
            "bytes_out_wire": tout["bytes"],
            "compression_ratio": tin["compression_ratio"],
            "deflate": meter.deflate if meter is not None else None,
            "tcp_bytes_in": tcp_in,
            "tcp_bytes_out": tcp_out,
            "frame_rows": len(self.frame),
            "uptime_s": now - self._started,
            "connected_for_s": now - opened_at if opened_at is not None else None,
            "last_disconnect": session.last_disconnect,
            "in_process": session.local.metrics(),
            "error": repr(self.error) if self.error is not None else None,
        }

    def __repr__(self) -> str:
        return (
            f"<wsnotebook.Client {redact_url(self.url)} state={self._state} "
            f"events={self._sink.events} reconnects={self.reconnects}>"
        )

    # ------------------------------------------------------------------ lifecycle (loop thread)

    def _start_on_loop(self) -> None:
        """Create the run task; must be called on the background loop."""
        self._task = asyncio.get_running_loop().create_task(
            self._session.run(), name=f"wsn-client {self}"
        )

    def _set_state(self, state: State) -> None:
        with self._cond:
            if self._state == "closed":
                return
            self._state = state
            self._cond.notify_all()

    def _stop(self, error: WsnError | None) -> None:
        if error is not None and self.error is None:
            self.error = error
            log.error("wsnotebook client %s stopped: %s", redact_url(self.url), error)
        self._set_state("closed")

    def _unregister(self) -> None:
        _clients.remove(id(self), self)


#: Running clients by ``id(client)``: strong refs, a running client lives until closed.
_clients: Registry[Client] = Registry("clients")


def connect(url: Any, *, new: bool = False, **options: Any) -> Client:
    """Subscribe to a wsnotebook (or seed-style) ``/stream`` and return a :class:`Client` at once.

    In a notebook, re-running the same cell does not stack clients: the same call (same cell,
    line and URL) returns the client it started if that one is still running with the same
    options, and closes it and starts a new one if the options changed.  ``new=True`` always
    starts another client.

    ``url``: ``ws://host:port/stream`` (``http://`` is mapped to ``ws://``; a URL without a path
    gets ``/stream``; a server object with ``.url`` works too; a list of them: servers sharing
    one store (Redis), each reconnect goes to the next one, resuming where the last connection
    stopped).  Keyword-only options
    (defaults, bounds):

    * ``frame=None``: the :class:`EventFrame` to feed (default: a new one with ``max_rows``).
    * ``max_rows=1_000_000``: rows kept by the new frame (oldest dropped).
    * ``token=None``: sent as ``Authorization: Bearer <token>``; never logged.
    * ``batch="auto"``: ``"auto"`` (server coalesces when we lag), ``None``/``0`` (one message
      per event) or an int ``1..100000`` (fixed batches); ``interval_ms=None`` (server default
      50 ms; a whole number ``0..60000``) bounds a fixed batch's age.
    * ``compression="auto"``: negotiate permessage-deflate except on loopback (``127.0.0.0/8``,
      ``::1``, ``localhost``), where it saves no time and costs CPU on both ends (at 10k ev/s
      about a quarter of a core here, inside the kernel); ``True``/``False`` force it.
    * ``since=None``: resume after this id on the first connection (``None``: the server's
      initial snapshot of recent events).
    * ``backoff_base=0.1``, ``backoff_factor=2.0``, ``backoff_cap=10.0`` (s): the delay before
      retry ``n`` is uniform in ``[0, min(cap, base*factor**n)]`` (full jitter); the count resets
      after a connection stayed open ``stable_after=5.0`` s.  ``max_attempts=None``: retry
      forever; an int stops after that many consecutive retries (``ClientError``).
    * ``ping_interval=5.0``, ``ping_timeout=10.0`` (s, ``None`` disables): WebSocket keepalive;
      an unanswered ping drops the connection (half-open peer) and reconnects.
    * ``open_timeout=10.0`` (s): TCP + TLS + handshake; ``close_timeout=2.0`` (s).
    * ``max_message_bytes=16 MiB``: larger messages close the connection (fatal, 1009).
    * ``traffic_size=100_000``: entries kept by ``client.traffic`` (``1..10_000_000``).
    * ``ssl=None``: an :class:`ssl.SSLContext` for ``wss://``; ``rng=None``: the backoff's
      :class:`random.Random` (seed it for reproducible delays).
    * ``in_process="auto"``: when ``url`` is served by a server of this process (``serve()``),
      subscribe to it directly, without a socket: the same messages, resume, gaps and
      counters, minus WebSocket framing, loopback TCP and parsing (``metrics()["in_process"]``
      shows it in use).  Otherwise (or while that server is down) the socket path is taken.
      ``"auto"`` does so for a ``ws://`` URL unless ``batch`` (other than ``"auto"``),
      ``interval_ms``, ``compression=True`` or ``ssl`` asks for what only a socket does;
      ``True`` always tries, ``False`` never (a test of the socket itself).  ``batch``,
      ``compression``, ``ping_*`` and ``wire_format`` do not apply to it (events arrive one
      message per loop tick, its traffic entries count message bytes, there is no TCP);
      ``publish`` is handled as the server handles it from a socket.
    * ``wire_format="columns"``: ask the server for live batches as ``columns`` messages (one
      JSON array per field; appended to the frame without building rows; see
      ``docs/protocol.md``); servers that do not know it send ``batch`` messages as usual.
      ``"json"``: never ask.

    Raises :class:`~wsnotebook.errors.ClientError` for a malformed URL and
    :class:`~wsnotebook.errors.ConfigError` for an invalid option; every later failure is
    handled in the background (see ``client.state``, ``client.error``, ``client.metrics()``).
    """
    key = None if new else cell_call(url)
    if key is not None:
        old, same = _cell_clients.get(key, options)
        if old is not None and old.state != "closed":
            if same:
                return old  # re-running the cell: the running client
            old.close()  # the cell changed the options: replace, never stack
    client = _start(url, options)
    if key is not None:
        _cell_clients.put(key, client, options)
    return client


_cell_clients: CellCalls[Client] = CellCalls()


def _start(url: Any, options: dict[str, Any]) -> Client:
    # an unknown option is a ConfigError naming the options (was Client.__init__'s TypeError)
    known = [p for p in inspect.signature(Client.__init__).parameters if p not in ("self", "url")]
    for name in sorted(set(options) - set(known)):
        raise ConfigError(f"connect(): unknown option {name!r}; the options: {', '.join(known)}")
    client = Client(url, **options)
    loop = _loop.get_loop()
    if _loop.in_loop_thread():
        client._start_on_loop()
    else:
        ready = concurrent.futures.Future[None]()

        def start() -> None:
            try:
                client._start_on_loop()
                ready.set_result(None)
            except BaseException as exc:  # pragma: no cover - defensive
                ready.set_exception(exc)

        loop.call_soon_threadsafe(start)
        try:
            ready.result(10)
        except (TimeoutError, concurrent.futures.TimeoutError):
            client.close(0)
            raise WaitTimeout(
                "wsnotebook: the background loop did not start the client within 10 s"
            ) from None
    task = client._task
    assert task is not None
    client._future = _task_future(task)
    _clients.add(id(client), client)
    return client


def _task_future(task: asyncio.Task[None]) -> concurrent.futures.Future[None]:
    """A concurrent future completed when the loop task ends (for close() from other threads)."""
    fut: concurrent.futures.Future[None] = concurrent.futures.Future()

    def done(t: asyncio.Task[None]) -> None:
        if t.cancelled():
            fut.set_result(None)
        elif t.exception() is not None:
            fut.set_exception(cast(BaseException, t.exception()))
        else:
            fut.set_result(None)

    task.get_loop().call_soon_threadsafe(task.add_done_callback, done)
    return fut


async def connect_async(url: Any, **options: Any) -> Client:
    """:func:`connect` for async code: same options; the client still runs on the shared
    background loop (never on the caller's loop), so it survives the caller's loop."""
    if _loop.in_loop_thread():
        return connect(url, **options)
    return await asyncio.to_thread(connect, url, **options)


def running_clients() -> list[Client]:
    """Clients started by :func:`connect` that are not closed yet."""
    return _clients.items(lambda c: c.state != "closed")


def close_all(timeout: float = 5.0) -> int:
    """Close every running client; returns how many were closed."""
    clients = running_clients()
    for c in clients:
        c.close(timeout)
    return len(clients)


# Close clients at interpreter exit so their peers see a clean close instead of a reset.
_loop.add_shutdown_hook(close_all)
