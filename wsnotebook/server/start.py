"""``serve()``: the idempotent entry point that starts a :class:`~.server.Server`, and the
list of running servers.

Invariants: ``serve(port=P)`` with the options of the running server on P returns that server
(a re-run cell is harmless); different options are a ``ConfigError`` unless ``restart=True``;
a server is registered in ``SERVERS`` under the port it actually bound, after it bound it; a
non-loopback bind never runs without a token (``token=""`` there is a ``ConfigError``, a
generated token is printed once, never logged).
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import ssl
from collections.abc import Iterable

from ..errors import ConfigError, LoopThreadError, ServerError, WsnError
from ..events import DEFAULT_MAX_BATCH_EVENTS, DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_MESSAGE_BYTES
from ..runtime import loop as _loop
from ..store import DEFAULT_RETAIN_BYTES, Store
from .local import resolve as _resolve_local  # noqa: F401  (installs the in-process resolver)
from .options import (
    DEFAULT_CONNECT_BURST,
    DEFAULT_CONNECT_RATE,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_OPEN_CONNECTIONS,
    DEFAULT_MAX_QUEUE_BYTES,
    DEFAULT_QUEUE_SIZE,
    ServerOptions,
    is_loopback,
)
from .server import SERVERS, Server

__all__ = ["running_servers", "serve", "stop_all"]

log = logging.getLogger("wsnotebook")


# --------------------------------------------------------------------------- serve()


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 4000,
    store: str | Store = "memory",
    token: str | None = None,
    allowed_origins: Iterable[str] | None = None,
    allowed_hosts: Iterable[str] | None = None,
    initial_limit: int = 300,
    retain: int = 100_000,
    retain_bytes: int = DEFAULT_RETAIN_BYTES,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS,
    max_connections: int = 1000,
    queue_size: int = DEFAULT_QUEUE_SIZE,
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
    heartbeat_interval: float = 5.0,
    compression: bool = True,
    connect_rate: float = DEFAULT_CONNECT_RATE,
    connect_burst: int = DEFAULT_CONNECT_BURST,
    max_open_connections: int = DEFAULT_MAX_OPEN_CONNECTIONS,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
    ssl_context: ssl.SSLContext | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    hitl_hosts: Iterable[str] | None = None,
    restart: bool = False,
) -> Server:
    """Start (or return) a background HTTP + WebSocket event server; returns once bound.

    Options (keyword-only; defaults and bounds):

    * ``host="127.0.0.1"``: bind address.  Any non-loopback host requires a token: when
      ``token`` is ``None`` one is generated and printed once to stdout (never logged);
      ``token=""`` on a non-loopback host raises ConfigError.
    * ``port=4000`` (0..65535; ``0`` picks a free port).  Taken by someone else: PortInUseError.
    * ``store="memory"`` (ring of ``retain`` events), ``"sqlite:///path.db"`` (durable WAL) or
      ``"redis://[:password@]host:port/db?stream=NAME"`` / ``"rediss://..."`` (a Redis Stream
      shared by several servers: one order, one epoch; the ``redis`` extra; README "Scale
      out"), or a :class:`~wsnotebook.store.Store` instance.
    * ``token=None``: when set, required on every HTTP request and the WebSocket handshake
      (``Authorization: Bearer T`` or ``?token=T``).
    * ``allowed_origins=None``: browser ``Origin`` allow-list; default http(s)://localhost,
      127.0.0.1, [::1] on any port.  ``["*"]`` allows any origin.  Requests without an Origin
      header (scripts, hooks, Python clients) are always allowed.
    * ``allowed_hosts=None``: more names accepted in the ``Host`` header (DNS-rebinding guard,
      any port).  On a loopback bind a ``Host`` other than ``localhost``, ``127.x.y.z``,
      ``[::1]`` or these gets HTTP 421; elsewhere ``Host`` is checked only when it is given.
    * ``initial_limit=300`` (0..100,000): events in the ``initial`` snapshot.
    * ``retain=100_000`` (1..100,000,000): events the store keeps (oldest evicted first).
    * ``retain_bytes=256 MiB`` (1 KiB..1 TiB): bytes of encoded events held in memory (memory
      ring, SQLite cache), oldest evicted first; ``metrics()["store"]["retained_bytes"]``.
    * ``max_event_bytes=1 MiB``, ``max_message_bytes=16 MiB`` (1 KiB..1 GiB): body/frame limits
      (413 / close 1009); ``max_event_bytes`` is lowered to what fits one message of
      ``max_message_bytes`` once stamped (``Server.max_event_bytes`` holds the value in force);
      ``max_batch_events=10_000`` (1..1,000,000) events per batch.
    * ``max_connections=1000`` (1..100,000) WebSocket clients (more: HTTP 503).
    * ``queue_size=4096`` (1..1,000,000) messages and ``max_queue_bytes=64 MiB`` per client send
      queue; overflow drops that client with close 1013 (counted).
    * ``heartbeat_interval=5.0`` s (0 disables; 0..3600): heartbeat messages to extended clients
      and WebSocket pings (a peer silent for 3x the interval is disconnected).
    * ``compression=True``: negotiate permessage-deflate with clients that offer it (browsers and
      ``websockets`` do by default).  Plain clients keep the zero-copy fast path; compressed ones
      cost one zlib pass per message each.  ``False`` never compresses.
    * ``connect_rate=50.0`` handshakes/s per client IP (0 disables; 0..1,000,000) and
      ``connect_burst=200`` (1..1,000,000): a token bucket per ``request.remote`` checked first
      on ``GET /stream``; beyond it the handshake gets HTTP 429 ``{"error": "too many connection
      attempts from <ip>; retry later"}`` with ``Retry-After`` (seconds), counted in
      ``metrics()["rejected"]["429"]``.  Refused attempts spend nothing.  The limiter remembers
      at most 10,000 addresses (idle ones forgotten, least recently seen evicted first).
      wsnotebook clients retry 429 with backoff.  HTTP endpoints are not rate-limited.
    * ``max_open_connections=4096`` (16..1,000,000; lowered to fit the descriptor limit; near
      it the longest-idle are closed first), ``header_timeout=10``/``keepalive_timeout=15`` s
      (0..3600, 0 off): a connection without headers / idle after a reply that long is closed.
    * ``ssl_context`` or ``certfile``/``keyfile``: serve HTTPS/WSS.  ``server.client_ssl_context()``
      is a client context trusting the certificate loaded from ``certfile`` (used by
      ``monitor(server)``).
    * ``hitl_hosts=None``: hosts (besides loopback; ``["*"]``: any) whose
      ``responseWebSocketUrl`` the server may open to deliver a human-in-the-loop answer.
    * ``restart=False``: a second ``serve()`` on the same host/port with the same options returns
      the running server; with different options it raises ConfigError unless ``restart=True``
      (then the old server stops first).
    """
    options = ServerOptions.validate(
        host=host,
        port=port,
        store=store,
        token=token,
        allowed_origins=allowed_origins,
        allowed_hosts=allowed_hosts,
        initial_limit=initial_limit,
        retain=retain,
        retain_bytes=retain_bytes,
        max_event_bytes=max_event_bytes,
        max_message_bytes=max_message_bytes,
        max_batch_events=max_batch_events,
        max_connections=max_connections,
        queue_size=queue_size,
        max_queue_bytes=max_queue_bytes,
        heartbeat_interval=heartbeat_interval,
        compression=compression,
        connect_rate=connect_rate,
        connect_burst=connect_burst,
        max_open_connections=max_open_connections,
        header_timeout=header_timeout,
        keepalive_timeout=keepalive_timeout,
        ssl_context=ssl_context,
        certfile=certfile,
        keyfile=keyfile,
        hitl_hosts=hitl_hosts,
    )
    host, port = options.host, options.port
    if port:
        existing = SERVERS.get((host, port))
        if existing is not None and existing.running and existing.options is not None:
            if existing.options == options:
                return existing
            if not restart:
                changed = options.changed(existing.options)
                raise ConfigError(
                    f"a server is already running on {host}:{port} with different options "
                    f"({', '.join(changed)}); pass restart=True to replace it or stop() it first"
                )
            existing.stop()
    effective_token = token
    generated = False
    if not is_loopback(host):
        if token == "":
            raise ConfigError(
                f"token='' on non-loopback host {host!r}: refusing to run open to the network"
            )
        if token is None:
            effective_token = secrets.token_urlsafe(24)
            generated = True
    server = Server(**{**options.server_kwargs(), "token": effective_token or None})
    server.options = options
    if _loop.in_loop_thread():
        raise LoopThreadError("serve() called from the loop thread; use Server.start_async()")
    try:
        _loop.run(server.start_async(), timeout=60)
    except WsnError:
        raise
    except OSError as exc:
        raise ServerError(f"cannot start server on {host}:{port}: {exc}") from None
    # Registered under the port actually bound, with that port among its options: serve(port=0)
    # then serve(port=server.port) with the same other options returns this server.
    server.options = dataclasses.replace(options, port=server.port)
    SERVERS.add((host, server.port), server)
    if generated:
        print(
            f"wsnotebook: serving on {server.http_url} (bound to {host}); "
            f"token (send as 'Authorization: Bearer <token>'): {effective_token}"
        )
    return server


def running_servers() -> list[Server]:
    """The servers started by :func:`serve` in this process and still running."""
    return SERVERS.items(lambda s: s.running)


def stop_all(timeout: float = 10.0) -> None:
    """Stop every running server (also run at interpreter exit)."""
    for server in running_servers():
        try:
            server.stop(timeout=timeout)
        except Exception as exc:  # never raise at exit
            log.warning("wsnotebook: could not stop %s: %r", server.url, exc)


_loop.add_shutdown_hook(stop_all)
