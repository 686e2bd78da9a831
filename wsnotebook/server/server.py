"""The kernel-side server: HTTP ingest + WebSocket stream on one port (aiohttp).

``serve()`` starts a :class:`Server` on the shared background loop (:mod:`wsnotebook.runtime.loop`)
and returns as soon as the port is bound.  The wire protocol is documented in
``docs/protocol.md``.  This module owns the app lifecycle (bind, runner, stop, heartbeats) and
the registry of running servers; the rest lives in one module per responsibility:

* :mod:`.start`: ``serve()`` (idempotent per port), ``running_servers``, ``stop_all``.
* :mod:`.options`: ``ServerOptions``, the options with their bounds, validated in one place.
* :mod:`.ingest`: the publish paths (``publish``, ``publish_nowait``) and the ingest.
* :mod:`.broadcast`: the fan-out to every connection and the per-tick write coalescing.
* :mod:`.connection` / :mod:`.writer`: one subscriber's bounded send queue, direct writes,
  replay, writer task and close.
* :mod:`.http` / :mod:`.ws`: the HTTP endpoints (CORS, token) and the ``/stream`` handler.
* :mod:`.metrics`: the counters and their Prometheus text;  :mod:`.wire`: frames (pure).

Design notes:

* **Encode once.**  Each stored event is JSON-encoded once by the store; the ``event`` message
  around it is built once per broadcast and the same bytes go to every client.
* **Backpressure.**  Every client has a bounded send queue (``queue_size`` messages and
  ``max_queue_bytes`` bytes) drained by its own writer task.  While a client keeps up and its
  socket buffer is below 64 KiB, a broadcast takes the direct path (no task switch): the frames
  handed to the client during one loop tick are joined and written with ONE ``transport.write``
  at the end of the tick (``loop.call_soon``; early at 256 KiB / 1000 events), and a
  ``batch=auto`` client gets that tick's events as one ``batch`` (a lone event stays an
  ``event``).  When the socket backs up, messages queue (a ``batch=auto`` client's queued single
  events form runs of <= 1000 events / 1 MiB, each sent and counted as one message); when the
  queue overflows, the client is dropped with close code 1013 (it may resume with ``?since=``)
  and counted in ``metrics()["dropped_slow_clients"]``.  A slow client never stalls the others
  and never grows memory past its bound.
* **Producers in other threads** use :meth:`Server.publish_nowait` (validate in the caller,
  ingest scheduled with ``call_soon_threadsafe``; batches waiting together are ingested as
  one store append, at most ``NOWAIT_SLICE`` events per loop callback).
* **No tracebacks into the kernel.**  Handler and task errors are logged on the ``wsnotebook``
  logger and counted in ``metrics()["errors"]``.
* **Registry.**  ``serve()`` registers a started server under ``(host, bound port)`` in
  ``SERVERS``; ``stop`` unregisters it (only itself, never a newer server on that port).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import logging
import re
import socket
import ssl
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from ..errors import (
    ConfigError,
    LoopThreadError,
    PortInUseError,
    ServerError,
    WaitTimeout,
)
from ..events import (
    encode_json,
    now_ms,
)
from ..protocol import CLOSE_GOING_AWAY, event_room
from ..runtime import Registry
from ..runtime import loop as _loop
from ..store import DEFAULT_RETAIN_BYTES, Store, open_store
from .admission import ACCEPT_BURST, Admission
from .broadcast import Broadcaster
from .feed import make_broadcaster
from .hitl import HitlMixin
from .hitl_rules import normalise_hitl_hosts
from .http import HttpMixin
from .ingest import IngestMixin
from .metrics import ServerCounters
from .options import (
    DEFAULT_CONNECT_BURST,
    DEFAULT_CONNECT_RATE,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_OPEN_CONNECTIONS,
    ServerOptions,
)
from .public import PublicUrls, public_urls
from .themes import ThemesMixin
from .ws import StreamMixin

__all__ = ["SERVERS", "Server"]

log = logging.getLogger("wsnotebook")

#: Most bytes stamping adds to an event's JSON beyond ``max_event_bytes`` (``id``,
#: ``server_received`` and a filled ``timestamp``, with their keys; ~101 at most): an event of
#: the largest accepted size must still fit one message.
STAMP_BYTES = 128
PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")


class Server(IngestMixin, HttpMixin, StreamMixin, HitlMixin, ThemesMixin):
    """A running (or stopped) wsnotebook server.  Create it with :func:`serve`.

    Attributes: ``url`` (``ws://host:port/stream``, ``wss://`` with TLS), ``http_url``,
    ``host``, ``port``, ``token`` (``None`` when open), ``epoch`` (the store's), ``running``,
    ``store``.  Methods: :meth:`publish`, :meth:`publish_nowait`, :meth:`metrics`, :meth:`stop`
    (and async variants).
    """

    def __init__(
        self,
        *,
        host: str,
        port: int,
        store: str | Store,
        token: str | None,
        allowed_origins: Iterable[str] | None,
        allowed_hosts: Iterable[str] | None = None,
        initial_limit: int,
        retain: int,
        max_event_bytes: int,
        max_message_bytes: int,
        max_batch_events: int,
        max_connections: int,
        queue_size: int,
        max_queue_bytes: int,
        heartbeat_interval: float,
        ssl_context: ssl.SSLContext | None,
        certfile: str | None,
        keyfile: str | None,
        compression: bool = True,
        connect_rate: float = DEFAULT_CONNECT_RATE,
        connect_burst: int = DEFAULT_CONNECT_BURST,
        retain_bytes: int = DEFAULT_RETAIN_BYTES,
        max_open_connections: int = DEFAULT_MAX_OPEN_CONNECTIONS,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
        hitl_hosts: Iterable[str] | None = None,
    ) -> None:
        self.host = host
        self.compression = compression
        self.port = port
        self.token = token
        self.initial_limit = initial_limit
        # An event must fit in one message once stamped (no message we send may exceed
        # max_message_bytes): a larger max_event_bytes is lowered to that.
        self.max_event_bytes = min(max_event_bytes, event_room(max_message_bytes) - STAMP_BYTES)
        self.max_message_bytes = max_message_bytes
        self.max_batch_events = max_batch_events
        self.max_connections = max_connections
        self.queue_size = queue_size
        self.max_queue_bytes = max_queue_bytes
        self.heartbeat_interval = heartbeat_interval
        self._init_http(allowed_origins, allowed_hosts)
        # the certificate this server presents, when it loaded it from certfile (PEM): lets
        # client_ssl_context() trust exactly it (an ssl.SSLContext cannot be asked for it)
        self._own_cert_pem: str | None = None
        if ssl_context is None and certfile:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                ctx.load_cert_chain(certfile, keyfile)
                with open(certfile, encoding="ascii", errors="replace") as fh:
                    pem = PEM_CERT.search(fh.read())
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"certfile/keyfile: cannot load: {exc}") from None
            ssl_context = ctx
            self._own_cert_pem = pem.group(0) if pem else None
        self.ssl_context = ssl_context
        self.store: Store = open_store(store, retain=retain, retain_bytes=retain_bytes)
        self.store.max_event_bytes = self.max_event_bytes
        self.running = False
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = 0.0
        #: the options serve() started this server with (None when built directly)
        self.options: ServerOptions | None = None
        self.counters = ServerCounters()
        # fed by the store when it feeds (Redis: the stream's order, every server's events)
        self.broadcaster: Broadcaster = make_broadcaster(self.store, self.counters)
        self._init_stream(connect_rate, connect_burst)
        self._init_ingest()
        self._init_hitl(normalise_hitl_hosts(hitl_hosts))
        self._admission = Admission(max_open_connections, header_timeout, keepalive_timeout)

    # ---------------------------------------------------------------- properties
    @property
    def epoch(self) -> str:
        return self.store.epoch

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context else "ws"
        return f"{scheme}://{self._netloc()}/stream"

    def client_ssl_context(self) -> ssl.SSLContext | None:
        """A client-side SSL context for connecting to this server (``None`` without TLS).

        Served from ``certfile``: a new context that trusts exactly that certificate (pinned,
        whatever CA issued it and whichever names it carries: the server's own address is what
        ``url`` points at, e.g. ``127.0.0.1`` for a server bound to ``0.0.0.0``).  Served from
        an ``ssl_context``, whose certificate cannot be read back: the system's default trust
        store (``ssl.create_default_context()``); pass your own context to ``connect(ssl=...)``
        / ``monitor(ssl=...)`` for a certificate the system does not trust.  ``monitor(server)``
        uses this to connect its loopback client.
        """
        if self.ssl_context is None:
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self._own_cert_pem is not None:
            # the pinned leaf is a trust anchor of its own (no chain up to a root needed)
            ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
            ctx.check_hostname = False
            ctx.load_verify_locations(cadata=self._own_cert_pem)
        return ctx

    @property
    def http_url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self._netloc()}"

    @property
    def public_urls(self) -> PublicUrls | None:
        """The URLs of this server through the kernel's Jupyter server (jupyter-server-proxy:
        ``<jupyter>/proxy/<port>/events`` and ``/stream``), ``None`` outside Jupyter; see
        :mod:`.public`."""
        return public_urls(self.port)

    def _netloc(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "", "::"):
            host = "127.0.0.1"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"{host}:{self.port}"

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<wsnotebook.Server {self.url} {state} store={self.store.kind}>"

    # ---------------------------------------------------------------- lifecycle
    async def start_async(self) -> None:
        """Bind the port and start serving (on the running loop).  Raises PortInUseError,
        StoreError, ServerError."""
        self._loop = asyncio.get_running_loop()
        sock = self._bind()
        try:
            await self.store.open()
        except BaseException:
            sock.close()
            raise
        try:
            app = web.Application(
                client_max_size=self.max_message_bytes,
                middlewares=[self._middleware],  # admission marks requests busy in it
            )
            app.router.add_post("/events", self._post_events)
            app.router.add_get("/events/recent", self._get_recent)
            app.router.add_get("/events/filter-options", self._get_filter_options)
            app.router.add_get("/stream", self._stream)
            app.router.add_get("/health", self._get_health)
            app.router.add_get("/metrics", self._get_metrics)
            self._add_hitl_routes(app)  # POST /events/<id>/respond
            self._add_theme_routes(app)  # /api/themes...
            app.on_shutdown.append(self._on_shutdown)
            runner = web.AppRunner(
                app,
                access_log=None,
                handle_signals=False,
                shutdown_timeout=2.0,
                logger=self.aiohttp_log,  # malformed requests: one rate-limited line each
            )
            await runner.setup()
            site = web.SockSite(runner, sock, ssl_context=self.ssl_context, backlog=ACCEPT_BURST)
            await site.start()
            self._admission.install(runner, sock)  # no await since start(): no conn yet
        except BaseException:
            sock.close()
            await self.store.close()
            raise
        self._runner = runner
        self.broadcaster.broadcast_last = self.store.last_id
        self.running = True
        self._started = time.monotonic()
        if self.heartbeat_interval > 0:
            self._heartbeat_task = asyncio.ensure_future(self._heartbeats())

    def _bind(self) -> socket.socket:
        try:
            infos = socket.getaddrinfo(
                self.host or None, self.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: e.g. "a..b" (IDNA)
            raise ConfigError(f"host: cannot resolve {self.host!r}: {exc}") from None
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(1024)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                raise PortInUseError(self.host, self.port) from None
            raise ServerError(f"cannot bind {self.host}:{self.port}: {exc}") from None
        self.port = sock.getsockname()[1]
        return sock

    async def stop_async(self) -> None:
        """Close every connection (1001), free the port, close the store.  Idempotent; a second
        call while the first is running waits for it."""
        if self._stopping is not None:
            await asyncio.shield(self._stopping)
            return
        if not self.running:
            return
        self._stopping = asyncio.get_running_loop().create_future()
        try:
            await self._stop_now()
        finally:
            self._stopping.set_result(None)

    async def _stop_now(self) -> None:
        self.running = False  # publish/publish_nowait refuse from here on
        await self._ingest_pending_nowait()
        SERVERS.remove((self.host, self.port), self)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._heartbeat_task
            self._heartbeat_task = None
        await self._admission.stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                await runner.cleanup()
            except Exception as exc:  # pragma: no cover - best effort
                log.warning("wsnotebook: error while stopping %s: %r", self.url, exc)
        try:
            await self.store.close()
        except Exception as exc:  # pragma: no cover
            log.warning("wsnotebook: error while closing the store: %r", exc)

    async def _on_shutdown(self, app: web.Application) -> None:
        clients = list(self.broadcaster.clients)
        # A final heartbeat tells extended clients the last id this epoch will ever have: after
        # a restart with a fresh in-memory store they can size their gap exactly (or know that
        # nothing was lost) instead of recording an open-ended one.
        final = encode_json(
            {
                "type": "heartbeat",
                "timestamp": int(now_ms()),
                "seq": self.store.last_id,
                "epoch": self.store.epoch,
                "final": True,
            }
        )
        for c in clients:
            c.start_close(CLOSE_GOING_AWAY, b"server stopping", final if c.extended else None)
        tasks = [c.close_task for c in clients if c.close_task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; the port is free when this returns.  Safe to call twice, also
        from two threads at once (the second call waits for the first)."""
        if not self.running and self._stopping is None:
            return
        if _loop.in_loop_thread():
            raise LoopThreadError("Server.stop() called from the loop thread; use stop_async()")
        try:
            _loop.run(self.stop_async(), timeout=timeout)
        except (TimeoutError, concurrent.futures.TimeoutError):
            raise WaitTimeout(
                f"Server.stop() of {self.url} did not finish in {timeout} s"
            ) from None

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            self.log_throttle.flush()
            self.aiohttp_log.throttled.flush()
            try:
                msg = encode_json(
                    {
                        "type": "heartbeat",
                        "timestamp": int(now_ms()),
                        "seq": self.store.last_id,
                        "epoch": self.store.epoch,
                    }
                )
                for c in list(self.broadcaster.clients):
                    if c.extended:
                        c.send_control(msg)
            except Exception as exc:  # pragma: no cover - defensive
                self.counters.errors.bump("heartbeat")
                log.error("wsnotebook: heartbeat failed: %r", exc)

    # ---------------------------------------------------------------- metrics
    def metrics_now(self) -> dict[str, Any]:
        """Metrics snapshot (call on the loop thread; :meth:`metrics` is the thread-safe one)."""
        return {
            "url": self.url,
            "running": self.running,
            **self.counters.snapshot(self.broadcaster.clients),
            "connect_limiter_ips": len(self._connect_limiter),
            **self._admission.metrics(),
            "publish_nowait_pending": self._nowait_pending,
            "publish_nowait_refused": self._nowait_refused,
            "uptime_s": round(time.monotonic() - self._started, 3) if self._started else 0.0,
            "recent_truncated": self.recent_truncated,
            "store": self.store.stats(),
            "hitl": dict(self.hitl_stats),
        }

    def metrics(self) -> dict[str, Any]:
        """Thread-safe metrics dict: connections, events_in, events_out (events delivered,
        summed over clients), events_per_s (ingest rate, 10 s window), bytes_out, messages_out,
        errors by kind, dropped_slow_clients, queue depths, rejected requests by status, uptime,
        store stats."""
        if _loop.in_loop_thread() or not self.running or self._loop is None:
            return self.metrics_now()
        fut = asyncio.run_coroutine_threadsafe(self._metrics_async(), self._loop)
        try:
            return fut.result(10)
        except (TimeoutError, concurrent.futures.TimeoutError):
            raise WaitTimeout(f"Server.metrics() of {self.url} timed out") from None

    async def _metrics_async(self) -> dict[str, Any]:
        return self.metrics_now()


#: The servers ``serve()`` started, by (host, bound port).
SERVERS: Registry[Server] = Registry("servers")
