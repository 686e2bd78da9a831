"""``Connection``: one WebSocket subscriber's send side (today's per-connection state machine).

Owns the client's bounded send queue, its loop-tick buffer for the direct write path and its
optional fixed-size batcher; the async side (replay, writer task, closing handshake) is in
:mod:`.writer`.  Everything here runs on the loop thread, synchronously.

Invariants and drop policy:

* Bounded: at most ``queue_size`` queued messages (held ones during the replay included) and
  ``max_queue_bytes`` bytes; a message that would exceed either drops the client with close 1013
  (``overflow``), counted in ``dropped_slow_clients``.  A slow client never stalls others.
* Order: live events and control messages leave in arrival order; during the replay they are
  held (``pending``) and moved to the normal path by ``go_live``.
* The tick buffer is non-empty only while the queue is empty and the writer idle; it is written
  with ONE ``transport.write`` when the tick ends (``Broadcaster.flush_dirty``) or early at
  ``TICK_MAX_BYTES`` / ``AUTO_BATCH_MAX``.
* No message exceeds ``max_message_bytes`` (a client with the same limit would close with
  1009): a batch is sent before an event that would overflow it joins.
* Once ``closing``, nothing more is accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from ..protocol import CLOSE_TRY_AGAIN, Batcher, batch_message, event_message, event_room
from .wire import (
    EVENT_OVERHEAD,
    EVENT_PREFIX,
    KIND_BATCH,
    KIND_CONTROL,
    KIND_EVENT,
    KIND_RUN,
    Run,
    text_frame,
    text_header,
)
from .writer import close_connection

if TYPE_CHECKING:
    from .server import Server

__all__ = [
    "AUTO_BATCH_MAX",
    "AUTO_RUN_MAX_BYTES",
    "FAST_WRITE_LIMIT",
    "TICK_MAX_BYTES",
    "Connection",
]

log = logging.getLogger("wsnotebook")

#: Most events per ``auto`` batch (a tick's or a queued run's).
AUTO_BATCH_MAX = 1000
#: Event bytes after which a ``batch=auto`` client's queued run of single events is closed (one
#: message each): 1 MiB, the default message limit of common WebSocket clients.
AUTO_RUN_MAX_BYTES = 1 << 20
#: Socket write-buffer size below which a broadcast writes a frame directly.
FAST_WRITE_LIMIT = 64 * 1024
#: Bytes of event data a client collects during one loop tick before it writes them out early
#: (the tick buffer is written with one ``transport.write`` at the end of the tick otherwise).
TICK_MAX_BYTES = 256 * 1024


def _push_auto(conn: Connection, encoded: bytes) -> bool:
    """``Connection.push_auto``: ``push_event`` for a ``batch=auto`` client whose tick takes
    the event as it is (the direct path, or a compressed client's tick): no ``event`` message
    or frame needed.  False when this client needs them: the caller then calls ``push_event``.
    (A module function bound as the method: the class stays under the layout's 400 lines.)"""
    if not conn.auto or conn.closing or conn.replaying:
        return False
    tick = conn.tick
    if tick:
        if conn.tick_bytes + len(tick) + len(encoded) > conn.tick_room:
            return False  # push_event sends the tick first
    elif not conn._tick_ok():
        return False
    else:
        conn.hub.mark_dirty(conn)
    tick.append(encoded)
    conn.tick_bytes += len(encoded)
    if conn.tick_bytes >= TICK_MAX_BYTES or len(tick) >= AUTO_BATCH_MAX:
        conn.flush_tick()
    return True


class Connection:
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
        self.hub = server.broadcaster
        self.counters = server.counters
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
        self.batch_message = batch_message  # ws.py: the ``columns`` encoder for format=columns
        self.queue: deque[tuple[bytes, int, int]] = deque()  # (message, n events, kind)
        # batch=auto: the encoded events of each KIND_RUN queue entry, in queue order
        self.runs: deque[list[bytes]] = deque()
        self.tail_run_bytes = 0  # event bytes in the run at the queue's tail
        self.qbytes = 0
        # live event and control messages held during the replay, in arrival order
        self.pending: deque[tuple[bytes, int]] = deque()  # (message, kind)
        self.replaying = True
        self.replay_to = 0
        self.busy = False
        self.closing = False
        self.final: bytes | None = None  # start_close's last control message
        # start_close(keep_control=True): the control messages (``error`` replies) that were
        # still queued or held, sent in order before ``final`` and the close frame
        self.last_controls: list[bytes] = []
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
        # tick ends (Broadcaster.flush_dirty) or early at TICK_MAX_BYTES / AUTO_BATCH_MAX:
        # complete frames for per-event clients, encoded events for batch=auto ones.
        # Invariant: the tick is non-empty only while the queue is empty and the writer idle.
        self.tick: list[bytes] = []
        self.tick_bytes = 0

    # ---------------------------------------------------------------- enqueueing (loop thread)
    def _tick_ok(self) -> bool:
        """May this event join the tick buffer?  (Compressed ``batch=auto``: always.)"""
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
            self._hold(emsg, KIND_EVENT)
            return
        batcher = self.batcher
        if batcher is not None:
            if len(batcher) and batcher.nbytes + len(batcher) + len(encoded) > self.room:
                # this event would make the batch message too large: send what is pending
                self.cancel_timer()
                items = batcher.flush()
                self.push_msg(self.batch_message(items), len(items), KIND_BATCH)
            full = batcher.add(encoded)
            if full is not None:
                self.cancel_timer()
                self.push_msg(self.batch_message(full), len(full), KIND_BATCH)
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
                self.hub.mark_dirty(self)
            if self.auto:
                tick.append(encoded)
                self.tick_bytes += len(encoded)
            else:
                tick.append(frame if frame is not None else text_frame(emsg))
                self.tick_bytes += len(emsg)
            if self.tick_bytes >= TICK_MAX_BYTES or len(tick) >= AUTO_BATCH_MAX:
                self.flush_tick()
            return
        self.enqueue(emsg, 1, KIND_EVENT)

    push_auto = _push_auto  # push_event minus the event message when the tick takes it

    def push_many(self, run: Run) -> None:
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
                    self.hub.mark_dirty(self)
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
                self.enqueue(event_message(tick[0]), 1, KIND_EVENT)
            else:
                self.enqueue(self.batch_message(tick), len(tick), KIND_BATCH)
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
            data = text_frame(body)
            msgs, payload = 1, len(body)
        else:
            body = self.batch_message(tick)
            data = text_header(len(body)) + body
            msgs, payload = 1, len(body)
        try:
            transport.write(data)
        except Exception as exc:  # transport went away: the handler notices and cleans up
            self.server.log_throttle.debug(
                "ws_write", "wsnotebook: write to %s failed: %r", self.peer, exc
            )
            return
        self.events_out += n
        counters = self.counters
        counters.messages_out += msgs
        counters.bytes_out += payload

    def push_msg(self, msg: bytes, n: int, kind: int) -> None:
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
            transport.write(text_frame(msg))
        except Exception:  # transport went away: let the writer path notice and clean up
            return False
        self.counters.note_sent(len(msg))
        return True

    def send_control(self, msg: bytes) -> None:
        """Send a control message (``error``, ``heartbeat``).  During the replay it is held,
        in order with the live events that arrive meanwhile, and sent right after the replay
        (bounded by the send-queue limits like everything else: overflow drops with 1013)."""
        if self.closing:
            return
        if self.replaying:
            self._hold(msg, KIND_CONTROL)
            return
        self.push_msg(msg, 0, KIND_CONTROL)

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
        if self.auto and kind == KIND_EVENT:
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
        counters = self.counters
        if depth > counters.queue_max:
            counters.queue_max = depth
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
        encoded = emsg[len(EVENT_PREFIX) : -1]
        if (
            queue
            and queue[-1][2] == KIND_RUN
            and len(self.runs[-1]) < AUTO_BATCH_MAX
            and self.tail_run_bytes + len(encoded) + len(self.runs[-1]) <= self.run_room
        ):
            self.runs[-1].append(encoded)
            queue[-1] = (b"", queue[-1][1] + 1, KIND_RUN)
            self.tail_run_bytes += len(encoded)
        else:
            if len(queue) >= server.queue_size:
                self.overflow(len(emsg))
                return
            self.runs.append([encoded])
            queue.append((b"", 1, KIND_RUN))
            self.tail_run_bytes = len(encoded)
            counters = self.counters
            if len(queue) > counters.queue_max:
                counters.queue_max = len(queue)
        self.qbytes += len(emsg)
        self.wake.set()

    def _flush_batch(self) -> None:
        self.timer = None
        if self.batcher is None or self.closing:
            return
        items = self.batcher.flush()
        if items:
            self.push_msg(self.batch_message(items), len(items), KIND_BATCH)

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def overflow(self, incoming: int) -> None:
        """Send queue full: drop this client with 1013 (``incoming``: bytes that did not fit)."""
        server = self.server
        self.counters.dropped_slow += 1
        server.log_throttle.warning(
            "slow_client",
            "wsnotebook: dropping slow client %s (send queue full: %d messages, %d bytes queued; "
            "a %d-byte message would exceed queue_size=%d or max_queue_bytes=%d)",
            self.peer,
            len(self.queue) + len(self.pending),
            self.qbytes,
            incoming,
            server.queue_size,
            server.max_queue_bytes,
        )
        self.start_close(CLOSE_TRY_AGAIN, b"slow consumer: send queue overflow")

    def start_close(
        self, code: int, reason: bytes, final: bytes | None = None, *, keep_control: bool = False
    ) -> None:
        """Close with ``code``; ``final`` (a last control message) goes out just before the
        close frame, after anything still queued was discarded.  ``keep_control``: the control
        messages still queued or held (the ``error`` replies a 1008 close follows) are kept and
        sent, in order, before ``final`` and the close frame (bounded: they were in the queue)."""
        if self.closing:
            return
        self.final = final
        self.flush_tick()  # what this tick already took goes out before the close frame
        if keep_control:
            self.last_controls = [m for m, _, k in self.queue if k == KIND_CONTROL]
            self.last_controls += [m for m, k in self.pending if k == KIND_CONTROL]
        self.closing = True
        self.queue.clear()
        self.runs.clear()
        self.pending.clear()
        self.qbytes = 0
        self.cancel_timer()
        self.wake.set()
        self.close_task = asyncio.ensure_future(close_connection(self, code, reason))

    async def send(self, msg: bytes) -> None:
        """Send one message through aiohttp (the writer task's path; counted)."""
        await self.ws.send_frame(msg, WSMsgType.TEXT)
        self.counters.note_sent(len(msg))

    def next_message(self) -> tuple[bytes, int]:
        """Take the queue's head for the writer: (message, events in it)."""
        msg, n, kind = self.queue.popleft()
        if kind != KIND_RUN:
            self.qbytes -= len(msg)
            return msg, n
        parts = self.runs.popleft()
        self.qbytes -= sum(map(len, parts)) + EVENT_OVERHEAD * len(parts)
        if len(parts) == 1:
            return event_message(parts[0]), 1
        return self.batch_message(parts), len(parts)

    def go_live(self) -> None:
        """The replay is done: move what arrived meanwhile to the normal path, in order."""
        self.replaying = False
        pending, self.pending = self.pending, deque()
        self.qbytes -= sum(len(m) for m, _ in pending)
        for msg, kind in pending:
            if self.closing:
                break
            if kind == KIND_CONTROL:
                self.push_msg(msg, 0, KIND_CONTROL)
            else:
                self.push_event(msg[len(EVENT_PREFIX) : -1], msg)

    def detach(self) -> None:
        """The handler is done with this connection (the peer left): deliver what this tick
        took, then stop taking anything (no close frame: the socket is gone or closing)."""
        if not self.closing:
            self.flush_tick()
            self.closing = True
            self.cancel_timer()
            self.wake.set()

    def drop_queues(self) -> None:
        """Free everything still buffered (the connection is gone)."""
        self.tick = []
        self.tick_bytes = 0
        self.queue.clear()
        self.runs.clear()
        self.pending.clear()
        self.qbytes = 0
