"""The in-memory backend: a bounded ring of the latest ``retain`` events (and ``retain_bytes``).

Owns :class:`Ring` (a bounded deque of stored events with contiguous-id lookup and lazily
folded facet counts; the SQLite store reuses it, without facets, as its cache of recent events)
and :class:`MemoryStore` (``store="memory"``, the default).

Bounds and drop policy: a ring holds at most ``size`` events and at most ``max_bytes`` bytes of
encoded events (their JSON; the newest event is kept even when it alone is larger) and evicts
the oldest first, whichever bound is passed; evicting for bytes is recorded exactly as evicting
for count (``first_id`` moves; a client resuming from before it gets ``reset``/a gap); pending
facet updates are folded after at most :data:`FOLD_EVERY` added plus evicted events, or once the
evicted ones waiting (kept alive until then) hold :data:`FOLD_BYTES`.
A memory store's epoch is random per instance, so a restarted kernel is a new epoch and
resuming clients are told (``reset``/gap) instead of silently missing events.
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter, deque
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any

from ..events import Event, now_ms
from .base import (
    DEFAULT_RETAIN_BYTES,
    FACET_FIELDS,
    Appendable,
    Store,
    StoredEvent,
    check_retain,
    check_retain_bytes,
    fit_budget,
)
from .hitl import Questions, Versions, is_question, update_stored
from .stamping import stamp_all, stamp_one

__all__ = ["FOLD_BYTES", "FOLD_EVERY", "MemoryStore", "Ring"]

#: Added plus evicted events a memory ring collects before it folds them into its facet counts.
FOLD_EVERY = 4096
#: Bytes of evicted events a memory ring keeps alive, waiting for a fold, before it folds early
#: (without it, 4096 evicted events of 1 MB each stayed in memory past ``retain_bytes``).
FOLD_BYTES = 8 << 20

_ENCODED = attrgetter("encoded")


class Ring:
    """Bounded ring of :class:`StoredEvent` with contiguous-id lookup and facet counts.

    Facet counts are folded in lazily: added and evicted events wait in two lists (at most
    ``FOLD_EVERY`` together) and are counted with C-level passes (``Counter.update``, then the
    evicted ones subtracted per distinct value) when the lists fill up or the counts are read.
    Counting per event and field in Python cost ~2 us per event.

    ``bytes`` is the sum of the retained events' encoded sizes, kept at most ``max_bytes``
    (0: no byte bound) by evicting the oldest, but never the newest event;
    ``evicted_by_bytes`` counts the events evicted for the byte bound."""

    def __init__(self, size: int, *, facets: bool, max_bytes: int = 0) -> None:
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0
        self.evicted_by_bytes = 0
        self.items: deque[StoredEvent] = deque()
        self._facets: list[tuple[Callable[[StoredEvent], str], Counter[str]]] | None = (
            [(attrgetter(name), Counter()) for name, _ in FACET_FIELDS] if facets else None
        )
        self._added: list[StoredEvent] = []
        self._evicted: list[StoredEvent] = []
        self._evicted_bytes = 0  # bytes of the events in _evicted (kept alive until a fold)

    def __len__(self) -> int:
        return len(self.items)

    def add_one(self, stored: StoredEvent) -> None:
        """``add([stored])`` without the batch scaffolding (the per-event hot path): the same
        bounds, evictions and facet bookkeeping."""
        size = len(stored.encoded)
        nbytes = self.bytes + size
        if self.max_bytes and nbytes > self.max_bytes:
            self.add((stored,))  # rare: evicting for bytes, the general path
            return
        items = self.items
        items.append(stored)
        if len(items) > self.size:  # a full ring: the oldest goes (bytes only shrink)
            old = items.popleft()
            gone = len(old.encoded)
            self.bytes = nbytes - gone
            if self._facets is None:
                return
            self._added.append(stored)
            self._evicted.append(old)
            self._evicted_bytes += gone
        else:
            self.bytes = nbytes
            if self._facets is None:
                return
            self._added.append(stored)
        if len(self._added) + len(self._evicted) >= FOLD_EVERY or self._evicted_bytes >= FOLD_BYTES:
            self._fold()

    def add(self, stored: Sequence[StoredEvent]) -> None:
        items = self.items
        items.extend(stored)
        if len(stored) == 1:  # the common case, kept cheap (per-event hot path)
            nbytes = self.bytes + len(stored[0].encoded)
        else:
            nbytes = self.bytes + sum(map(len, map(_ENCODED, stored)))
        over = len(items) - self.size
        if over <= 0:
            evicted, gone = [], 0
        elif over == 1:
            evicted = [items.popleft()]
            gone = len(evicted[0].encoded)
        else:
            evicted = [items.popleft() for _ in range(over)]
            gone = sum(map(len, map(_ENCODED, evicted)))
        budget = self.max_bytes
        if budget and nbytes - gone > budget:  # rare: evict the oldest for bytes, keep the newest
            popleft, before = items.popleft, len(evicted)
            while nbytes - gone > budget and len(items) > 1:
                old = popleft()
                gone += len(old.encoded)
                evicted.append(old)
            self.evicted_by_bytes += len(evicted) - before
        self.bytes = nbytes - gone
        if self._facets is None:
            return
        added = self._added
        added.extend(stored)
        if evicted:
            self._evicted.extend(evicted)
            self._evicted_bytes += gone
        if len(added) + len(self._evicted) >= FOLD_EVERY or self._evicted_bytes >= FOLD_BYTES:
            self._fold()

    def _fold(self) -> None:
        assert self._facets is not None
        added, evicted = self._added, self._evicted
        self._added, self._evicted, self._evicted_bytes = [], [], 0
        for get, counts in self._facets:
            counts.update(map(get, added))
            for value, n in Counter(map(get, evicted)).items():
                left = counts[value] - n
                if left:
                    counts[value] = left
                else:
                    del counts[value]

    def recent(self, limit: int, max_bytes: int | None = None) -> list[StoredEvent]:
        items = self.items
        n = min(max(limit, 0), len(items))
        if max_bytes is not None:
            n = fit_budget(map(len, map(_ENCODED, itertools.islice(reversed(items), n))), max_bytes)
        if n >= len(items):
            return list(items)
        newest = list(itertools.islice(reversed(items), n))
        newest.reverse()
        return newest

    def covers(self, after_id: int) -> bool:
        """True when every retained event with ``id > after_id`` that exists is in the ring."""
        return bool(self.items) and after_id + 1 >= self.items[0].id

    def since(self, after_id: int, limit: int, max_bytes: int | None = None) -> list[StoredEvent]:
        items = self.items
        if not items or after_id >= items[-1].id:
            return []
        first = items[0].id
        # ids in a ring are increasing; they are contiguous unless a commit failed (SQLite),
        # so start from the contiguous guess and correct forwards/backwards.
        start = max(0, min(len(items) - 1, after_id + 1 - first))
        while start > 0 and items[start - 1].id > after_id:
            start -= 1
        while start < len(items) and items[start].id <= after_id:
            start += 1
        page = list(itertools.islice(items, start, start + max(limit, 0)))
        if max_bytes is not None:
            del page[fit_budget(map(len, map(_ENCODED, page)), max_bytes) :]
        return page

    def facet_values(self) -> dict[str, list[str]]:
        assert self._facets is not None
        self._fold()
        return {key: sorted(counts) for (_, key), (_, counts) in zip(FACET_FIELDS, self._facets)}


class MemoryStore(Store):
    """Bounded in-memory ring of the latest ``retain`` events (default 100,000; bounds
    1..100,000,000) holding at most ``retain_bytes`` bytes of encoded events (default 256 MiB;
    bounds 1 KiB..1 TiB; the newest event is kept even when larger).  Oldest events are evicted
    first.  Epoch: random per instance."""

    kind = "memory"

    def __init__(self, *, retain: int = 100_000, retain_bytes: int = DEFAULT_RETAIN_BYTES) -> None:
        self.retain = check_retain(retain)
        self.retain_bytes = check_retain_bytes(retain_bytes)
        self.epoch = secrets.token_hex(8)
        self._ring = Ring(self.retain, facets=True, max_bytes=self.retain_bytes)
        self._last = 0
        self._questions = Questions()
        self._versions = Versions()

    @property
    def last_id(self) -> int:
        return self._last

    @property
    def first_id(self) -> int | None:
        return self._ring.items[0].id if self._ring.items else None

    def __len__(self) -> int:
        return len(self._ring)

    @property
    def retained_bytes(self) -> int:
        return self._ring.bytes

    def append_now(self, events: Appendable) -> list[StoredEvent]:
        """Synchronous append (the memory store never waits)."""
        received = now_ms()
        first = self._last + 1
        stored = stamp_all(events, first, received, self.max_event_bytes)
        self._last += len(stored)
        self._ring.add(stored)
        return stored

    def append_one(self, event: Event) -> StoredEvent:
        """``append_now([event])[0]`` for one validated dict (the per-event hot path)."""
        stored = stamp_one(event, self._last + 1, now_ms(), self.max_event_bytes)
        self._last = stored.id
        self._ring.add_one(stored)
        return stored

    async def append(self, events: Appendable) -> list[StoredEvent]:
        return self.append_now(events)

    async def recent(self, limit: int, max_bytes: int | None = None) -> list[StoredEvent]:
        """The latest ``limit`` entries without superseded ones (each event once, in its
        newest version: fewer than ``limit`` may come back)."""
        return self._versions.visible(self._ring.recent(limit, max_bytes))

    async def since(
        self, after_id: int, limit: int, max_bytes: int | None = None
    ) -> list[StoredEvent]:
        return self._ring.since(after_id, limit, max_bytes)

    async def filter_options(self) -> dict[str, list[str]]:
        return self._ring.facet_values()

    # ---------------------------------------------------------------- questions and updates
    def note_questions(self, stored: Sequence[StoredEvent]) -> None:
        self._questions.note(stored)

    async def append_update(self, ident: int, event: Event) -> StoredEvent:
        """Append a new version of event ``ident`` (see :mod:`.hitl`): the next id is its
        sequence number; the version it replaces is left out of :meth:`recent` from now."""
        stored = update_stored(self._last + 1, ident, event, self.max_event_bytes)
        self._last = stored.id
        self._ring.add([stored])
        self._versions.record(ident, stored.id)
        self._versions.prune(self.first_id)
        if ident in self._questions.items or is_question(event):
            self._questions.put(ident, stored)
        return stored

    async def latest(self, ident: int) -> Event | None:
        found = self._questions.get(ident)
        if found is not None:
            return found.event
        seq = self._versions.latest.get(ident, ident)
        for s in self._ring.since(seq - 1, 1):
            if s.id == seq:
                event = s.event
                return event if event.get("id") == ident else None
        return None

    async def questions(self, limit: int) -> list[Event]:
        return [s.event for s in self._questions.newest(limit)]

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out["evicted_by_bytes"] = self._ring.evicted_by_bytes
        out["questions"] = len(self._questions.items)
        return out
