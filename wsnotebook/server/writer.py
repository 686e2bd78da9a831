"""The async side of a :class:`~.connection.Connection`: replay, writer task, closing handshake.

One writer task per connection (:func:`run_writer`) first replays from the store
(:func:`replay`), then sends whatever the connection queued, one message at a time (awaiting
aiohttp's drain: this is where a slow socket pushes back).  :func:`close_connection` is the one
way a connection closes.

Invariants:

* Replay/live boundary: the connection's ``replay_to`` was fixed when it registered; every event
  with ``id <= replay_to`` comes from the store, every later one through the live path (held
  in ``pending`` until the replay ends), so each event is delivered once, in id order.
* A replay page is at most ``REPLAY_PAGE`` events and never exceeds ``max_message_bytes`` (the
  store read behind it stops at that budget too, so a page never holds more in memory); a
  resume whose ``since`` was evicted, or from another epoch, restarts at the oldest stored event
  with ``reset: true``; events evicted during a paged replay are reported with a ``gap``.
* A close never takes longer than ``CLOSE_TIMEOUT`` per step; past it the transport is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    batch_message,
    event_room,
    fit_newest,
    fit_oldest,
    gap_message,
)
from ..store import Store
from .wire import initial_message

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["CLOSE_TIMEOUT", "REPLAY_PAGE", "close_connection", "replay", "run_writer"]

log = logging.getLogger("wsnotebook")

#: Events per replay page (``initial`` and each following ``batch``).
REPLAY_PAGE = 1000
#: Seconds a closing handshake may take before the transport is aborted.
CLOSE_TIMEOUT = 5.0


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


def _evicted_after(store: Store, after: int) -> bool:
    """Were events right after id ``after`` evicted?  (A jump in the ids read is either an
    eviction or a hole of never-used ids, left by a failed commit.)"""
    first = store.first_id
    return first is not None and first > after + 1


async def run_writer(conn: Connection) -> None:
    """The connection's writer task: replay, go live, then drain the send queue until closing."""
    try:
        await replay(conn)
        conn.go_live()
        while not conn.closing:
            if not conn.queue:
                conn.wake.clear()
                await conn.wake.wait()
                continue
            if conn.tick:  # defensive: the invariant keeps it empty while messages queue
                conn.flush_tick()
            msg, n = conn.next_message()
            conn.busy = True
            try:
                await conn.send(msg)
            finally:
                conn.busy = False
            conn.events_out += n
    except asyncio.CancelledError:
        _adopt_abandoned_sends(conn.ws)
        raise
    except (ConnectionError, RuntimeError) as exc:
        if not conn.closing:
            conn.server.log_throttle.debug(
                "ws_gone", "wsnotebook: client %s went away: %s", conn.peer, exc
            )
            conn.start_close(CLOSE_GOING_AWAY, b"")
    except Exception as exc:
        conn.counters.errors.bump("writer")
        conn.server.log_throttle.error(
            "writer", "wsnotebook: writer for %s failed: %r", conn.peer, exc
        )
        conn.start_close(CLOSE_INTERNAL, b"internal error")


async def replay(conn: Connection) -> None:
    """Send the ``initial`` snapshot (or the resume from ``since``) and the following pages,
    up to ``conn.replay_to``."""
    server = conn.server
    store = server.store
    replay_to = conn.replay_to
    reset = False
    more = False
    limit = server.max_message_bytes  # no message we send exceeds what we accept
    room = event_room(limit)  # store reads stop there: a page never holds more in memory
    if conn.since is None:
        page = await store.recent(server.initial_limit, room)
        page = [s for s in page if s.id <= replay_to]
        # The latest events that fit in one message (fewer than initial_limit only when
        # they are large): a snapshot too big for the client's limit would lock it out.
        keep = fit_newest([s.encoded for s in page], limit)
        page = page[len(page) - keep :]
        after = replay_to
    else:
        first = store.first_id
        since = conn.since
        new_epoch = conn.req_epoch is not None and conn.req_epoch != store.epoch
        evicted = first is not None and since + 1 < first
        reset = new_epoch or evicted or since > replay_to
        after = (first - 1 if first is not None else 0) if reset else since
        page = [s for s in await store.since(after, REPLAY_PAGE, room) if s.id <= replay_to]
        if page and page[0].id > after + 1 and not reset and _evicted_after(store, after):
            # evicted between the check and the read: treat as reset (a hole the store's
            # failed commits left in the id sequence is no loss: those ids were never used)
            reset = True
        page = page[: fit_oldest([s.encoded for s in page], limit)]
        # A page ends at REPLAY_PAGE events or at the byte budget; the events after it up to
        # replay_to exist (ids are assigned in order; only a failed commit's ids are skipped).
        more = bool(page) and page[-1].id < replay_to
        after = page[-1].id if page else after
    msg = initial_message(
        [s.encoded for s in page],
        extended=conn.extended,
        seq=replay_to,
        epoch=store.epoch,
        reset=reset,
        more=more,
    )
    await conn.send(msg)
    conn.events_out += len(page)
    while more and not conn.closing:
        page = [s for s in await store.since(after, REPLAY_PAGE, room) if s.id <= replay_to]
        if not page:
            break
        page = page[: fit_oldest([s.encoded for s in page], limit)]
        if page[0].id > after + 1 and _evicted_after(store, after):
            first = store.first_id or page[0].id
            await conn.send(
                gap_message(after + 1, min(first, page[0].id) - 1, "evicted", epoch=store.epoch)
            )
        await conn.send(batch_message([s.encoded for s in page]))
        conn.events_out += len(page)
        after = page[-1].id
        more = after < replay_to


async def _send_all(conn: Connection, msgs: list[bytes]) -> None:
    for msg in msgs:
        await conn.send(msg)


async def close_connection(conn: Connection, code: int, reason: bytes) -> None:
    """Stop the writer, send ``conn.last_controls`` and ``conn.final`` (if any; within one
    ``CLOSE_TIMEOUT``), then the close frame with ``code``."""
    task = conn.writer_task
    if task is not None and task is not asyncio.current_task():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
        # aiohttp's BaseProtocol._drain_helper awaits ONE shared future, unshielded: the
        # writer blocked in drain cancelled it, and our close frame's drain would raise
        # CancelledError at once -> abort -> the client saw 1006 instead of 1013.
        proto = conn.transport.get_protocol() if conn.transport is not None else None
        waiter = getattr(proto, "_drain_waiter", None)
        if waiter is not None and waiter.cancelled():
            proto._drain_waiter = None  # type: ignore[union-attr]
    last = [*conn.last_controls, *([conn.final] if conn.final is not None else [])]
    conn.last_controls = []
    if last:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(_send_all(conn, last), CLOSE_TIMEOUT)
    try:
        await asyncio.wait_for(conn.ws.close(code=code, message=reason), CLOSE_TIMEOUT)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        if conn.transport is not None:
            conn.transport.abort()
    except Exception:
        if conn.transport is not None:
            conn.transport.abort()
