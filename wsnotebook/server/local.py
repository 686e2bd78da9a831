"""In-process subscribers: a client in the same process gets the server's messages by a call.

``wsn.serve()`` then ``wsn.connect(server.url, in_process=True)`` (the notebook case): both ends
run on the one background loop, so this module hands the client the very messages a WebSocket
client would get, as bytes, by a function call at the end of the loop tick — no WebSocket
framing, no sockets, no ``websockets`` parsing, no extra task switch.  Installed on import as the
resolver of :mod:`wsnotebook.runtime.local` (the seam the client side finds it through).

A :class:`LocalSubscriber` is registered in the server's :class:`~.broadcast.Broadcaster` like a
:class:`~.connection.Connection` (it offers the same methods the broadcaster, heartbeats,
shutdown, the store feed and the metrics use), so every policy is the socket's:

* Replay/live boundary: ``replay_to = broadcast_last`` taken at registration with no ``await``
  in between; the replay is :func:`.writer.replay` itself (``initial`` with ``seq``/``epoch``,
  ``reset``, paged ``batch`` messages, ``gap`` for evicted ids), live events are held meanwhile.
  Each event is delivered once, in id order.
* Live events: a tick's events leave as one ``batch`` message (a lone event as ``event``), like
  a ``batch=auto`` client on the direct path, early at ``TICK_MAX_BYTES`` / ``AUTO_BATCH_MAX``;
  under CPU-budget pressure the tick lingers ``BUDGET_COALESCE`` (the broadcaster's rule).
* Slow consumer: delivery is synchronous, so the client cannot fall behind the live stream; the
  one queue is the replay's hold, bounded by ``queue_size`` messages and ``max_queue_bytes``
  bytes as a socket's, and overflowing it ends the subscription with 1013 (counted in
  ``dropped_slow_clients``); the client resumes with ``since``.
* Closing: ``start_close`` delivers the tick's events, then the final heartbeat (a graceful
  stop), then reports the close code once; nothing is delivered after that.
* Errors in the client's ``deliver`` are logged (rate-limited) and counted as
  ``errors["local_deliver"]``, never raised into the broadcast.

Metrics: the subscriber counts in ``connections``, ``events_out``, ``messages_out`` and
``bytes_out`` (message bytes) like a socket client; ``connections_total`` counts it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qs, urlsplit

from ..protocol import CLOSE_TRY_AGAIN, batch_message, event_message, event_room
from ..runtime.local import set_resolver
from .connection import AUTO_BATCH_MAX, TICK_MAX_BYTES
from .options import is_loopback
from .server import SERVERS
from .wire import EVENT_PREFIX, KIND_CONTROL, KIND_EVENT, Run
from .writer import replay

if TYPE_CHECKING:
    from .connection import Connection
    from .server import Server

__all__ = ["LocalSubscriber", "ServerEndpoint", "resolve"]

log = logging.getLogger("wsnotebook")

_ANY_ADDRESS = ("0.0.0.0", "::", "")


class LocalSubscriber:
    """One in-process subscriber of a server (loop thread only); see the module docstring."""

    def __init__(
        self,
        server: Server,
        deliver: Callable[[bytes], None],
        closed: Callable[[int, str], None],
        *,
        since: int | None,
        epoch: str | None,
    ) -> None:
        self.server = server
        self.hub = server.broadcaster
        self.counters = server.counters
        self.deliver = deliver
        self.closed = closed
        self.loop = asyncio.get_running_loop()
        self.extended = True
        self.peer = "in-process"
        self.since = since
        self.req_epoch = epoch
        self.replay_to = 0
        self.replaying = True
        self.closing = False
        self.finished = False
        # held during the replay, in arrival order: (message, kind); encoded events for
        # KIND_EVENT, whole messages for KIND_CONTROL
        self.pending: list[tuple[bytes, int]] = []
        self.queue: tuple[()] = ()  # no send queue (metrics read its length)
        self.qbytes = 0
        self.tick: list[bytes] = []
        self.tick_bytes = 0
        self.tick_room = min(TICK_MAX_BYTES, event_room(server.max_message_bytes))
        self.events_out = 0
        self.messages = 0
        self.bad_messages = 0  # consecutive rejected publish messages (the reader's rule)
        self.writer_task: asyncio.Task[None] | None = None
        self.close_task: asyncio.Task[None] | None = None  # closing is synchronous here

    # ---------------------------------------------------------------- the broadcaster's side
    def push_event(self, encoded: bytes, emsg: bytes, frame: bytes | None = None) -> None:
        """One live event (``emsg``/``frame`` unused: the tick's events leave as one batch)."""
        if self.closing:
            return
        if self.replaying:
            self._hold(encoded, KIND_EVENT)
            return
        tick = self.tick
        if tick and self.tick_bytes + len(tick) + len(encoded) > self.tick_room:
            self.flush_tick()  # this event would make the message too large
            tick = self.tick
        if not tick:
            self.hub.mark_dirty(cast("Connection", self))
        tick.append(encoded)
        self.tick_bytes += len(encoded)
        if self.tick_bytes >= TICK_MAX_BYTES or len(tick) >= AUTO_BATCH_MAX:
            self.flush_tick()

    def push_auto(self, encoded: bytes) -> bool:
        """``push_event`` without the ``event`` message (never needed here): always True."""
        self.push_event(encoded, b"")
        return True

    def push_many(self, run: Run) -> None:
        """Several live events of one ingest: joined to the tick with one extend when they fit."""
        tick = self.tick
        if (
            not self.closing
            and not self.replaying
            and len(tick) + len(run.encoded) <= AUTO_BATCH_MAX
            and self.tick_bytes + run.enc_bytes + len(tick) + len(run.encoded) < self.tick_room
        ):
            if not tick:
                self.hub.mark_dirty(cast("Connection", self))
            tick.extend(run.encoded)
            self.tick_bytes += run.enc_bytes
            return
        for enc in run.encoded:
            if self.closing:
                return
            self.push_event(enc, b"")

    def flush_tick(self) -> None:
        """Deliver the tick's events as one message (``event`` for one, else ``batch``)."""
        tick = self.tick
        if not tick or self.closing:
            return
        self.tick = []
        self.tick_bytes = 0
        msg = event_message(tick[0]) if len(tick) == 1 else batch_message(tick)
        self._deliver(msg, len(tick))

    def send_control(self, msg: bytes) -> None:
        """A control message (``heartbeat``, ``gap``), in order with the events."""
        if self.closing:
            return
        if self.replaying:
            self._hold(msg, KIND_CONTROL)
            return
        self.flush_tick()
        self._deliver(msg, 0)

    def start_close(
        self, code: int, reason: bytes, final: bytes | None = None, *, keep_control: bool = False
    ) -> None:
        """End the subscription with ``code``: the tick's events, then ``final`` (the graceful
        stop's last heartbeat), then ``closed(code, reason)``.  ``keep_control`` is accepted
        for the broadcaster's signature (the client never sends anything to reject)."""
        if self.closing:
            return
        self.flush_tick()
        if final is not None:
            self._deliver(final, 0)
        self.closing = True
        self._finish()
        try:
            self.closed(code, reason.decode("utf-8", "replace"))
        except Exception as exc:  # the client's callback must not break a shutdown
            self.counters.errors.bump("local_deliver")
            log.debug("wsnotebook: in-process close callback failed: %r", exc)

    # ---------------------------------------------------------------- replay (writer.replay)
    async def send(self, msg: bytes) -> None:
        """The replay's send: one message delivered now."""
        if not self.closing:
            self._deliver(msg, 0)

    async def run(self) -> None:
        """Replay from the store, then go live (the writer task of a socket client)."""
        try:
            await replay(cast("Connection", self))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.counters.errors.bump("writer")
            self.server.log_throttle.error(
                "local_replay", "wsnotebook: in-process replay failed: %r", exc
            )
            self.start_close(1011, b"internal error")
            return
        self.go_live()

    def go_live(self) -> None:
        self.replaying = False
        pending, self.pending = self.pending, []
        self.qbytes = 0
        for msg, kind in pending:
            if self.closing:
                return
            if kind == KIND_CONTROL:
                self.send_control(msg)
            else:
                self.push_event(msg, b"")

    # ---------------------------------------------------------------- internals
    def _hold(self, msg: bytes, kind: int) -> None:
        server = self.server
        size = len(msg) + (len(EVENT_PREFIX) + 1 if kind == KIND_EVENT else 0)
        if len(self.pending) >= server.queue_size or self.qbytes + size > server.max_queue_bytes:
            self.counters.dropped_slow += 1
            server.log_throttle.warning(
                "slow_client",
                "wsnotebook: dropping in-process subscriber (replay hold full: %d messages, "
                "%d bytes; queue_size=%d, max_queue_bytes=%d)",
                len(self.pending),
                self.qbytes,
                server.queue_size,
                server.max_queue_bytes,
            )
            self.start_close(CLOSE_TRY_AGAIN, b"slow consumer: send queue overflow")
            return
        self.pending.append((msg, kind))
        self.qbytes += size

    def _deliver(self, msg: bytes, n: int) -> None:
        self.events_out += n
        self.messages += 1
        self.counters.note_sent(len(msg))
        try:
            self.deliver(msg)
        except Exception as exc:  # never into the broadcast
            self.counters.errors.bump("local_deliver")
            self.server.log_throttle.error(
                "local_deliver", "wsnotebook: in-process delivery failed: %r", exc
            )

    def _finish(self) -> None:
        """Leave the broadcaster (once) and free what is held."""
        if self.finished:
            return
        self.finished = True
        self.closing = True
        self.hub.clients.discard(cast("Connection", self))
        self.counters.closed_events_out += self.events_out
        self.events_out = 0
        self.pending = []
        self.qbytes = 0
        self.tick = []
        task = self.writer_task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()

    def close(self) -> None:
        """The client is done (its ``LocalLink.close``): stop delivering, no close callback."""
        self.closing = True
        self._finish()

    async def publish(self, data: bytes) -> None:
        """A ``publish`` message from the client: the WebSocket reader's own handling (same
        validation, limits, ``error`` replies, 1008 after 10 rejected in a row)."""
        if not self.closing:
            await self.server._client_message(cast("Connection", self), data)


class ServerEndpoint:
    """A running :class:`~.server.Server` as a :class:`~wsnotebook.runtime.local.LocalEndpoint`."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def subscribe(
        self,
        deliver: Callable[[bytes], None],
        closed: Callable[[int, str], None],
        *,
        since: int | None,
        epoch: str | None,
    ) -> LocalSubscriber | None:
        """Register a subscriber (loop thread); ``None`` while stopping or at
        ``max_connections`` (the caller then takes the socket path and its 503)."""
        server = self.server
        clients = server.broadcaster.clients
        if not server.running or len(clients) >= server.max_connections:
            return None
        sub = LocalSubscriber(server, deliver, closed, since=since, epoch=epoch)
        # register and fix the replay end atomically (no await in between), as ws.py does
        sub.replay_to = server.broadcaster.broadcast_last
        clients.add(cast("Connection", sub))
        server.counters.connections_total += 1
        sub.writer_task = asyncio.ensure_future(sub.run())
        sub.writer_task.add_done_callback(_retrieve)
        return sub


def _retrieve(task: asyncio.Task[Any]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        task.exception()


def resolve(url: str, token: str | None) -> ServerEndpoint | None:
    """The running server of this process that serves ``url`` (``ws[s]://host:port/stream``,
    the server's scheme, a loopback host or the bound one), when ``token`` (or the URL's
    ``?token=``) is the server's; else ``None``."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname or ""
    if parts.scheme not in ("ws", "wss") or parts.path != "/stream" or port is None:
        return None
    if token is None:
        given = parse_qs(parts.query).get("token")
        token = given[0] if given else None
    for server in SERVERS.items(lambda s: s.running and s.port == port):
        if (parts.scheme == "wss") != (server.ssl_context is not None):
            continue
        bound = server.host
        if not (
            host == bound.strip("[]")
            or (is_loopback(host) and (is_loopback(bound) or bound in _ANY_ADDRESS))
        ):
            continue
        if server.token is not None and not hmac.compare_digest(
            (token or "").encode(), server.token.encode()
        ):
            return None
        return ServerEndpoint(server)
    return None


set_resolver(resolve)
