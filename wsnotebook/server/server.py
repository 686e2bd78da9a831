"""The kernel-side server: HTTP ingest + WebSocket stream on one port (aiohttp).

``serve()`` starts a :class:`Server` on the shared background loop (:mod:`wsnotebook._loop`) and
returns as soon as the port is bound.  The wire protocol is documented in ``docs/protocol.md``.

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
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import hmac
import ipaddress
import logging
import math
import re
import secrets
import socket
import ssl
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from aiohttp import WSMsgType, web
from aiohttp.web_protocol import RequestPayloadError

from ..errors import (
    ConfigError,
    EventValidationError,
    LimitExceeded,
    PortInUseError,
    ProtocolError,
    ServerError,
    StoreError,
    WsnError,
)
from ..events import (
    DEFAULT_MAX_BATCH_EVENTS,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    Event,
    decode_events,
    decode_json,
    encode_json,
    json_type,
    now_ms,
    validate_events,
)
from ..protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    PROTOCOL_VERSION,
    WSNOTEBOOK_HEADER,
    Batcher,
    RateLimiter,
    batch_message,
    error_message,
    event_message,
    event_room,
    fit_newest,
    fit_oldest,
    gap_message,
)
from ..runtime import loop as _loop
from ..stats import RateMeter
from ..store import (
    Appendable,
    Encoded,
    MemoryStore,
    Store,
    StoredEvent,
    open_store,
    snapshot_events,
)

__all__ = ["Server", "running_servers", "serve", "stop_all"]

log = logging.getLogger("wsnotebook")

DEFAULT_QUEUE_SIZE = 4096
DEFAULT_MAX_QUEUE_BYTES = 64 << 20
#: Events per replay page (``initial`` and each following ``batch``) and per ``auto`` batch.
REPLAY_PAGE = 1000
AUTO_BATCH_MAX = 1000
#: Event bytes after which a ``batch=auto`` client's queued run of single events is closed (one
#: message each): 1 MiB, the default message limit of common WebSocket clients.
AUTO_RUN_MAX_BYTES = 1 << 20
#: Consecutive rejected client messages before the server closes with 1008.
MAX_CONSECUTIVE_ERRORS = 10
#: Socket write-buffer size below which a broadcast writes a frame directly.
FAST_WRITE_LIMIT = 64 * 1024
#: Bytes of event data a client collects during one loop tick before it writes them out early
#: (the tick buffer is written with one ``transport.write`` at the end of the tick otherwise).
TICK_MAX_BYTES = 256 * 1024
#: Most bytes stamping adds to an event's JSON beyond ``max_event_bytes`` (``id``,
#: ``server_received`` and a filled ``timestamp``, with their keys; ~101 at most): an event of
#: the largest accepted size must still fit one message.
_STAMP_BYTES = 128
#: How long a broadcast tick lingers while the background CPU budget is under pressure (inside
#: a kernel, see ``CpuBudget.under_pressure``): the tick's events leave as one message per
#: client after this long (or earlier at TICK_MAX_BYTES / AUTO_BATCH_MAX) instead of at the end
#: of the loop tick.  Measured at 10k ev/s in batches of 10 under the half-core budget: ~500 ->
#: ~75 messages/s to the monitor's client and ~40 -> ~30 us of CPU per event (20 ms: ~40
#: messages/s, no further saving); the cost is up to this much added latency, only while
#: background work uses a fifth of a core or more.
BUDGET_COALESCE = 0.01
#: Events ``publish_nowait`` may have accepted but not yet ingested; beyond it, it refuses.
NOWAIT_MAX_PENDING = 100_000
#: Most events ingested per loop callback from the ``publish_nowait`` backlog (whole batches).
NOWAIT_SLICE = 1000
#: Seconds a closing handshake may take before the transport is aborted.
CLOSE_TIMEOUT = 5.0
#: Per-IP WebSocket handshake rate limit defaults (handshakes/s and burst) and the most client
#: addresses the limiter remembers (least recently seen evicted first).
DEFAULT_CONNECT_RATE = 50.0
DEFAULT_CONNECT_BURST = 200
CONNECT_RATE_MAX_IPS = 10_000
#: A broadcast to more clients than this calls ``_loop.budget_checkpoint()`` every this many
#: clients, so a big fan-out inside a kernel yields the GIL when over the CPU budget.
BROADCAST_CHECKPOINT_EVERY = 32

_EVENT_PREFIX = b'{"type":"event","data":'
_EVENT_OVERHEAD = len(_EVENT_PREFIX) + 1
_H1 = struct.Struct("!BB").pack
_H2 = struct.Struct("!BBH").pack
_H3 = struct.Struct("!BBQ").pack
_KIND_EVENT, _KIND_BATCH, _KIND_CONTROL, _KIND_RUN = 0, 1, 2, 3
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----")
_JSON = "application/json"

_registry: dict[tuple[str, int], Server] = {}
_registry_lock = threading.Lock()


# --------------------------------------------------------------------------- helpers


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _default_origin_ok(origin: str) -> bool:
    try:
        parts = urlsplit(origin)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and host in _LOOPBACK_NAMES


def _bounded_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name}: expected integer, got {type(value).__name__}")
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be in {lo}..{hi}, got {value}")
    return value


def _retrieve_quietly(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("wsnotebook: abandoned compressed send failed: %r", task.exception())


def _adopt_abandoned_sends(ws: web.WebSocketResponse) -> None:
    """aiohttp sends a large compressed frame in a shielded task; when our writer is cancelled
    (the client went away), that task later fails with ClientConnectionResetError and nobody
    retrieves it ("Task exception was never retrieved" at ERROR).  Retrieve it here."""
    writer = getattr(ws, "_writer", None)
    for bg in list(getattr(writer, "_background_tasks", ())):
        bg.add_done_callback(_retrieve_quietly)


def _json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=encode_json({"error": message}),
        content_type=_JSON,
        headers=headers or None,
    )


def _initial(
    encoded: Sequence[bytes], *, extended: bool, seq: int, epoch: str, reset: bool, more: bool
) -> bytes:
    head = b'{"type":"initial","data":[' + b",".join(encoded) + b"]"
    if extended:
        extra = {"seq": seq, "epoch": epoch, "reset": reset, "more": more}
        head += b"," + encode_json(extra)[1:-1]
    return head + b"}"


def _evicted_after(store: Store, after: int) -> bool:
    """Were events right after id ``after`` evicted?  (A jump in the ids read is either an
    eviction or a hole of never-used ids, left by a failed commit.)"""
    first = store.first_id
    return first is not None and first > after + 1


def _utf8_size_over(data: str | bytes, limit: int) -> int:
    """``data``'s size in UTF-8 bytes when it exceeds ``limit``, else 0 (cheap for small str:
    a str of n characters encodes to n..4n bytes)."""
    n = len(data)
    if isinstance(data, bytes):
        return n if n > limit else 0
    if n * 4 <= limit:
        return 0
    size = len(data.encode("utf-8", "surrogatepass"))
    return size if size > limit else 0


def _text_header(n: int) -> bytes:
    """Header of a final, unmasked WebSocket text frame with ``n`` payload bytes (RFC 6455)."""
    if n < 126:
        return _H1(0x81, n)
    if n < 65536:
        return _H2(0x81, 126, n)
    return _H3(0x81, 127, n)


def _text_frame(msg: bytes) -> bytes:
    return _text_header(len(msg)) + msg


class _Run:
    """One ingest's encoded events, as every client's ``push_many`` shares them.  Their
    ``event`` messages and WebSocket frames are built on first use, once for all clients: a
    ``batch=auto`` client on the direct path (the default) needs only ``encoded``."""

    __slots__ = ("_emsgs", "_frames", "enc_bytes", "encoded", "msg_bytes")

    def __init__(self, encoded: list[bytes]) -> None:
        self.encoded = encoded
        self.enc_bytes = sum(map(len, encoded))
        self.msg_bytes = self.enc_bytes + _EVENT_OVERHEAD * len(encoded)
        self._emsgs: list[bytes] | None = None
        self._frames: list[bytes] | None = None

    def emsgs(self) -> list[bytes]:
        if self._emsgs is None:
            self._emsgs = [event_message(e) for e in self.encoded]
        return self._emsgs

    def frames(self) -> list[bytes]:
        if self._frames is None:
            self._frames = [_text_frame(m) for m in self.emsgs()]
        return self._frames


class _Counter(dict[str, int]):
    def bump(self, key: str, n: int = 1) -> None:
        self[key] = self.get(key, 0) + n


# --------------------------------------------------------------------------- one client


class _Client:
    """One WebSocket subscriber: bounded send queue, writer task, optional batcher."""

    def __init__(
        self,
        server: Server,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport | None,
        *,
        extended: bool,
        batch: int | str,
        interval: float,
        since: int | None,
        epoch: str | None,
        peer: str,
    ) -> None:
        self.server = server
        self.ws = ws
        self.transport = transport
        self.extended = extended
        self.auto = batch == "auto"
        self.peer = peer
        loop = asyncio.get_running_loop()
        self.loop = loop
        # No message may outgrow max_message_bytes (a client with the same limit would close
        # with 1009): a batch=auto tick, a queued run or a fixed batch is sent before an event
        # that would overflow it joins.
        room = event_room(server.max_message_bytes)
        self.room = room
        self.tick_room = min(TICK_MAX_BYTES, room)
        self.run_room = min(AUTO_RUN_MAX_BYTES, room)
        self.batcher = (
            Batcher(batch, interval, clock=loop.time, max_bytes=self.tick_room)
            if isinstance(batch, int) and batch
            else None
        )
        self.since = since
        self.req_epoch = epoch
        self.queue: deque[tuple[bytes, int, int]] = deque()  # (message, n events, kind)
        # batch=auto: the encoded events of each _KIND_RUN queue entry, in queue order
        self.runs: deque[list[bytes]] = deque()
        self.tail_run_bytes = 0  # event bytes in the run at the queue's tail
        self.qbytes = 0
        # live event and control messages held during the replay, in arrival order
        self.pending: deque[tuple[bytes, int]] = deque()  # (message, kind)
        self.replaying = True
        self.replay_to = 0
        self.busy = False
        self.closing = False
        self._final: bytes | None = None
        self.wake = asyncio.Event()
        self.timer: asyncio.TimerHandle | None = None
        self.writer_task: asyncio.Task[None] | None = None
        self.close_task: asyncio.Task[None] | None = None
        self.bad_messages = 0
        self.events_out = 0
        # Direct writes (no task switch) when the connection is uncompressed: frames are built
        # here and written straight to the transport; compressed clients use the writer task.
        self.direct = transport is not None and not ws.compress
        # This loop tick's events for the direct path, written with ONE transport.write when the
        # tick ends (Server._flush_dirty) or early when it holds TICK_MAX_BYTES / AUTO_BATCH_MAX:
        # complete frames for per-event clients, encoded events for batch=auto ones.
        # Invariant: the tick is non-empty only while the queue is empty and the writer idle.
        self.tick: list[bytes] = []
        self.tick_bytes = 0

    # ---------------------------------------------------------------- enqueueing (loop thread)
    def _tick_ok(self) -> bool:
        """May this event join the tick buffer?  Direct-path clients when ``_direct_ok``;
        compressed ``batch=auto`` clients always (their tick goes to the send queue)."""
        return (self.auto and not self.direct) or self._direct_ok()

    def _direct_ok(self) -> bool:
        """May a message be written directly now (nothing queued, socket buffer not backed up)?"""
        transport = self.transport
        return (
            self.direct
            and not self.queue
            and not self.busy
            and transport is not None
            and not transport.is_closing()
            and not self.ws.closed
            and transport.get_write_buffer_size() < FAST_WRITE_LIMIT
        )

    def push_event(self, encoded: bytes, emsg: bytes, frame: bytes | None = None) -> None:
        """Send one live event (``emsg`` is its ``event`` message, ``frame`` that message as a
        WebSocket frame when the caller already built it)."""
        if self.closing:
            return
        if self.replaying:
            self._hold(emsg, _KIND_EVENT)
            return
        batcher = self.batcher
        if batcher is not None:
            if len(batcher) and batcher.nbytes + len(batcher) + len(encoded) > self.room:
                # this event would make the batch message too large: send what is pending
                self._cancel_timer()
                items = batcher.flush()
                self._push_msg(batch_message(items), len(items), _KIND_BATCH)
            full = batcher.add(encoded)
            if full is not None:
                self._cancel_timer()
                self._push_msg(batch_message(full), len(full), _KIND_BATCH)
            elif self.timer is None:
                deadline = batcher.deadline()
                assert deadline is not None
                self.timer = self.loop.call_at(deadline, self._flush_batch)
            return
        tick = self.tick
        if tick and self.auto and self.tick_bytes + len(tick) + len(encoded) > self.tick_room:
            self.flush_tick()  # this event would make the batch message too large
            tick = self.tick
        if tick or self._tick_ok():
            if not tick:
                self.server._mark_dirty(self)
            if self.auto:
                tick.append(encoded)
                self.tick_bytes += len(encoded)
            else:
                tick.append(frame if frame is not None else _text_frame(emsg))
                self.tick_bytes += len(emsg)
            if self.tick_bytes >= TICK_MAX_BYTES or len(tick) >= AUTO_BATCH_MAX:
                self.flush_tick()
            return
        self.enqueue(emsg, 1, _KIND_EVENT)

    def push_many(self, run: _Run) -> None:
        """Send several live events (one ingest); same semantics as ``push_event`` per event,
        but a client on the direct path takes the whole run with one list extend."""
        if (
            not self.closing
            and not self.replaying
            and self.batcher is None
            and (self.tick or self._tick_ok())
        ):
            add = run.enc_bytes if self.auto else run.msg_bytes
            tick = self.tick
            if (
                len(tick) + len(run.encoded) <= AUTO_BATCH_MAX
                and self.tick_bytes + add + len(tick) + len(run.encoded) < self.tick_room
            ):
                if not tick:
                    self.server._mark_dirty(self)
                tick.extend(run.encoded if self.auto else run.frames())
                self.tick_bytes += add
                return
        for enc, emsg, frame in zip(run.encoded, run.emsgs(), run.frames()):
            if self.closing:
                return
            self.push_event(enc, emsg, frame)

    def flush_tick(self) -> None:
        """Write the tick's events with one ``transport.write`` (per-event: the frames joined;
        ``batch=auto``: one ``event`` message for a lone event, else one ``batch``).  For a
        compressed ``batch=auto`` client the message goes to its send queue instead (bounded,
        1013 on overflow, as always)."""
        tick = self.tick
        if not tick:
            return
        self.tick = []
        nbytes, self.tick_bytes = self.tick_bytes, 0
        if not self.direct:
            if len(tick) == 1:
                self.enqueue(event_message(tick[0]), 1, _KIND_EVENT)
            else:
                self.enqueue(batch_message(tick), len(tick), _KIND_BATCH)
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # connection gone: the handler cleans up; nothing else to deliver to
        n = len(tick)
        if not self.auto:
            data = tick[0] if n == 1 else b"".join(tick)
            msgs, payload = n, nbytes
        elif n == 1:
            body = event_message(tick[0])
            data = _text_frame(body)
            msgs, payload = 1, len(body)
        else:
            body = batch_message(tick)
            data = _text_header(len(body)) + body
            msgs, payload = 1, len(body)
        try:
            transport.write(data)
        except Exception as exc:  # transport went away: the handler notices and cleans up
            log.debug("wsnotebook: write to %s failed: %r", self.peer, exc)
            return
        self.events_out += n
        server = self.server
        server._messages_out += msgs
        server._bytes_out += payload

    def _push_msg(self, msg: bytes, n: int, kind: int) -> None:
        """Send a whole message (batch or control) in order: directly when possible."""
        if self.closing:
            return
        if self.tick:
            self.flush_tick()
        if self._direct_ok() and self._write_now(msg):
            self.events_out += n
            return
        self.enqueue(msg, n, kind)

    def _write_now(self, msg: bytes) -> bool:
        transport = self.transport
        assert transport is not None
        try:
            transport.write(_text_frame(msg))
        except Exception:  # transport went away: let the writer path notice and clean up
            return False
        self.server._note_sent(len(msg))
        return True

    def send_control(self, msg: bytes) -> None:
        """Send a control message (``error``, ``heartbeat``).  During the replay it is held,
        in order with the live events that arrive meanwhile, and sent right after the replay
        (bounded by the send-queue limits like everything else: overflow drops with 1013)."""
        if self.closing:
            return
        if self.replaying:
            self._hold(msg, _KIND_CONTROL)
            return
        self._push_msg(msg, 0, _KIND_CONTROL)

    def _hold(self, msg: bytes, kind: int) -> None:
        """Keep a message that arrived during the replay (bounded: ``queue_size`` messages and
        ``max_queue_bytes`` bytes; beyond that the client is dropped with 1013)."""
        if (
            len(self.pending) >= self.server.queue_size
            or self.qbytes + len(msg) > self.server.max_queue_bytes
        ):
            self.overflow(len(msg))
            return
        self.pending.append((msg, kind))
        self.qbytes += len(msg)

    def enqueue(self, msg: bytes, n: int, kind: int) -> None:
        if self.closing:
            return
        if self.auto and kind == _KIND_EVENT:
            self._enqueue_run_event(msg)
            return
        if (
            len(self.queue) >= self.server.queue_size
            or self.qbytes + len(msg) > self.server.max_queue_bytes
        ):
            self.overflow(len(msg))
            return
        self.queue.append((msg, n, kind))
        self.qbytes += len(msg)
        depth = len(self.queue)
        if depth > self.server._queue_max:
            self.server._queue_max = depth
        self.wake.set()

    def _enqueue_run_event(self, emsg: bytes) -> None:
        """``batch=auto``: a queued single event joins the run of events at the queue's tail
        (up to ``AUTO_BATCH_MAX`` events and ``AUTO_RUN_MAX_BYTES``), which the writer sends as
        ONE message.  ``queue_size`` thus counts the messages that will be sent: a client 4096
        small events behind is 5 messages behind, not over the limit (the byte limit still
        counts every event)."""
        queue = self.queue
        server = self.server
        if self.qbytes + len(emsg) > server.max_queue_bytes:
            self.overflow(len(emsg))
            return
        encoded = emsg[len(_EVENT_PREFIX) : -1]
        if (
            queue
            and queue[-1][2] == _KIND_RUN
            and len(self.runs[-1]) < AUTO_BATCH_MAX
            and self.tail_run_bytes + len(encoded) + len(self.runs[-1]) <= self.run_room
        ):
            self.runs[-1].append(encoded)
            queue[-1] = (b"", queue[-1][1] + 1, _KIND_RUN)
            self.tail_run_bytes += len(encoded)
        else:
            if len(queue) >= server.queue_size:
                self.overflow(len(emsg))
                return
            self.runs.append([encoded])
            queue.append((b"", 1, _KIND_RUN))
            self.tail_run_bytes = len(encoded)
            if len(queue) > server._queue_max:
                server._queue_max = len(queue)
        self.qbytes += len(emsg)
        self.wake.set()

    def _flush_batch(self) -> None:
        self.timer = None
        if self.batcher is None or self.closing:
            return
        items = self.batcher.flush()
        if items:
            self._push_msg(batch_message(items), len(items), _KIND_BATCH)

    def _cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def overflow(self, incoming: int) -> None:
        """The send queue is full: drop this client with 1013 (memory stays bounded).
        ``incoming``: bytes of the message that did not fit."""
        server = self.server
        server._dropped_slow += 1
        log.warning(
            "wsnotebook: dropping slow client %s (send queue full: %d messages, %d bytes queued; "
            "a %d-byte message would pass queue_size=%d or max_queue_bytes=%d)",
            self.peer,
            len(self.queue) + len(self.pending),
            self.qbytes,
            incoming,
            server.queue_size,
            server.max_queue_bytes,
        )
        self.start_close(CLOSE_TRY_AGAIN, b"slow consumer: send queue overflow")

    def start_close(self, code: int, reason: bytes, final: bytes | None = None) -> None:
        """Close with ``code``; ``final`` (a last control message) goes out just before the
        close frame, after anything still queued was discarded."""
        if self.closing:
            return
        self._final = final
        self.flush_tick()  # what this tick already took goes out before the close frame
        self.closing = True
        self.queue.clear()
        self.runs.clear()
        self.pending.clear()
        self.qbytes = 0
        self._cancel_timer()
        self.wake.set()
        self.close_task = asyncio.ensure_future(self._close(code, reason))

    async def _close(self, code: int, reason: bytes) -> None:
        task = self.writer_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.wait({task}, timeout=1.0)
            # aiohttp's BaseProtocol._drain_helper awaits ONE shared future, unshielded: the
            # writer blocked in drain cancelled it, and our close frame's drain would raise
            # CancelledError at once -> abort -> the client saw 1006 instead of 1013.
            proto = self.transport.get_protocol() if self.transport is not None else None
            waiter = getattr(proto, "_drain_waiter", None)
            if waiter is not None and waiter.cancelled():
                proto._drain_waiter = None  # type: ignore[union-attr]
        if self._final is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._send(self._final), CLOSE_TIMEOUT)
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason), CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            if self.transport is not None:
                self.transport.abort()
        except Exception:
            if self.transport is not None:
                self.transport.abort()

    # ---------------------------------------------------------------- writer task
    async def _send(self, msg: bytes) -> None:
        await self.ws.send_frame(msg, WSMsgType.TEXT)
        self.server._note_sent(len(msg))

    async def run_writer(self) -> None:
        try:
            await self._replay()
            while not self.closing:
                if not self.queue:
                    self.wake.clear()
                    await self.wake.wait()
                    continue
                if self.tick:  # defensive: the invariant keeps it empty while messages queue
                    self.flush_tick()
                msg, n = self._next_message()
                self.busy = True
                try:
                    await self._send(msg)
                finally:
                    self.busy = False
                self.events_out += n
        except asyncio.CancelledError:
            _adopt_abandoned_sends(self.ws)
            raise
        except (ConnectionError, RuntimeError) as exc:
            if not self.closing:
                log.debug("wsnotebook: client %s went away: %s", self.peer, exc)
                self.start_close(CLOSE_GOING_AWAY, b"")
        except Exception as exc:
            self.server._errors.bump("writer")
            log.error("wsnotebook: writer for %s failed: %r", self.peer, exc)
            self.start_close(CLOSE_INTERNAL, b"internal error")

    def _next_message(self) -> tuple[bytes, int]:
        msg, n, kind = self.queue.popleft()
        if kind != _KIND_RUN:
            self.qbytes -= len(msg)
            return msg, n
        parts = self.runs.popleft()
        self.qbytes -= sum(map(len, parts)) + _EVENT_OVERHEAD * len(parts)
        if len(parts) == 1:
            return event_message(parts[0]), 1
        return batch_message(parts), len(parts)

    async def _replay(self) -> None:
        server, store = self.server, self.server.store
        replay_to = self.replay_to
        reset = False
        more = False
        limit = server.max_message_bytes  # no message we send exceeds what we accept
        if self.since is None:
            page = await store.recent(server.initial_limit)
            page = [s for s in page if s.id <= replay_to]
            # The latest events that fit in one message (fewer than initial_limit only when
            # they are large): a snapshot too big for the client's limit would lock it out.
            keep = fit_newest([s.encoded for s in page], limit)
            page = page[len(page) - keep :]
            after = replay_to
        else:
            first = store.first_id
            since = self.since
            new_epoch = self.req_epoch is not None and self.req_epoch != store.epoch
            evicted = first is not None and since + 1 < first
            reset = new_epoch or evicted or since > replay_to
            after = (first - 1 if first is not None else 0) if reset else since
            page = [s for s in await store.since(after, REPLAY_PAGE) if s.id <= replay_to]
            if page and page[0].id > after + 1 and not reset and _evicted_after(store, after):
                # evicted between the check and the read: treat as reset (a hole the store's
                # failed commits left in the id sequence is no loss: those ids were never used)
                reset = True
            full = len(page) >= REPLAY_PAGE
            keep = fit_oldest([s.encoded for s in page], limit)
            full, page = full or keep < len(page), page[:keep]
            after = page[-1].id if page else after
            more = after < replay_to and full
        msg = _initial(
            [s.encoded for s in page],
            extended=self.extended,
            seq=replay_to,
            epoch=store.epoch,
            reset=reset,
            more=more,
        )
        await self._send(msg)
        self.events_out += len(page)
        while more and not self.closing:
            page = [s for s in await store.since(after, REPLAY_PAGE) if s.id <= replay_to]
            if not page:
                break
            page = page[: fit_oldest([s.encoded for s in page], limit)]
            if page[0].id > after + 1 and _evicted_after(store, after):
                first = store.first_id or page[0].id
                await self._send(
                    gap_message(after + 1, min(first, page[0].id) - 1, "evicted", epoch=store.epoch)
                )
            await self._send(batch_message([s.encoded for s in page]))
            self.events_out += len(page)
            after = page[-1].id
            more = after < replay_to
        # go live: move what arrived meanwhile to the normal path, in order
        self.replaying = False
        pending, self.pending = self.pending, deque()
        self.qbytes -= sum(len(m) for m, _ in pending)
        for msg, kind in pending:
            if self.closing:
                break
            if kind == _KIND_CONTROL:
                self._push_msg(msg, 0, _KIND_CONTROL)
            else:
                self.push_event(msg[len(_EVENT_PREFIX) : -1], msg)


# --------------------------------------------------------------------------- the server


class Server:
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
    ) -> None:
        self.host = host
        self.compression = compression
        self.port = port
        self.token = token
        self.initial_limit = initial_limit
        # An event must fit in one message once stamped (no message we send may exceed
        # max_message_bytes): a larger max_event_bytes is lowered to that.
        self.max_event_bytes = min(max_event_bytes, event_room(max_message_bytes) - _STAMP_BYTES)
        self.max_message_bytes = max_message_bytes
        self.max_batch_events = max_batch_events
        self.max_connections = max_connections
        self.queue_size = queue_size
        self.max_queue_bytes = max_queue_bytes
        self.heartbeat_interval = heartbeat_interval
        origins = None if allowed_origins is None else list(allowed_origins)
        self._any_origin = origins is not None and "*" in origins
        self._origins = frozenset(o.rstrip("/").lower() for o in origins or ())
        self._default_origins = origins is None
        # the certificate this server presents, when it loaded it from certfile (PEM): lets
        # client_ssl_context() trust exactly it (an ssl.SSLContext cannot be asked for it)
        self._own_cert_pem: str | None = None
        if ssl_context is None and certfile:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            try:
                ctx.load_cert_chain(certfile, keyfile)
                with open(certfile, encoding="ascii", errors="replace") as fh:
                    pem = _PEM_CERT.search(fh.read())
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(f"certfile/keyfile: cannot load: {exc}") from None
            ssl_context = ctx
            self._own_cert_pem = pem.group(0) if pem else None
        self.ssl_context = ssl_context
        self.store: Store = open_store(store, retain=retain)
        self.store.max_event_bytes = self.max_event_bytes
        self.running = False
        self._clients: set[_Client] = set()
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._broadcast_last = 0  # id of the newest event handed to the clients
        self._heartbeat_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = 0.0
        self._options: dict[str, Any] = {}
        # metrics
        self._events_in = 0
        self._bytes_out = 0
        self._messages_out = 0
        self._connections_total = 0
        self._dropped_slow = 0
        self._closed_events_out = 0
        self._queue_max = 0
        self._errors = _Counter()
        self._rejected = _Counter()
        self._rate = RateMeter(window=10.0, clock=time.monotonic)
        self.connect_rate = float(connect_rate)
        self.connect_burst = connect_burst
        self._connect_limiter = RateLimiter(
            self.connect_rate, connect_burst, max_keys=CONNECT_RATE_MAX_IPS, clock=time.monotonic
        )
        # per-tick write coalescing: clients holding a tick buffer, flush scheduled?
        self._dirty: list[_Client] = []
        self._flush_scheduled = False
        # publish_nowait: batches handed over by other threads, drained on the loop
        self._nowait_lock = threading.Lock()
        self._nowait_queue: deque[list[Encoded]] = deque()
        self._nowait_scheduled = False
        self._nowait_pending = 0
        self._nowait_refused = 0
        # the memory store appends synchronously: ingest without a coroutine per message (only
        # when ``append`` is MemoryStore's own, so a subclass overriding it keeps its behaviour)
        st = self.store
        self._append_now: Callable[[Appendable], list[StoredEvent]] | None = (
            st.append_now
            if isinstance(st, MemoryStore) and type(st).append is MemoryStore.append
            else None
        )

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
                middlewares=[self._middleware],
            )
            app.router.add_post("/events", self._post_events)
            app.router.add_get("/events/recent", self._get_recent)
            app.router.add_get("/events/filter-options", self._get_filter_options)
            app.router.add_get("/stream", self._stream)
            app.router.add_get("/health", self._get_health)
            app.router.add_get("/metrics", self._get_metrics)
            app.on_shutdown.append(self._on_shutdown)
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
            await runner.setup()
            site = web.SockSite(runner, sock, ssl_context=self.ssl_context)
            await site.start()
        except BaseException:
            sock.close()
            await self.store.close()
            raise
        self._runner = runner
        self._broadcast_last = self.store.last_id
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
        with _registry_lock:
            if _registry.get((self.host, self.port)) is self:
                del _registry[(self.host, self.port)]
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._heartbeat_task
            self._heartbeat_task = None
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
        clients = list(self._clients)
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
            raise RuntimeError("Server.stop() called from the loop thread; use stop_async()")
        _loop.run(self.stop_async(), timeout=timeout)

    # ---------------------------------------------------------------- ingest
    async def publish_async(self, events: Event | list[Event]) -> list[Event]:
        """Validate and ingest on the loop; returns the stored events."""
        batch = validate_events(events, max_batch=self.max_batch_events)
        try:
            stored = await self._ingest(batch)
        except StoreError:
            self._errors.bump("store")
            raise
        return [s.event for s in stored]

    async def _publish_count(self, events: Event | list[Event]) -> int:
        """:meth:`publish_async` for producers that ignore the result (the demo): returns how
        many events were stored, without decoding them back into dicts."""
        batch = validate_events(events, max_batch=self.max_batch_events)
        try:
            return len(await self._ingest(batch))
        except StoreError:
            self._errors.bump("store")
            raise

    def publish(self, events: Event | list[Event]) -> list[Event]:
        """Ingest one event (dict) or a list from any thread, exactly like ``POST /events``.

        Returns the stored events (with ``id``, ``timestamp``, ``server_received``; treat them as
        read-only).  Raises EventValidationError / LimitExceeded / StoreError / ServerError.
        """
        if not self.running:
            raise ServerError(f"server {self.url} is stopped")
        if _loop.in_loop_thread():
            raise RuntimeError("Server.publish() called from the loop thread; use publish_async()")
        return _loop.run(self.publish_async(events))

    def publish_nowait(self, events: Event | list[Event]) -> int:
        """Hand one event (dict) or a list to the server without waiting; from any thread.

        Validates and encodes in the caller's thread (raises EventValidationError /
        LimitExceeded like :meth:`publish`, ServerError when stopped), then schedules the
        ingest of that snapshot on the server's loop (the caller may change its dicts at once:
        what is stored is what was checked) and returns the number of events **accepted**:
        all of them, or fewer (a prefix of the list, possibly 0) when ``NOWAIT_MAX_PENDING``
        (100,000) accepted events are still waiting to be ingested -- the caller decides
        whether to retry the rest later.  Refused
        events are counted in ``metrics()["publish_nowait_refused"]``.  Events from one thread
        are ingested in call order; batches waiting together are ingested as one store append
        (whole batches, up to ``NOWAIT_SLICE`` = 1000 events per loop callback).
        Errors at ingest (only store failures are left) are logged on the ``wsnotebook`` logger
        and counted in ``metrics()["errors"]["publish_nowait"]``, never raised.
        """
        loop = self._loop
        if not self.running or loop is None:
            raise ServerError(f"server {self.url} is stopped")
        # Encoded and decoded back here, in the caller's thread: the caller may change its
        # dicts (or list) as soon as we return, and an event that cannot be stored must be
        # refused now, not fail the later ingest it shares with other calls' events.
        batch = snapshot_events(
            validate_events(events, max_batch=self.max_batch_events), self.max_event_bytes
        )
        n = len(batch)
        with self._nowait_lock:
            if not self.running:  # checked under the lock: stop ingests what was queued before
                raise ServerError(f"server {self.url} is stopped")
            room = NOWAIT_MAX_PENDING - self._nowait_pending
            if n > room:
                self._nowait_refused += n - max(room, 0)
                if room <= 0:
                    return 0
                batch, n = batch[:room], room
            self._nowait_pending += n
            self._nowait_queue.append(batch)
            schedule = not self._nowait_scheduled
            self._nowait_scheduled = True
        if schedule:
            try:
                if _loop.in_loop_thread():
                    loop.call_soon(self._drain_nowait)
                else:
                    loop.call_soon_threadsafe(self._drain_nowait)
            except RuntimeError:  # loop closed under us
                with self._nowait_lock:
                    self._nowait_queue.clear()
                    self._nowait_pending = 0
                    self._nowait_scheduled = False
                raise ServerError(f"server {self.url} is stopped") from None
        return n

    def _drain_nowait(self) -> None:
        # At most NOWAIT_SLICE events per callback, then yield to the loop (writers, I/O) and
        # continue: a backlog never lands on the clients' send queues in one tick.
        if not self.running:
            return  # stopping: _ingest_pending_nowait ingests whatever is still queued
        batches: list[list[Encoded]] = []
        with self._nowait_lock:
            q = self._nowait_queue
            taken = 0
            while q and taken < NOWAIT_SLICE:
                batches.append(q.popleft())
                taken += len(batches[-1])
            more = bool(q)
            self._nowait_scheduled = more
        if more:
            assert self._loop is not None
            self._loop.call_soon(self._drain_nowait)
        if not batches:
            return
        events = batches[0] if len(batches) == 1 else [e for b in batches for e in b]
        n = len(events)
        if not events:
            return
        if self._append_now is not None:
            try:
                self._ingest_now(events)
            except Exception as exc:
                self._errors.bump("publish_nowait")
                log.error("wsnotebook: publish_nowait ingest failed: %r", exc)
            finally:
                self._nowait_done(n)
            return
        task = asyncio.ensure_future(self._ingest(events))
        task.add_done_callback(functools.partial(self._nowait_task_done, n=n))

    async def _ingest_pending_nowait(self) -> None:
        """On stop: ingest every event ``publish_nowait`` accepted and that still waits (an
        accepted event is never dropped by a graceful stop; new calls are refused already)."""
        while True:
            with self._nowait_lock:
                batches = list(self._nowait_queue)
                self._nowait_queue.clear()
            if not batches:
                return
            events = [e for b in batches for e in b]
            try:
                await self._ingest(events)
            except Exception as exc:
                self._errors.bump("publish_nowait")
                log.error("wsnotebook: publish_nowait ingest at stop failed: %r", exc)
            finally:
                self._nowait_done(len(events))

    def _nowait_task_done(self, task: asyncio.Future[list[StoredEvent]], *, n: int) -> None:
        self._nowait_done(n)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._errors.bump("publish_nowait")
            log.error("wsnotebook: publish_nowait ingest failed: %r", exc)

    def _nowait_done(self, n: int) -> None:
        with self._nowait_lock:
            self._nowait_pending -= n

    def _ingest_now(self, events: Appendable) -> list[StoredEvent]:
        """Synchronous ingest (memory store only)."""
        assert self._append_now is not None
        stored = self._append_now(events)
        n = len(stored)
        self._events_in += n
        self._rate.add(n)
        self._broadcast(stored)
        return stored

    async def _ingest(self, events: Appendable) -> list[StoredEvent]:
        if self._append_now is not None:
            return self._ingest_now(events)
        stored = await self.store.append(events)
        n = len(stored)
        self._events_in += n
        self._rate.add(n)
        self._broadcast(stored)
        return stored

    def _broadcast(self, stored: list[StoredEvent]) -> None:
        """Hand new events to every client.  Each event's ``event`` message and its WebSocket
        frame are built once here and shared by all clients (encode once).  With more than
        ``BROADCAST_CHECKPOINT_EVERY`` clients, ``_loop.budget_checkpoint()`` runs after every
        that many, so a big fan-out inside a kernel yields the GIL when over the CPU budget (a
        no-op outside a kernel / without a budget)."""
        if stored:
            # Everything up to here has been handed to the clients registered so far; a client
            # registering now replays up to this id from the store and gets the rest live.  (A
            # store that commits in a worker thread may already hold later ids that are not yet
            # broadcast: ``store.last_id`` would make them arrive twice, replayed and live.)
            self._broadcast_last = stored[-1].id
        clients = self._clients
        if not clients:
            return
        if len(stored) == 1:
            enc = stored[0].encoded
            emsg = event_message(enc)
            frame = _text_frame(emsg)
            every = BROADCAST_CHECKPOINT_EVERY
            if len(clients) <= every or not _loop.budget.active:
                for c in clients:
                    c.push_event(enc, emsg, frame)
                return
            ordered = list(clients)
            for start in range(0, len(ordered), every):
                for c in ordered[start : start + every]:
                    c.push_event(enc, emsg, frame)
                _loop.budget_checkpoint()
            return
        run = _Run([s.encoded for s in stored])
        every = BROADCAST_CHECKPOINT_EVERY
        if len(clients) <= every or not _loop.budget.active:
            for c in clients:
                c.push_many(run)
            return
        ordered = list(clients)
        for start in range(0, len(ordered), every):
            for c in ordered[start : start + every]:
                c.push_many(run)
            _loop.budget_checkpoint()

    def _mark_dirty(self, client: _Client) -> None:
        """``client`` started a tick buffer: flush every such buffer at the end of this tick, or
        ``BUDGET_COALESCE`` seconds later while the kernel's CPU budget is under pressure."""
        self._dirty.append(client)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if _loop.budget.under_pressure():
                _loop.note_coalesced()
                client.loop.call_later(BUDGET_COALESCE, self._flush_dirty)
            else:
                client.loop.call_soon(self._flush_dirty)

    def _flush_dirty(self) -> None:
        self._flush_scheduled = False
        dirty, self._dirty = self._dirty, []
        for c in dirty:
            try:
                c.flush_tick()
            except Exception as exc:  # never let one client break the others' flush
                self._errors.bump("flush")
                log.error("wsnotebook: flush to %s failed: %r", c.peer, exc)

    def _note_sent(self, nbytes: int) -> None:
        self._messages_out += 1
        self._bytes_out += nbytes

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            try:
                msg = encode_json(
                    {
                        "type": "heartbeat",
                        "timestamp": int(now_ms()),
                        "seq": self.store.last_id,
                        "epoch": self.store.epoch,
                    }
                )
                for c in list(self._clients):
                    if c.extended:
                        c.send_control(msg)
            except Exception as exc:  # pragma: no cover - defensive
                self._errors.bump("heartbeat")
                log.error("wsnotebook: heartbeat failed: %r", exc)

    # ---------------------------------------------------------------- HTTP plumbing
    def _origin_ok(self, origin: str) -> bool:
        if self._any_origin:
            return True
        if self._default_origins:
            return _default_origin_ok(origin)
        return origin.rstrip("/").lower() in self._origins

    def _token_ok(self, request: web.Request) -> bool:
        if not self.token:
            return True
        given = ""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if not given:
            given = request.query.get("token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_ok(origin):
            return self._reject(403, "origin not allowed")
        if request.method == "OPTIONS":
            missing = request.match_info.http_exception
            if missing is not None and missing.status == 404:
                return self._reject(404, "not found")
            return self._preflight(origin)
        if not self._token_ok(request):
            return self._reject(401, "unauthorized", **{"WWW-Authenticate": "Bearer"})
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            message = exc.reason.lower() if exc.reason else "error"
            if exc.status == 413:
                message = f"body: exceeds the limit of {self.max_message_bytes} bytes"
            resp = self._reject(exc.status, message)
        except asyncio.CancelledError:
            raise
        except StoreError as exc:
            self._errors.bump("store")
            log.error("wsnotebook: store error: %s", exc)
            resp = self._reject(503, str(exc))
        except Exception as exc:
            self._errors.bump("handler")
            log.exception("wsnotebook: handler error on %s %s", request.method, request.path)
            resp = self._reject(500, f"internal error: {type(exc).__name__}")
        if origin is not None and not resp.prepared:
            resp.headers["Access-Control-Allow-Origin"] = origin
            resp.headers["Vary"] = "Origin"
        return resp

    def _reject(self, status: int, message: str, **headers: str) -> web.Response:
        self._rejected.bump(str(status))
        return _json_error(status, message, **headers)

    def _preflight(self, origin: str | None) -> web.Response:
        """CORS preflight (no token needed: browsers never send credentials on it)."""
        if origin is None:
            return web.Response(status=204, headers={"Allow": "GET, POST, OPTIONS"})
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Authorization",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            },
        )

    # ---------------------------------------------------------------- HTTP endpoints
    async def _post_events(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != _JSON:
            return self._reject(
                415, f"Content-Type: expected application/json, got {request.content_type}"
            )
        length = request.content_length
        if length is not None and length > self.max_message_bytes:
            return self._reject(
                413, f"body: {length} bytes exceeds the limit of {self.max_message_bytes}"
            )
        try:
            body = await request.read()
        except RequestPayloadError:  # a corrupt gzip/deflate body (aiohttp decodes it)
            encoding = request.headers.get("Content-Encoding", "")
            resp = self._reject(400, f"body: cannot decode Content-Encoding {encoding!r}")
            # Close the connection: aiohttp would otherwise drain the rest of the body after
            # the reply, meet the same decode error and log it as an unhandled exception (a
            # 35-line traceback per request); the body's framing is unknown anyway.
            resp.force_close()
            return resp
        try:
            events = decode_events(
                body,
                max_event_bytes=self.max_event_bytes,
                max_message_bytes=self.max_message_bytes,
                max_batch=self.max_batch_events,
            )
        except LimitExceeded as exc:
            return self._reject(413, str(exc))
        except (ProtocolError, EventValidationError) as exc:
            return self._reject(400, str(exc))
        try:
            stored = await self._ingest(events)
        except LimitExceeded as exc:  # valid, but its JSON is over max_event_bytes
            return self._reject(413, str(exc))
        except EventValidationError as exc:  # valid, but cannot be encoded as JSON
            return self._reject(400, str(exc))
        if body.lstrip()[:1] == b"[":
            out = b"[" + b",".join(s.encoded for s in stored) + b"]"
        else:
            out = stored[0].encoded
        return web.Response(body=out, content_type=_JSON)

    def _int_param(self, request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
        raw = request.query.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{name}: expected integer, got {raw!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"{name}: must be in {lo}..{hi}, got {value}")
        return value

    async def _get_recent(self, request: web.Request) -> web.StreamResponse:
        try:
            limit = self._int_param(request, "limit", self.initial_limit, 0, 100_000)
        except ValueError as exc:
            return self._reject(400, str(exc))
        stored = await self.store.recent(limit) if limit else []
        return web.Response(
            body=b"[" + b",".join(s.encoded for s in stored) + b"]", content_type=_JSON
        )

    async def _get_filter_options(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=encode_json(await self.store.filter_options()), content_type=_JSON)

    async def _get_health(self, request: web.Request) -> web.StreamResponse:
        body = {
            "status": "ok",
            "epoch": self.store.epoch,
            "seq": self.store.last_id,
            "store": self.store.kind,
            "connections": len(self._clients),
            "uptime_s": round(time.monotonic() - self._started, 3),
        }
        return web.Response(body=encode_json(body), content_type=_JSON)

    async def _get_metrics(self, request: web.Request) -> web.StreamResponse:
        metrics = self.metrics_now()
        if request.query.get("format") == "prometheus":
            return web.Response(text=_prometheus(metrics), content_type="text/plain")
        return web.Response(body=encode_json(metrics), content_type=_JSON)

    # ---------------------------------------------------------------- WebSocket
    def _stream_params(self, request: web.Request) -> dict[str, Any]:
        q = request.query
        extended = any(k in q for k in ("since", "epoch", "batch")) or q.get("ext") == "1"
        since: int | None = None
        if q.get("since", "") != "":
            since = self._int_param(request, "since", 0, 0, 2**63 - 1)
        batch: int | str = 0
        raw = q.get("batch", "")
        if raw == "auto":
            batch = "auto"
        elif raw != "":
            batch = self._int_param(request, "batch", 0, 0, 100_000)
        interval_ms = self._int_param(request, "interval_ms", 50, 0, 60_000)
        epoch = q.get("epoch") or None
        return {
            "extended": extended,
            "since": since,
            "batch": batch,
            "interval": interval_ms / 1000.0,
            "epoch": epoch,
        }

    def _connect_allowed(self, request: web.Request) -> web.Response | None:
        """Per-IP handshake rate limit: ``None`` when allowed, else the 429 reply."""
        limiter = self._connect_limiter
        if not limiter.enabled:
            return None
        ip = request.remote or "?"
        wait = limiter.check(ip)
        if not wait:
            return None
        log.debug("wsnotebook: handshake from %s rate-limited (retry in %.2f s)", ip, wait)
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
            params = self._stream_params(request)
        except ValueError as exc:
            return self._reject(400, str(exc))
        if len(self._clients) >= self.max_connections:
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
        # fast path keeps payload text as sent; see _columns.py).  Seed clients ignore it.
        ws.headers[WSNOTEBOOK_HEADER] = PROTOCOL_VERSION
        await ws.prepare(request)
        transport = request.transport
        peer = str(request.remote)
        client = _Client(
            self,
            ws,
            transport if isinstance(transport, asyncio.Transport) else None,
            peer=peer,
            **params,
        )
        # register and fix the replay end atomically (no await in between): every event with
        # id <= replay_to comes from the store, every later one through the live path.
        client.replay_to = self._broadcast_last
        self._clients.add(client)
        self._connections_total += 1
        client.writer_task = asyncio.ensure_future(client.run_writer())
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    await self._client_message(client, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    self._errors.bump("ws_receive")
                    log.debug("wsnotebook: receive error from %s: %r", peer, ws.exception())
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._errors.bump("ws_handler")
            log.error("wsnotebook: stream handler error for %s: %r", peer, exc)
        finally:
            self._clients.discard(client)
            if not client.closing:
                client.flush_tick()
                client.closing = True
                client._cancel_timer()
                client.wake.set()
            if client.close_task is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await client.close_task
            if client.writer_task is not None and not client.writer_task.done():
                client.writer_task.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await client.writer_task
            self._queue_drop(client)
            self._closed_events_out += client.events_out
        return ws

    def _queue_drop(self, client: _Client) -> None:
        client.tick = []
        client.tick_bytes = 0
        client.queue.clear()
        client.runs.clear()
        client.pending.clear()
        client.qbytes = 0

    async def _client_message(self, client: _Client, data: str | bytes) -> None:
        code, message = "", ""
        # aiohttp hands TEXT frames over as str: orjson parses str directly (no re-encode copy);
        # the UTF-8 size is computed only when the single-event limit needs it.
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
                        _utf8_size_over(data, self.max_event_bytes)
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
                        self._errors.bump("store")
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
        self._errors.bump(f"client_{code}")
        client.send_control(error_message(message, code))
        if client.bad_messages >= MAX_CONSECUTIVE_ERRORS:
            client.start_close(CLOSE_POLICY, b"too many invalid messages")

    # ---------------------------------------------------------------- metrics
    def metrics_now(self) -> dict[str, Any]:
        """Metrics snapshot (call on the loop thread; :meth:`metrics` is the thread-safe one)."""
        clients = list(self._clients)
        depths = [len(c.queue) + len(c.pending) for c in clients]
        return {
            "url": self.url,
            "running": self.running,
            "connections": len(clients),
            "connections_total": self._connections_total,
            "events_in": self._events_in,
            "events_out": sum(c.events_out for c in clients) + self._events_out_closed(),
            "events_per_s": round(self._rate.rate(), 3),
            "messages_out": self._messages_out,
            "bytes_out": self._bytes_out,
            "errors": dict(self._errors),
            "dropped_slow_clients": self._dropped_slow,
            "queue_depth_max": self._queue_max,
            "queue_depth_current_max": max(depths, default=0),
            "queue_depth_total": sum(depths),
            "rejected": dict(self._rejected),
            "connect_limiter_ips": len(self._connect_limiter),
            "publish_nowait_pending": self._nowait_pending,
            "publish_nowait_refused": self._nowait_refused,
            "uptime_s": round(time.monotonic() - self._started, 3) if self._started else 0.0,
            "store": self.store.stats(),
        }

    def _events_out_closed(self) -> int:
        return self._closed_events_out

    def metrics(self) -> dict[str, Any]:
        """Thread-safe metrics dict: connections, events_in, events_out (events delivered,
        summed over clients), events_per_s (ingest rate, 10 s window), bytes_out, messages_out,
        errors by kind, dropped_slow_clients, queue depths, rejected requests by status, uptime,
        store stats."""
        if _loop.in_loop_thread() or not self.running or self._loop is None:
            return self.metrics_now()
        fut = asyncio.run_coroutine_threadsafe(self._metrics_async(), self._loop)
        return fut.result(10)

    async def _metrics_async(self) -> dict[str, Any]:
        return self.metrics_now()


def _prometheus(metrics: dict[str, Any]) -> str:
    lines: list[str] = []
    for key in (
        "connections",
        "connections_total",
        "events_in",
        "events_out",
        "events_per_s",
        "messages_out",
        "bytes_out",
        "dropped_slow_clients",
        "queue_depth_max",
        "queue_depth_total",
        "uptime_s",
    ):
        value = metrics[key]
        kind = "gauge" if key in ("connections", "events_per_s", "queue_depth_total") else "counter"
        lines.append(f"# TYPE wsnotebook_{key} {kind}")
        lines.append(f"wsnotebook_{key} {value}")
    lines.append("# TYPE wsnotebook_errors counter")
    for kind, n in sorted(metrics["errors"].items()):
        lines.append(f'wsnotebook_errors{{kind="{kind}"}} {n}')
    lines.append("# TYPE wsnotebook_rejected counter")
    for status, n in sorted(metrics["rejected"].items()):
        lines.append(f'wsnotebook_rejected{{status="{status}"}} {n}')
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- serve()


def _options(**kwargs: Any) -> dict[str, Any]:
    out = dict(kwargs)
    if out.get("allowed_origins") is not None:
        out["allowed_origins"] = tuple(out["allowed_origins"])
    return out


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 4000,
    store: str | Store = "memory",
    token: str | None = None,
    allowed_origins: Iterable[str] | None = None,
    initial_limit: int = 300,
    retain: int = 100_000,
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
    ssl_context: ssl.SSLContext | None = None,
    certfile: str | None = None,
    keyfile: str | None = None,
    restart: bool = False,
) -> Server:
    """Start (or return) a background HTTP + WebSocket event server; returns once bound.

    Options (keyword-only; defaults and bounds):

    * ``host="127.0.0.1"``: bind address.  Any non-loopback host requires a token: when
      ``token`` is ``None`` one is generated and printed once to stdout (never logged);
      ``token=""`` on a non-loopback host raises ConfigError.
    * ``port=4000`` (0..65535; ``0`` picks a free port).  Taken by someone else: PortInUseError.
    * ``store="memory"`` (ring of ``retain`` events) or ``"sqlite:///path.db"`` (durable WAL).
    * ``token=None``: when set, required on every HTTP request and the WebSocket handshake
      (``Authorization: Bearer T`` or ``?token=T``).
    * ``allowed_origins=None``: browser ``Origin`` allow-list; default http(s)://localhost,
      127.0.0.1, [::1] on any port.  ``["*"]`` allows any origin.  Requests without an Origin
      header (scripts, hooks, Python clients) are always allowed.
    * ``initial_limit=300`` (0..100,000): events in the ``initial`` snapshot.
    * ``retain=100_000`` (1..100,000,000): events the store keeps (oldest evicted first).
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
    * ``ssl_context`` or ``certfile``/``keyfile``: serve HTTPS/WSS.  ``server.client_ssl_context()``
      is a client context trusting the certificate loaded from ``certfile`` (used by
      ``monitor(server)``).
    * ``restart=False``: a second ``serve()`` on the same host/port with the same options returns
      the running server; with different options it raises ConfigError unless ``restart=True``
      (then the old server stops first).
    """
    _bounded_int("port", port, 0, 65535)
    _bounded_int("initial_limit", initial_limit, 0, 100_000)
    _bounded_int("max_event_bytes", max_event_bytes, 1024, 1 << 30)
    _bounded_int("max_message_bytes", max_message_bytes, 1024, 1 << 30)
    _bounded_int("max_batch_events", max_batch_events, 1, 1_000_000)
    _bounded_int("max_connections", max_connections, 1, 100_000)
    _bounded_int("queue_size", queue_size, 1, 1_000_000)
    _bounded_int("max_queue_bytes", max_queue_bytes, 1024, 1 << 34)
    if isinstance(heartbeat_interval, bool) or not isinstance(heartbeat_interval, (int, float)):
        raise ConfigError("heartbeat_interval: expected a number of seconds")
    if not (math.isfinite(heartbeat_interval) and 0 <= heartbeat_interval <= 3600):
        raise ConfigError(f"heartbeat_interval must be in 0..3600 s, got {heartbeat_interval}")
    if isinstance(connect_rate, bool) or not isinstance(connect_rate, (int, float)):
        raise ConfigError("connect_rate: expected a number of handshakes per second")
    if not (math.isfinite(connect_rate) and 0 <= connect_rate <= 1_000_000):
        raise ConfigError(f"connect_rate must be in 0..1,000,000 per s, got {connect_rate}")
    _bounded_int("connect_burst", connect_burst, 1, 1_000_000)
    if not isinstance(host, str):
        raise ConfigError(f"host: expected string, got {type(host).__name__}")
    if token is not None and not isinstance(token, str):
        raise ConfigError(f"token: expected string or None, got {type(token).__name__}")
    if (certfile is None) != (keyfile is None) and certfile is None:
        raise ConfigError("keyfile given without certfile")
    kwargs: dict[str, Any] = {
        "host": host,
        "port": port,
        "store": store,
        "token": token,
        "allowed_origins": allowed_origins,
        "initial_limit": initial_limit,
        "retain": retain,
        "max_event_bytes": max_event_bytes,
        "max_message_bytes": max_message_bytes,
        "max_batch_events": max_batch_events,
        "max_connections": max_connections,
        "queue_size": queue_size,
        "max_queue_bytes": max_queue_bytes,
        "heartbeat_interval": float(heartbeat_interval),
        "compression": bool(compression),
        "connect_rate": float(connect_rate),
        "connect_burst": connect_burst,
        "ssl_context": ssl_context,
        "certfile": certfile,
        "keyfile": keyfile,
    }
    options = _options(**kwargs)
    if port:
        with _registry_lock:
            existing = _registry.get((host, port))
        if existing is not None and existing.running:
            if existing._options == options:
                return existing
            if not restart:
                changed = sorted(k for k in options if options[k] != existing._options.get(k))
                raise ConfigError(
                    f"a server is already running on {host}:{port} with different options "
                    f"({', '.join(changed)}); pass restart=True to replace it or stop() it first"
                )
            existing.stop()
    effective_token = token
    generated = False
    if not _is_loopback(host):
        if token == "":
            raise ConfigError(
                f"token='' on non-loopback host {host!r}: refusing to run open to the network"
            )
        if token is None:
            effective_token = secrets.token_urlsafe(24)
            generated = True
    server = Server(**{**kwargs, "token": effective_token or None})
    server._options = options
    if _loop.in_loop_thread():
        raise RuntimeError("serve() called from the loop thread; use Server.start_async()")
    try:
        _loop.run(server.start_async(), timeout=60)
    except WsnError:
        raise
    except OSError as exc:
        raise ServerError(f"cannot start server on {host}:{port}: {exc}") from None
    # Registered under the port actually bound, with that port among its options: serve(port=0)
    # then serve(port=server.port) with the same other options returns this server.
    server._options = {**options, "port": server.port}
    with _registry_lock:
        _registry[(host, server.port)] = server
    if generated:
        print(
            f"wsnotebook: serving on {server.http_url} (bound to {host}); "
            f"token (send as 'Authorization: Bearer <token>'): {effective_token}"
        )
    return server


def running_servers() -> list[Server]:
    """The servers started by :func:`serve` in this process and still running."""
    with _registry_lock:
        return [s for s in _registry.values() if s.running]


def stop_all(timeout: float = 10.0) -> None:
    """Stop every running server (also run at interpreter exit)."""
    for server in running_servers():
        try:
            server.stop(timeout=timeout)
        except Exception as exc:  # never raise at exit
            log.warning("wsnotebook: could not stop %s: %r", server.url, exc)


_loop.add_shutdown_hook(stop_all)
