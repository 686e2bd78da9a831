"""The in-memory backend: a bounded ring of the latest ``retain`` events.

Owns :class:`Ring` (a bounded deque of stored events with contiguous-id lookup and lazily
folded facet counts; the SQLite store reuses it, without facets, as its cache of recent events)
and :class:`MemoryStore` (``store="memory"``, the default).

Bounds and drop policy: a ring holds at most ``size`` events and evicts the oldest first;
pending facet updates are folded after at most :data:`FOLD_EVERY` added plus evicted events.
A memory store's epoch is random per instance, so a restarted kernel is a new epoch and
resuming clients are told (``reset``/gap) instead of silently missing events.
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter, deque
from collections.abc import Callable, Sequence
from operator import attrgetter

from ..events import now_ms
from .base import FACET_FIELDS, Appendable, Store, StoredEvent, check_retain
from .stamping import stamp_all

__all__ = ["FOLD_EVERY", "MemoryStore", "Ring"]

#: Added plus evicted events a memory ring collects before it folds them into its facet counts.
FOLD_EVERY = 4096


class Ring:
    """Bounded ring of :class:`StoredEvent` with contiguous-id lookup and facet counts.

    Facet counts are folded in lazily: added and evicted events wait in two lists (at most
    ``FOLD_EVERY`` together) and are counted with C-level passes (``Counter.update``, then the
    evicted ones subtracted per distinct value) when the lists fill up or the counts are read.
    Counting per event and field in Python cost ~2 us per event."""

    def __init__(self, size: int, *, facets: bool) -> None:
        self.size = size
        self.items: deque[StoredEvent] = deque()
        self._facets: list[tuple[Callable[[StoredEvent], str], Counter[str]]] | None = (
            [(attrgetter(name), Counter()) for name, _ in FACET_FIELDS] if facets else None
        )
        self._added: list[StoredEvent] = []
        self._evicted: list[StoredEvent] = []

    def __len__(self) -> int:
        return len(self.items)

    def add(self, stored: Sequence[StoredEvent]) -> None:
        items = self.items
        items.extend(stored)
        over = len(items) - self.size
        if self._facets is None:
            for _ in range(over):
                items.popleft()
            return
        added, evicted = self._added, self._evicted
        added.extend(stored)
        if over > 0:
            evicted.extend([items.popleft() for _ in range(over)])
        if len(added) + len(evicted) >= FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        assert self._facets is not None
        added, evicted = self._added, self._evicted
        self._added, self._evicted = [], []
        for get, counts in self._facets:
            counts.update(map(get, added))
            for value, n in Counter(map(get, evicted)).items():
                left = counts[value] - n
                if left:
                    counts[value] = left
                else:
                    del counts[value]

    def recent(self, limit: int) -> list[StoredEvent]:
        n = len(self.items)
        if limit >= n:
            return list(self.items)
        return list(itertools.islice(self.items, n - max(limit, 0), n))

    def covers(self, after_id: int) -> bool:
        """True when every retained event with ``id > after_id`` that exists is in the ring."""
        return bool(self.items) and after_id + 1 >= self.items[0].id

    def since(self, after_id: int, limit: int) -> list[StoredEvent]:
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
        return list(itertools.islice(items, start, start + limit))

    def facet_values(self) -> dict[str, list[str]]:
        assert self._facets is not None
        self._fold()
        return {key: sorted(counts) for (_, key), (_, counts) in zip(FACET_FIELDS, self._facets)}


class MemoryStore(Store):
    """Bounded in-memory ring of the latest ``retain`` events (default 100,000; bounds
    1..100,000,000).  Oldest events are evicted first.  Epoch: random per instance."""

    kind = "memory"

    def __init__(self, *, retain: int = 100_000) -> None:
        self.retain = check_retain(retain)
        self.epoch = secrets.token_hex(8)
        self._ring = Ring(self.retain, facets=True)
        self._last = 0

    @property
    def last_id(self) -> int:
        return self._last

    @property
    def first_id(self) -> int | None:
        return self._ring.items[0].id if self._ring.items else None

    def __len__(self) -> int:
        return len(self._ring)

    def append_now(self, events: Appendable) -> list[StoredEvent]:
        """Synchronous append (the memory store never waits)."""
        received = now_ms()
        first = self._last + 1
        stored = stamp_all(events, first, received, self.max_event_bytes)
        self._last += len(stored)
        self._ring.add(stored)
        return stored

    async def append(self, events: Appendable) -> list[StoredEvent]:
        return self.append_now(events)

    async def recent(self, limit: int) -> list[StoredEvent]:
        return self._ring.recent(limit)

    async def since(self, after_id: int, limit: int) -> list[StoredEvent]:
        return self._ring.since(after_id, limit)

    async def filter_options(self) -> dict[str, list[str]]:
        return self._ring.facet_values()
