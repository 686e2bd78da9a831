"""Rate and latency statistics (sans-I/O, injected clock): ``RateMeter``, ``LatencyStats``.

``RateMeter`` counts events in one-second buckets over a sliding ``window`` (bounded memory:
``window`` buckets); ``LatencyStats`` keeps the most recent ``size`` samples (a preallocated
ring of floats) and answers percentiles by rank.  Both refuse NaN, infinities and bools in
their settings with a :class:`~wsnotebook.errors.ConfigError` naming the setting.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from collections.abc import Sequence

import numpy as np

from ._validate import Clock, bounded

# --------------------------------------------------------------------------- statistics


class RateMeter:
    """Events per second over a sliding window of whole-second buckets (injected clock).

    Memory is O(window) buckets; ``add`` is O(1) amortised.  ``rate()`` divides the count in the
    last ``window`` seconds by the covered time (at least one second).
    """

    def __init__(self, *, window: float = 10.0, clock: Clock) -> None:
        bounded("rate window", window, 1, unit=" s")
        self.window = window
        self._clock = clock
        self._buckets: deque[list[float]] = deque()  # [second, count]
        self._start = clock()
        self.total = 0

    def add(self, n: int = 1) -> None:
        sec = math.floor(self._clock())
        self.total += n
        if self._buckets and self._buckets[-1][0] == sec:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([sec, n])
            self._trim(sec)

    def _trim(self, now_sec: float) -> None:
        limit = now_sec - self.window
        while self._buckets and self._buckets[0][0] <= limit:
            self._buckets.popleft()

    def rate(self) -> float:
        now = self._clock()
        self._trim(math.floor(now))
        count = sum(c for _, c in self._buckets)
        span = min(self.window, max(1.0, now - self._start))
        return count / span


class LatencyStats:
    """Percentiles over the most recent ``size`` samples (a ring; default 10,000).

    The ring is one preallocated ``array('d')`` (8 bytes a sample, never resized): ``add`` and
    ``extend`` write floats in place (no Python float object kept per sample), and a summary
    reads the samples without a per-sample pass (a deque of 10,000 floats cost ~0.25 ms per
    summary to gather; the monitor asks twice a second).  A summary taken while another
    thread writes may see some samples of that write and not others; never a torn value.
    """

    def __init__(self, size: int = 10_000) -> None:
        bounded("latency sample size", size, 1, integer=True)
        self._size = int(size)
        self._ring = array("d", bytes(8 * self._size))
        self._next = 0  # ring index of the next write
        self.count = 0

    def add(self, value: float) -> None:
        i = self._next
        self._ring[i] = value
        self._next = i + 1 if i + 1 < self._size else 0
        self.count += 1

    def extend(self, values: Sequence[float]) -> None:
        k = len(values)
        if not k:
            return
        self.count += k
        i, size = self._next, self._size
        if i + k < size:  # the usual case: fits before the ring's end
            self._ring[i : i + k] = array("d", values)
            self._next = i + k
            return
        if k >= size:  # only the newest ``size`` count
            values, k, i = values[k - size :], size, 0
        first = size - i  # up to the ring's end, the rest from its start
        self._ring[i:] = array("d", values[:first])
        self._ring[: k - first] = array("d", values[first:])
        self._next = (i + k) % size

    @property
    def _filled(self) -> int:
        """Samples held (at most ``size``)."""
        return min(self.count, self._size)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile, ``q`` in [0, 1] (else :class:`ConfigError`); ``None``
        without samples."""
        bounded("percentile q", q, 0, 1)
        return self._ranks((q,))[0] if self._filled else None

    def summary(self, qs: Sequence[float] = (0.5, 0.9, 0.99)) -> dict[str, float | None]:
        """``{"p50": ..., ...}`` for each ``q`` in ``qs`` (each in [0, 1])."""
        for q in qs:
            bounded("percentile q", q, 0, 1)
        if not self._filled:
            return {f"p{_pname(q)}": None for q in qs}
        return {f"p{_pname(q)}": v for q, v in zip(qs, self._ranks(qs))}

    def _ranks(self, qs: Sequence[float]) -> list[float]:
        # A partial sort (numpy's partition, on its own copy of the ring), not a full
        # ``sorted``: sorting 10,000 floats took ~1.2 ms of GIL-holding Python here.
        n = self._filled
        values = np.frombuffer(self._ring, dtype=np.float64, count=n)
        ks = [min(n - 1, max(0, math.ceil(q * n) - 1)) for q in qs]
        chosen = np.partition(values, sorted(set(ks)))
        return [float(chosen[k]) for k in ks]


def _pname(q: float) -> str:
    text = f"{q * 100:.3f}".rstrip("0").rstrip(".")
    return text
