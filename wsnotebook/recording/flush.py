"""When the recorder flushes a segment: :class:`FlushOptions` (bounds) and :class:`FlushPolicy`
(sans-I/O, injected clock).

A segment is flushed when ``rows`` events are pending, or when the oldest pending event (or gap
record) has waited ``interval`` seconds, and once more on stop.  So after a crash at most
``interval`` seconds (or ``rows`` events) of what the recorder had received are missing from the
file; a smaller interval means more, smaller segment files.

Measured here (2 cores, zstd, demo events): writing a segment costs ~6-8 us per event
(``EventFrame.to_parquet``: 1,000 rows ~8 ms, 20,000 rows ~110 ms), plus an ``fsync`` and a
rename per segment; a segment file holds ~110-135 bytes per event.  The defaults (1 s, 20,000
rows) keep the recorder's own loop stall per flush under ~0.15 s at any rate and the worst-case
loss after a crash to about one second.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .._validate import bounded, integer

__all__ = ["FlushOptions", "FlushPolicy"]


@dataclass(frozen=True)
class FlushOptions:
    """``interval`` seconds (0.01..3600, default 1.0): longest time an event waits before its
    segment is written.  ``rows`` (1..1,000,000, default 20,000): pending events that force a
    flush at once.  ``buffer_rows`` (``rows``..10,000,000, default 200,000): most events held
    between flushes; more arriving before a flush could start (a burst of large batches) evict
    the oldest, recorded as a ``recorder overflow`` gap (~200 bytes of memory per event held)."""

    interval: float = 1.0
    rows: int = 20_000
    buffer_rows: int = 200_000

    def __post_init__(self) -> None:
        interval = float(bounded("interval", self.interval, 0.01, 3600.0))
        object.__setattr__(self, "interval", interval)
        object.__setattr__(self, "rows", integer("rows", self.rows, 1, 1_000_000))
        buffer_rows = integer("buffer_rows", self.buffer_rows, self.rows, 10_000_000)
        object.__setattr__(self, "buffer_rows", buffer_rows)


class FlushPolicy:
    """Tracks pending work and says when to flush (no I/O; ``clock`` returns seconds)."""

    def __init__(self, options: FlushOptions, clock: Callable[[], float]) -> None:
        self.options = options
        self.clock = clock
        self.pending_rows = 0
        self.pending_gaps = 0
        #: clock time of the oldest pending item, ``None`` when nothing is pending
        self.oldest: float | None = None
        self.flushes = 0

    def added(self, rows: int = 0, gaps: int = 0) -> None:
        """Record new pending rows / gap records."""
        if rows <= 0 and gaps <= 0:
            return
        if self.oldest is None:
            self.oldest = self.clock()
        self.pending_rows += max(0, rows)
        self.pending_gaps += max(0, gaps)

    def deadline(self) -> float | None:
        """Clock time by which the pending items must be flushed (``None``: nothing pending)."""
        return None if self.oldest is None else self.oldest + self.options.interval

    def due(self) -> bool:
        """Should a flush start now?"""
        if self.oldest is None:
            return False
        if self.pending_rows >= self.options.rows:
            return True
        return self.clock() >= self.oldest + self.options.interval

    def flushed(self) -> None:
        """Everything pending when the flush began is written (call after taking it)."""
        self.pending_rows = 0
        self.pending_gaps = 0
        self.oldest = None
        self.flushes += 1
