"""``IdSet``: the ids a frame holds, as sorted disjoint intervals (dedupe memory).

Invariants: membership is exact while at most :data:`MAX_ID_INTERVALS` intervals are kept;
beyond, the lowest hole is filled (counted in ``holes_filled``), so sparse ids cannot grow the
memory without bound and inserts stay O(bound).  Pure: no I/O, no clock.
"""

from __future__ import annotations

import bisect

from .._validate import bounded

#: Most id intervals an :class:`IdSet` keeps (a frame's dedupe memory: ~100 bytes each).
MAX_ID_INTERVALS = 100_000


class IdSet:
    """Membership of integer ids as sorted disjoint inclusive intervals.

    A contiguous stream of increasing ids costs one interval whatever its length, so dedupe over
    millions of events takes O(gaps) memory instead of a Python set's ~60 bytes per id.
    ``add`` returns False when the id was already present.

    Bound: at most ``max_intervals`` (default ``MAX_ID_INTERVALS`` = 100,000) intervals.  Beyond
    that the lowest hole is filled (its two intervals merged, counted in :attr:`holes_filled`):
    sparse ids (every other id, say) can no longer grow it without bound, at the price that a
    very late event whose id falls in such an old hole counts as already seen.
    """

    __slots__ = ("_lo", "_hi", "holes_filled", "max_intervals")

    def __init__(self, max_intervals: int | None = None) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        self.max_intervals = MAX_ID_INTERVALS if max_intervals is None else max_intervals
        bounded("max_intervals", self.max_intervals, 1, integer=True)
        self.holes_filled = 0

    def _bound(self) -> None:
        lo, hi = self._lo, self._hi
        while len(lo) > self.max_intervals:
            hi[0] = hi[1]
            del lo[1], hi[1]
            self.holes_filled += 1

    def __len__(self) -> int:
        return sum(h - lo + 1 for lo, h in zip(self._lo, self._hi))

    @property
    def intervals(self) -> list[tuple[int, int]]:
        return list(zip(self._lo, self._hi))

    def max(self) -> int | None:
        return self._hi[-1] if self._hi else None

    def __contains__(self, ident: int) -> bool:
        i = bisect.bisect_right(self._lo, ident) - 1
        return i >= 0 and ident <= self._hi[i]

    def add(self, ident: int) -> bool:
        lo, hi = self._lo, self._hi
        if hi and ident == hi[-1] + 1:  # the common case: the next id
            hi[-1] = ident
            return True
        if not hi or ident > hi[-1] + 1:
            lo.append(ident)
            hi.append(ident)
            if len(lo) > self.max_intervals:
                self._bound()
            return True
        i = bisect.bisect_right(lo, ident) - 1
        if i >= 0 and ident <= hi[i]:
            return False
        # ident lies after interval i (or before all) and before interval i+1
        joins_left = i >= 0 and hi[i] + 1 == ident
        joins_right = i + 1 < len(lo) and lo[i + 1] - 1 == ident
        if joins_left and joins_right:
            hi[i] = hi[i + 1]
            del lo[i + 1], hi[i + 1]
        elif joins_left:
            hi[i] = ident
        elif joins_right:
            lo[i + 1] = ident
        else:
            lo.insert(i + 1, ident)
            hi.insert(i + 1, ident)
            if len(lo) > self.max_intervals:
                self._bound()  # ``ident`` stays recorded (merging only widens intervals)
        return True

    def add_run(self, first: int, last: int) -> None:
        """Add the contiguous run ``first..last`` known to lie entirely above ``max()``."""
        if self._hi and first == self._hi[-1] + 1:
            self._hi[-1] = last
        else:
            self._lo.append(first)
            self._hi.append(last)
            if len(self._lo) > self.max_intervals:
                self._bound()
