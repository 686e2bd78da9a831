"""When the monitor's next tick is due: a fixed rate, not a fixed pause (sans-I/O).

Sleeping one period *after* each tick made the rate ``1 / (period + tick time)``: at 5k ev/s
on a busy machine 3.4 Hz instead of 4 (ticks 296 ms apart, median), which added ~25 ms to
the view's lag. A tick is now due one period after the previous one was *due*; a tick that
ends late is followed by at least half a period of rest, so an overloaded kernel gets fewer
ticks, never a burst of them.
"""

from __future__ import annotations


class TickPacer:
    """Deadlines of a periodic tick, from times the caller passes (any monotonic clock).

    ``delay(now)`` is the wait before the next tick (>= 0); call ``ticked(now)`` when a tick
    has ended. Bounds: ticks start at most once per ``period / 2`` + the tick's own duration,
    and on average once per ``period`` while a tick takes less than half a period.
    """

    def __init__(self, period: float, now: float) -> None:
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period!r}")
        self.period = period
        self.due = now + period

    def delay(self, now: float) -> float:
        """Seconds to wait before the next tick."""
        return max(0.0, self.due - now)

    def ticked(self, now: float) -> None:
        """A tick ended at ``now``: the next is due one period after this one was due."""
        self.due = max(self.due + self.period, now + self.period / 2)
