"""``Batcher`` (sans-I/O): collect items, flush on count, bytes or age (injected clock).

Invariants: a batch never holds more than ``max_size`` items and exceeds ``max_bytes`` by less
than its last item; nothing is dropped: every item added comes out of exactly one flush.
"""

from __future__ import annotations

from typing import Any

from .._validate import Clock, bounded


class Batcher:
    """Collects items and flushes on size or age.

    ``add(item)`` returns a full batch (a list) when ``max_size`` items are reached, or, with
    ``max_bytes``, once the items' ``len`` adds up to ``max_bytes`` (a batch exceeds it by less
    than its last item), else ``None``.  ``poll()`` returns the pending batch when its oldest
    item is ``max_interval`` seconds old.  ``deadline()`` says when ``poll`` will next flush
    (``None`` when empty).  ``max_interval=0`` means flush on every poll.  Bounds:
    ``1 <= max_size <= 100_000``; ``0 <= max_interval <= 60``; ``max_bytes`` None or >= 1.
    """

    __slots__ = ("max_size", "max_interval", "max_bytes", "_clock", "_items", "_first", "_bytes")

    def __init__(
        self,
        max_size: int,
        max_interval: float = 0.05,
        *,
        clock: Clock,
        max_bytes: int | None = None,
    ) -> None:
        bounded("batch size", max_size, 1, 100_000, integer=True)
        bounded("batch interval", max_interval, 0, 60, unit=" s")
        if max_bytes is not None:
            bounded("batch max_bytes", max_bytes, 1, integer=True)
        self.max_size = max_size
        self.max_interval = max_interval
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: list[Any] = []
        self._first = 0.0
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """``len`` of the pending items added up (0 without ``max_bytes``)."""
        return self._bytes

    def add(self, item: Any) -> list[Any] | None:
        if not self._items:
            self._first = self._clock()
        self._items.append(item)
        if len(self._items) >= self.max_size:
            return self.flush()
        if self.max_bytes is not None:
            self._bytes += len(item)
            if self._bytes >= self.max_bytes:
                return self.flush()
        return None

    def deadline(self) -> float | None:
        return self._first + self.max_interval if self._items else None

    def poll(self) -> list[Any] | None:
        if self._items and self._clock() >= self._first + self.max_interval:
            return self.flush()
        return None

    def flush(self) -> list[Any]:
        items, self._items = self._items, []
        self._bytes = 0
        return items
