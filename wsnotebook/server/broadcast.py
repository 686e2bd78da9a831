"""``Broadcaster``: hands every ingested event to every live connection, and ends their ticks.

Owns the set of live connections, the id of the newest event handed to them
(``broadcast_last``, the replay/live boundary of a connection registering now) and the list of
connections holding a tick buffer (flushed together when the loop tick ends).

Invariants:

* Encode once: an event's ``event`` message and WebSocket frame are built at most once per
  broadcast, only when some client needs them, and the same bytes go to every client (a
  multi-event ingest shares one :class:`~.wire.Run`).
* With more than ``BROADCAST_CHECKPOINT_EVERY`` clients and a CPU budget active,
  ``budget_checkpoint()`` runs after every that many clients (a big fan-out inside a kernel
  yields the GIL when over budget).
* One flush per tick: the first connection starting a tick buffer schedules ``flush_dirty`` at
  the end of the loop tick, or ``BUDGET_COALESCE`` s later while the kernel's CPU budget is
  under pressure; one client failing its flush never breaks the others' (counted as ``flush``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..protocol import event_message
from ..runtime import loop as _loop
from ..store import StoredEvent
from .metrics import ServerCounters
from .wire import Run, text_frame

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["BROADCAST_CHECKPOINT_EVERY", "BUDGET_COALESCE", "Broadcaster"]

log = logging.getLogger("wsnotebook")

#: How long a broadcast tick lingers while the background CPU budget is under pressure (inside
#: a kernel, see ``CpuBudget.under_pressure``): the tick's events leave as one message per
#: client after this long (or earlier at TICK_MAX_BYTES / AUTO_BATCH_MAX) instead of at the end
#: of the loop tick.  Measured at 10k ev/s in batches of 10 under the half-core budget: ~500 ->
#: ~75 messages/s to the monitor's client and ~40 -> ~30 us of CPU per event (20 ms: ~40
#: messages/s, no further saving); the cost is up to this much added latency, only while
#: background work uses a fifth of a core or more.
BUDGET_COALESCE = 0.01
#: A broadcast to more clients than this calls ``_loop.budget_checkpoint()`` every this many
#: clients, so a big fan-out inside a kernel yields the GIL when over the CPU budget.
BROADCAST_CHECKPOINT_EVERY = 32


def push_one(clients: Iterable[Connection], enc: bytes) -> None:
    """One live event to ``clients``.  A ``batch=auto`` client whose tick takes the event
    needs only ``enc`` (``push_auto``); the ``event`` message and its WebSocket frame are built
    on the first client that needs them, once for the rest (~0.3 us an event saved when every
    client batches: the default ``connect()``)."""
    emsg = frame = b""
    for c in clients:
        if c.push_auto(enc):
            continue
        if not emsg:
            emsg = event_message(enc)
            frame = text_frame(emsg)
        c.push_event(enc, emsg, frame)


class Broadcaster:
    """The live connections of one server and the fan-out to them (loop thread only)."""

    def __init__(self, counters: ServerCounters) -> None:
        self.counters = counters
        self.clients: set[Connection] = set()
        self.broadcast_last = 0  # id of the newest event handed to the clients
        # per-tick write coalescing: clients holding a tick buffer, flush scheduled?
        self.dirty: list[Connection] = []
        self.flush_scheduled = False

    def broadcast(self, stored: list[StoredEvent]) -> None:
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
            self.broadcast_last = stored[-1].id
        clients = self.clients
        if not clients:
            return
        if len(stored) == 1:
            enc = stored[0].encoded
            every = BROADCAST_CHECKPOINT_EVERY
            if len(clients) <= every or not _loop.budget.active:
                push_one(clients, enc)
                return
            ordered = list(clients)
            for start in range(0, len(ordered), every):
                push_one(ordered[start : start + every], enc)
                _loop.budget_checkpoint()
            return
        run = Run([s.encoded for s in stored])
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

    def mark_dirty(self, client: Connection) -> None:
        """``client`` started a tick buffer: flush every such buffer at the end of this tick, or
        ``BUDGET_COALESCE`` seconds later while the kernel's CPU budget is under pressure."""
        self.dirty.append(client)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            if _loop.budget.under_pressure():
                _loop.note_coalesced()
                client.loop.call_later(BUDGET_COALESCE, self.flush_dirty)
            else:
                client.loop.call_soon(self.flush_dirty)

    def flush_dirty(self) -> None:
        self.flush_scheduled = False
        dirty, self.dirty = self.dirty, []
        for c in dirty:
            try:
                c.flush_tick()
            except Exception as exc:  # never let one client break the others' flush
                self.counters.errors.bump("flush")
                log.error("wsnotebook: flush to %s failed: %r", c.peer, exc)
