"""The ingest paths of :class:`~.server.Server` (a mixin): ``publish``, ``publish_async``,
``publish_nowait`` and the ingest every path ends in (store append, counters, broadcast).

Invariants and bounds:

* Every path validates before it stores: an event is stored whole or refused with
  EventValidationError / LimitExceeded; a store failure is counted (``errors["store"]``).
* ``publish_nowait`` validates and snapshots in the caller's thread, then hands the batch to the
  loop; at most ``NOWAIT_MAX_PENDING`` accepted events wait to be ingested (beyond it a call
  accepts a prefix, possibly none, counted in ``publish_nowait_refused``).  Waiting batches are
  ingested in call order, whole, at most ``NOWAIT_SLICE`` events per loop callback, as one store
  append.  A graceful stop ingests every accepted event before the store closes.
* The memory store appends synchronously: ingest then runs without a coroutine per message
  (``_append_now``; only when ``append`` is MemoryStore's own).
* Questions (``humanInTheLoop``, :mod:`.hitl`) without a status are stored and broadcast as
  ``{"status": "pending"}`` on every path (one C-level pass per batch finds them), and handed to
  the store's question index once stored.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ..errors import LoopThreadError, ServerError, StoreError, WaitTimeout
from ..events import Event, validate_events
from ..events.hitl import HITL_FIELD
from ..runtime import loop as _loop
from ..store import Appendable, Encoded, MemoryStore, Store, StoredEvent, snapshot_events
from .broadcast import Broadcaster
from .hitl_rules import with_pending
from .metrics import ServerCounters

__all__ = ["NOWAIT_MAX_PENDING", "NOWAIT_SLICE", "IngestMixin"]

log = logging.getLogger("wsnotebook")


#: Events ``publish_nowait`` may have accepted but not yet ingested; beyond it, it refuses.
NOWAIT_MAX_PENDING = 100_000
#: Most events ingested per loop callback from the ``publish_nowait`` backlog (whole batches).
NOWAIT_SLICE = 1000


class IngestMixin:
    """Ingest for :class:`~.server.Server` (which provides the attributes declared here)."""

    running: bool
    store: Store
    counters: ServerCounters
    broadcaster: Broadcaster
    max_batch_events: int
    max_event_bytes: int
    _loop: asyncio.AbstractEventLoop | None

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

    def _init_ingest(self) -> None:
        # publish_nowait: batches handed over by other threads, drained on the loop
        self._nowait_lock = threading.Lock()
        self._nowait_queue: deque[list[Encoded]] = deque()
        self._nowait_scheduled = False
        self._nowait_pending = 0
        self._nowait_refused = 0
        # the memory store appends synchronously: ingest without a coroutine per message (only
        # when ``append`` is MemoryStore's own, so a subclass overriding it keeps its behaviour)
        st = self.store
        self._append_now: Callable[[Appendable], list[StoredEvent]] | None = None
        # one validated dict at a time (the per-event hot path): only when ``append_now`` is
        # MemoryStore's own too, which ``append_one`` stands in for
        self._append_one: Callable[[Event], StoredEvent] | None = None
        if isinstance(st, MemoryStore) and type(st).append is MemoryStore.append:
            self._append_now = st.append_now
            if type(st).append_now is MemoryStore.append_now:
                self._append_one = st.append_one

    async def publish_async(self, events: Event | list[Event]) -> list[Event]:
        """Validate and ingest on the loop; returns the stored events.  A stopped server
        raises ServerError, as :meth:`publish` does."""
        self._refuse_if_stopped()
        batch = validate_events(events, max_batch=self.max_batch_events)
        try:
            stored = await self._ingest(batch)
        except StoreError:
            self.counters.errors.bump("store")
            raise
        return [s.event for s in stored]

    async def publish_count_async(self, events: Event | list[Event]) -> int:
        """:meth:`publish_async` for producers that ignore the result (the demo): returns how
        many events were stored, without decoding them back into dicts."""
        self._refuse_if_stopped()
        batch = validate_events(events, max_batch=self.max_batch_events)
        try:
            return len(await self._ingest(batch))
        except StoreError:
            self.counters.errors.bump("store")
            raise

    def _valid_publisher(self) -> Callable[[list[Event]], int] | None:
        """For the demo producer fed by its own generator: a synchronous ``publish_count``
        of events **known valid** (built by :class:`~wsnotebook.demo.EventGenerator`, whose
        events all pass ``validate_event`` by construction), skipping the validation; ``None``
        unless the store appends synchronously (the memory store).  Foreign input never comes
        here: everything else goes through :func:`~wsnotebook.events.validate_events`."""
        if self._append_now is None:
            return None
        return self._publish_valid_now

    def _publish_valid_now(self, events: list[Event]) -> int:
        self._refuse_if_stopped()
        try:
            return len(self._ingest_now(events))
        except StoreError:
            self.counters.errors.bump("store")
            raise

    def _refuse_if_stopped(self) -> None:
        # the in-process entry points (the demo producer's) refuse as publish() does: a
        # stopped server storing events nobody can read was a silent loss
        if not self.running:
            raise ServerError(f"server {self.url} is stopped")

    def publish(self, events: Event | list[Event]) -> list[Event]:
        """Ingest one event (dict) or a list from any thread, exactly like ``POST /events``.

        Returns the stored events (with ``id``, ``timestamp``, ``server_received``; treat them as
        read-only).  Raises EventValidationError / LimitExceeded / StoreError / ServerError.
        """
        if not self.running:
            raise ServerError(f"server {self.url} is stopped")
        if _loop.in_loop_thread():
            raise LoopThreadError(
                "Server.publish() called from the loop thread; use publish_async()"
            )
        try:
            return _loop.run(self.publish_async(events))
        except (TimeoutError, concurrent.futures.TimeoutError):
            raise WaitTimeout(f"Server.publish() to {self.url} timed out") from None

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
        checked = validate_events(events, max_batch=self.max_batch_events)
        marked = with_pending(checked)
        batch = snapshot_events(marked, self.max_event_bytes)
        if marked is not checked:  # holds questions: the ingest indexes them
            batch = _WithQuestions(batch)
        n = len(batch)
        with self._nowait_lock:
            if not self.running:  # checked under the lock: stop ingests what was queued before
                raise ServerError(f"server {self.url} is stopped")
            room = NOWAIT_MAX_PENDING - self._nowait_pending
            if n > room:
                self._nowait_refused += n - max(room, 0)
                if room <= 0:
                    return 0
                batch, n = type(batch)(batch[:room]), room
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
        events = batches[0] if len(batches) == 1 else _joined(batches)
        n = len(events)
        if not events:
            return
        if self._append_now is not None:
            try:
                self._ingest_now(events)
            except Exception as exc:
                self.counters.errors.bump("publish_nowait")
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
            events = _joined(batches)
            try:
                await self._ingest(events)
            except Exception as exc:
                self.counters.errors.bump("publish_nowait")
                log.error("wsnotebook: publish_nowait ingest at stop failed: %r", exc)
            finally:
                self._nowait_done(len(events))

    def _nowait_task_done(self, task: asyncio.Future[list[StoredEvent]], *, n: int) -> None:
        self._nowait_done(n)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.counters.errors.bump("publish_nowait")
            log.error("wsnotebook: publish_nowait ingest failed: %r", exc)

    def _nowait_done(self, n: int) -> None:
        with self._nowait_lock:
            self._nowait_pending -= n

    def _ingest_now(self, events: Appendable) -> list[StoredEvent]:
        """Synchronous ingest (memory store only)."""
        assert self._append_now is not None
        events, questions = _questions(events)
        stored = self._append_now(events)
        if questions:
            self.store.note_questions(stored)
        n = len(stored)
        counters = self.counters
        counters.events_in += n
        counters.rate.add(n)
        self.broadcaster.broadcast(stored)
        return stored

    def _ingest_one_now(self, event: Event) -> StoredEvent:
        """:meth:`_ingest_now` of one validated dict (memory store only; the per-event
        ``publish`` / ``POST`` hot path): the same result, errors and counters.  A question
        (``humanInTheLoop``, one dict lookup) takes the general path."""
        if HITL_FIELD in event:
            return self._ingest_now([event])[0]
        assert self._append_one is not None
        stored = self._append_one(event)
        counters = self.counters
        counters.events_in += 1
        # the rate meter once per loop tick, not per event (a flood of messages is read
        # many per tick)
        if counters.rate_pending:
            counters.rate_pending += 1
        else:
            counters.rate_pending = 1
            assert self._loop is not None
            self._loop.call_soon(counters.fold_rate)
        self.broadcaster.broadcast([stored])
        return stored

    async def _ingest(self, events: Appendable) -> list[StoredEvent]:
        if self._append_now is not None:
            return self._ingest_now(events)
        events, questions = _questions(events)
        stored = await self.store.append(events)
        if questions:
            self.store.note_questions(stored)
        n = len(stored)
        counters = self.counters
        counters.events_in += n
        counters.rate.add(n)
        self.broadcaster.broadcast(stored)
        return stored


def _questions(events: Appendable) -> tuple[Appendable, bool]:
    """``events`` with questions marked pending (:func:`~.hitl_rules.with_pending`), and
    whether any may be a question.  Events encoded ahead (``publish_nowait``) were marked
    before encoding, and their batch says whether it holds one (:class:`_WithQuestions`)."""
    if not events:
        return events, False
    if type(events[0]) is Encoded:
        return events, isinstance(events, _WithQuestions)
    marked = with_pending(cast("list[Event]", events))
    return marked, marked is not events


class _WithQuestions(list[Encoded]):
    """A ``publish_nowait`` batch holding at least one question (known before encoding, so the
    ingest needs no byte search per event)."""


def _joined(batches: list[list[Encoded]]) -> list[Encoded]:
    """Batches waiting together, as one list (marked when any holds a question)."""
    events = [e for b in batches for e in b]
    return _WithQuestions(events) if any(isinstance(b, _WithQuestions) for b in batches) else events
