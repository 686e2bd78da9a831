"""The ``/stream`` WebSocket side of :class:`~.server.Server` (a mixin): handshake checks,
registration of the :class:`~.connection.Connection` (its replay/live boundary), and the reader
that ingests ``publish`` messages.

Invariants and bounds:

* Handshake order: per-IP rate limit (429 + ``Retry-After``, refused attempts spend nothing),
  query parameters (400), ``max_connections`` (503), stopping (503), upgrade (400).  The limiter
  remembers at most ``CONNECT_RATE_MAX_IPS`` addresses (least recently seen evicted first).
* A connection registers and takes ``replay_to = broadcast_last`` with no ``await`` in between:
  every event is delivered once, from the replay or live.
* Reader: a rejected message gets an ``error`` reply naming its code; ``MAX_CONSECUTIVE_ERRORS``
  in a row close the connection with 1008, after every one of those replies (still queued ones
  included) was sent.  Handler errors are logged and counted, never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from ..errors import EventValidationError, LimitExceeded, ProtocolError, StoreError
from ..events import Event, decode_json, json_type, validate_event, validate_events
from ..protocol import (
    CLOSE_POLICY,
    PROTOCOL_VERSION,
    WSNOTEBOOK_HEADER,
    RateLimiter,
    error_message,
)
from ..runtime.logthrottle import ThrottledLog
from ..store import Appendable, Store, StoredEvent
from .broadcast import Broadcaster
from .columnar import batch_or_columns
from .connection import Connection
from .feed import FedBroadcaster
from .http import int_param
from .metrics import ServerCounters
from .wire import utf8_size_over
from .writer import CLOSE_TIMEOUT, run_writer

if TYPE_CHECKING:
    from .server import Server

__all__ = ["CONNECT_RATE_MAX_IPS", "MAX_CONSECUTIVE_ERRORS", "StreamMixin", "stream_params"]

log = logging.getLogger("wsnotebook")

#: Consecutive rejected client messages before the server closes with 1008.
MAX_CONSECUTIVE_ERRORS = 10
#: The most client addresses the handshake rate limiter remembers.
CONNECT_RATE_MAX_IPS = 10_000


async def catch_up_feed(
    broadcaster: Broadcaster, store: Store, since: int | None, epoch: str | None
) -> None:
    """A client resuming at ``since`` in this store's epoch (failing over from another server
    of a shared store) waits, bounded, for this server's tail to reach ``since`` (see
    :mod:`.feed`), so it resumes after ``since`` instead of getting a ``reset``."""
    if (
        isinstance(broadcaster, FedBroadcaster)
        and since is not None
        and epoch is not None
        and epoch == store.epoch
        and broadcaster.broadcast_last < since <= store.last_id
    ):
        await broadcaster.catch_up(since)


def stream_params(request: web.Request) -> dict[str, Any]:
    """The ``/stream`` query options (ProtocolError, a ValueError, when one is out of bounds)."""
    q = request.query
    extended = any(k in q for k in ("since", "epoch", "batch")) or q.get("ext") == "1"
    since: int | None = None
    if q.get("since", "") != "":
        since = int_param(request, "since", 0, 0, 2**63 - 1)
    batch: int | str = 0
    raw = q.get("batch", "")
    if raw == "auto":
        batch = "auto"
    elif raw != "":
        batch = int_param(request, "batch", 0, 0, 100_000)
    interval_ms = int_param(request, "interval_ms", 50, 0, 60_000)
    fmt = q.get("format", "")
    if fmt not in ("", "json", "columns"):  # a typo got JSON batches without a word
        raise ProtocolError(f"format: expected 'columns' or 'json', got {fmt!r}")
    epoch = q.get("epoch") or None
    return {
        "extended": extended,
        "since": since,
        "batch": batch,
        "interval": interval_ms / 1000.0,
        "epoch": epoch,
    }


def _valid_utf8(data: str | bytes) -> bool:
    """Whether a TEXT frame's payload is valid UTF-8 (checked only off the hot path)."""
    if isinstance(data, str):
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


class StreamMixin:
    """``/stream`` for :class:`~.server.Server` (which provides the attributes declared here)."""

    running: bool
    counters: ServerCounters
    broadcaster: Broadcaster
    store: Store
    compression: bool
    heartbeat_interval: float
    max_connections: int
    max_event_bytes: int
    max_message_bytes: int
    max_batch_events: int
    _append_now: Any
    _append_one: Any
    log_throttle: ThrottledLog

    if TYPE_CHECKING:

        def _reject(self, status: int, message: str, **headers: str) -> web.Response: ...

        async def _ingest(self, events: Appendable) -> list[StoredEvent]: ...

        def _ingest_now(self, events: Appendable) -> list[StoredEvent]: ...

        def _ingest_one_now(self, event: Event) -> StoredEvent: ...

    def _init_stream(self, connect_rate: float, connect_burst: int) -> None:
        self.connect_rate = float(connect_rate)
        self.connect_burst = connect_burst
        self._connect_limiter = RateLimiter(
            self.connect_rate, connect_burst, max_keys=CONNECT_RATE_MAX_IPS, clock=time.monotonic
        )

    def _connect_allowed(self, request: web.Request) -> web.Response | None:
        """Per-IP handshake rate limit: ``None`` when allowed, else the 429 reply."""
        limiter = self._connect_limiter
        if not limiter.enabled:
            return None
        ip = request.remote or "?"
        wait = limiter.check(ip)
        if not wait:
            return None
        self.log_throttle.debug(
            "handshake_rate_limited",
            "wsnotebook: handshake from %s rate-limited (retry in %.2f s)",
            ip,
            wait,
        )
        return self._reject(
            429,
            f"too many connection attempts from {ip}; retry later",
            **{"Retry-After": str(max(1, math.ceil(wait)))},
        )

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        limited = self._connect_allowed(request)
        if limited is not None:
            return limited
        try:
            params = stream_params(request)
        except ValueError as exc:  # ProtocolError: a query parameter out of bounds
            return self._reject(400, str(exc))
        clients = self.broadcaster.clients
        if len(clients) >= self.max_connections:
            return self._reject(503, f"too many connections (limit {self.max_connections})")
        if not self.running:
            return self._reject(503, "server stopping")
        hb = max(2.0 * self.heartbeat_interval, 2.0) if self.heartbeat_interval > 0 else None
        ws = web.WebSocketResponse(
            # Deflate only when the client offers it and compression is on: each compressed
            # client costs a zlib pass per message (the fast direct-write path is for plain ones).
            compress=self.compression,
            max_msg_size=self.max_message_bytes,
            heartbeat=hb,
            timeout=CLOSE_TIMEOUT,
            # TEXT frames as their bytes: orjson parses bytes ~0.4 us faster than the str
            # aiohttp would decode first; invalid UTF-8 still closes with 1007 (below).
            decode_text=False,
        )
        try:
            upgrade_ok = ws.can_prepare(request).ok
        except (web.HTTPException, UnicodeError):
            # aiohttp 3.14 builds its 400 from the raw header: a non-UTF-8 ``Upgrade`` value
            # makes that constructor raise UnicodeEncodeError (was: HTTP 500 + traceback).
            upgrade_ok = False
        if not upgrade_ok:
            return self._reject(400, "expected a WebSocket upgrade request")
        # Tells a wsnotebook client that our batches hold compact orjson events (its columnar
        # fast path keeps payload text as sent; see events/columns.py).  Seed clients ignore it.
        ws.headers[WSNOTEBOOK_HEADER] = PROTOCOL_VERSION
        await ws.prepare(request)
        await catch_up_feed(self.broadcaster, self.store, params["since"], params["epoch"])
        transport = request.transport
        peer = str(request.remote)
        client = Connection(
            cast("Server", self),
            ws,
            transport if isinstance(transport, asyncio.Transport) else None,
            peer=peer,
            **params,
        )
        if request.query.get("format") == "columns":  # live batches as ``columns`` messages
            client.batch_message = batch_or_columns
        # register and fix the replay end atomically (no await in between): every event with
        # id <= replay_to comes from the store, every later one through the live path.
        client.replay_to = self.broadcaster.broadcast_last
        clients.add(client)
        self.counters.connections_total += 1
        client.writer_task = asyncio.ensure_future(run_writer(client))
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    data = msg.data
                    if self._publish_now(client, data):  # orjson accepts valid UTF-8 only
                        continue
                    if msg.type is WSMsgType.TEXT and not _valid_utf8(data):
                        # what aiohttp does when it decodes TEXT frames itself: close 1007
                        self.counters.errors.bump("ws_receive")
                        self.log_throttle.debug(
                            "ws_receive", "wsnotebook: invalid UTF-8 text from %s", peer
                        )
                        await ws.close(code=WSCloseCode.INVALID_TEXT)
                        break
                    await self._client_message(client, data)
                elif msg.type == WSMsgType.ERROR:
                    self.counters.errors.bump("ws_receive")
                    self.log_throttle.debug(
                        "ws_receive", "wsnotebook: receive error from %s: %r", peer, ws.exception()
                    )
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.counters.errors.bump("ws_handler")
            self.log_throttle.error(
                "ws_handler", "wsnotebook: stream handler error for %s: %r", peer, exc
            )
        finally:
            clients.discard(client)
            client.detach()
            if client.close_task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await client.close_task
            if client.writer_task is not None and not client.writer_task.done():
                client.writer_task.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await client.writer_task
            client.drop_queues()
            self.counters.closed_events_out += client.events_out
        return ws

    def _publish_now(self, client: Connection, data: str | bytes) -> bool:
        """The common client message, one valid event published to a memory store, ingested
        without a coroutine and the general path's branches.  True: stored and broadcast.
        False: nothing was done (any other message, any problem, another store), and
        :meth:`_client_message` handles it, wording every error.  Failures leave no trace here:
        validation, the size rule and the stamp all run before anything is stored."""
        if self._append_one is None:
            return False
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return False
        if type(obj) is not dict or obj.get("type") != "publish":
            return False
        event = obj.get("data")
        if type(event) is not dict or utf8_size_over(data, self.max_event_bytes):
            return False
        try:
            validate_event(event)
            self._ingest_one_now(event)
        except (EventValidationError, LimitExceeded):
            return False
        client.bad_messages = 0
        return True

    async def _client_message(self, client: Connection, data: str | bytes) -> None:
        code, message = "", ""
        # TEXT and BINARY frames arrive as bytes (``decode_text=False``; a TEXT frame's UTF-8
        # was checked by the caller); ``str`` is accepted too.
        try:
            obj = decode_json(data)
        except ProtocolError as exc:
            code, message = "invalid_json", str(exc)
        else:
            kind = obj.get("type") if isinstance(obj, dict) else None
            if not isinstance(obj, dict):
                code, message = "unknown_type", f"message: expected object, got {json_type(obj)}"
            elif kind == "heartbeat":
                client.bad_messages = 0
                return
            elif kind != "publish":
                code = "unknown_type"
                message = f"type: unknown message type {kind!r} (expected publish or heartbeat)"
            elif "data" not in obj:
                code, message = "invalid_event", "data: missing required field"
            else:
                payload = obj["data"]
                try:
                    size = (
                        utf8_size_over(data, self.max_event_bytes)
                        if isinstance(payload, dict)
                        else 0
                    )
                    if size:
                        raise LimitExceeded(
                            f"event: {size} bytes exceeds the limit of {self.max_event_bytes}",
                            limit="max_event_bytes",
                        )
                    events = validate_events(payload, max_batch=self.max_batch_events)
                except LimitExceeded as exc:
                    code = "batch_too_large" if exc.limit == "max_batch_events" else "too_large"
                    message = str(exc)
                except EventValidationError as exc:
                    code, message = "invalid_event", str(exc)
                else:
                    try:
                        if self._append_now is not None:
                            self._ingest_now(events)
                        else:
                            await self._ingest(events)
                    except StoreError as exc:
                        self.counters.errors.bump("store")
                        client.send_control(error_message(str(exc), "store_error"))
                        return
                    except LimitExceeded as exc:  # over max_event_bytes once encoded
                        code, message = "too_large", str(exc)
                    except EventValidationError as exc:  # cannot be encoded as JSON
                        code, message = "invalid_event", str(exc)
                    else:
                        client.bad_messages = 0
                        return
        client.bad_messages += 1
        self.counters.errors.bump(f"client_{code}")
        client.send_control(error_message(message, code))
        if client.bad_messages >= MAX_CONSECUTIVE_ERRORS:
            # the error replies still queued (a burst outruns the writer) go out before 1008
            client.start_close(CLOSE_POLICY, b"too many invalid messages", keep_control=True)
