"""The broadcaster of a server whose store feeds it (``Store.feeds``: Redis Streams).

With a shared store several servers append to one log; each must send its clients the log's
order, everyone's events included, each once.  So :class:`FedBroadcaster` ignores the result of
its own server's appends (``broadcast``, called by ingest) and broadcasts what the store's tail
delivers (``deliver``) instead.  :func:`make_broadcaster` picks the broadcaster for a store and
connects the feed.

A client failing over from another server resumes with ``?since=S`` where ``S`` may be ahead of
this server's tail (it read the stream sooner elsewhere).  :meth:`FedBroadcaster.catch_up` lets
the stream handler wait, bounded by :data:`CATCH_UP_TIMEOUT`, until the tail has delivered ``S``,
so the client resumes exactly after ``S`` instead of getting a ``reset`` and a full replay.

Invariants: ids handed to clients increase; an id jump in what the store delivers (the tail fell
behind the store's retention, the entries between were trimmed before it read them) is sent to
every extended client as the usual ``gap`` record (``reason: "evicted"``) before the events
after it; an epoch change under the server (the store lost its data) closes every client with
1012 so it resumes (``?since=&epoch=``) into the new epoch and records its gap.
"""

from __future__ import annotations

import asyncio

from ..protocol import CLOSE_RESTART, gap_message
from ..store import Store, StoredEvent
from .broadcast import Broadcaster
from .metrics import ServerCounters

__all__ = ["CATCH_UP_TIMEOUT", "FedBroadcaster", "make_broadcaster"]

#: Longest a resuming client waits for this server's tail to reach its ``since`` (seconds).  A
#: tail that does not get there in time (Redis unreachable) answers as before: ``reset``.
CATCH_UP_TIMEOUT = 2.0


class FedBroadcaster(Broadcaster):
    """A :class:`Broadcaster` fed by its store (see the module docstring)."""

    def __init__(self, counters: ServerCounters, store: Store) -> None:
        super().__init__(counters)
        self.store = store
        #: gap records sent because the tail found evicted ids (counted once per jump)
        self.gaps_sent = 0
        self.resets = 0
        #: resuming clients that waited for the tail (``catch_up``), and those that timed out
        self.catch_ups = 0
        self.catch_up_timeouts = 0
        self._advanced = asyncio.Event()  # set whenever delivery moves broadcast_last

    async def catch_up(self, position: int, timeout: float = CATCH_UP_TIMEOUT) -> bool:
        """Wait until events up to ``position`` were handed to the clients (at most ``timeout``
        seconds; the store must already hold ``position``).  True when caught up."""
        if self.broadcast_last >= position:
            return True
        self.catch_ups += 1
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.broadcast_last < position:
            left = deadline - loop.time()
            if left <= 0:
                self.catch_up_timeouts += 1
                return False
            self._advanced.clear()
            try:
                await asyncio.wait_for(self._advanced.wait(), left)
            except asyncio.TimeoutError:
                continue
        return True

    def broadcast(self, stored: list[StoredEvent]) -> None:
        """Ingest's call with its own appends: nothing to do, the store's feed brings them."""

    def deliver(self, stored: list[StoredEvent]) -> None:
        """Hand events read from the store, in its order, to every client."""
        if not stored:
            return
        last = self.broadcast_last
        fresh = stored if stored[0].id > last else [s for s in stored if s.id > last]
        if not fresh:
            return
        if last and fresh[0].id > last + 1:
            self.gaps_sent += 1
            self.counters.errors.bump("feed_gap")
            msg = gap_message(last + 1, fresh[0].id - 1, "evicted", epoch=self.store.epoch)
            for c in list(self.clients):
                if c.extended:
                    c.send_control(msg)
        Broadcaster.broadcast(self, fresh)
        self._advanced.set()

    def reset(self) -> None:
        """The store's epoch changed: every client must resume into the new one."""
        self.resets += 1
        self.broadcast_last = self.store.last_id
        for c in list(self.clients):
            c.start_close(CLOSE_RESTART, b"store epoch changed; resume", None)


def make_broadcaster(store: Store, counters: ServerCounters) -> Broadcaster:
    """The broadcaster for ``store``: fed by it when it feeds, else the plain one."""
    if not getattr(store, "feeds", False):  # a store written before ``Store.feeds`` existed
        return Broadcaster(counters)
    fed = FedBroadcaster(counters, store)
    store.set_feed(fed.deliver, fed.reset)
    return fed
