"""Admission control (sans-I/O): ``RateLimiter``, per-key token buckets (injected clock).

Used for WebSocket handshakes per client IP (429 + ``Retry-After`` over the limit).  Bounds:
at most ``max_keys`` keys in memory, least recently seen evicted first; refused attempts spend
nothing.
"""

from __future__ import annotations

from .._validate import Clock, bounded


class RateLimiter:
    """Per-key token buckets (e.g. WebSocket handshakes per client IP), injected clock.

    Each key starts with ``burst`` tokens, gains ``rate`` per second up to ``burst``, and every
    allowed attempt spends one.  :meth:`check` returns ``0.0`` when the attempt is allowed (a
    token was spent) or the seconds until the next token otherwise (nothing is spent: refused
    attempts do not dig the hole deeper).

    Memory is bounded: the table holds at most ``max_keys`` keys, least recently seen first.  A
    key whose bucket has refilled (idle for ``burst / rate`` seconds) is forgotten as soon as it
    reaches the front of the table (it would be indistinguishable from a new key anyway); when
    the table is full of active keys, the least recently seen one is evicted (it starts full
    again: an attacker with more than ``max_keys`` addresses can refresh buckets, but memory
    stays bounded and no legitimate key is ever locked out by the table being full).

    Bounds: ``rate`` 0 (disabled: every attempt allowed, nothing stored) or > 0 per second,
    ``burst >= 1``, ``max_keys >= 1``.
    """

    __slots__ = ("rate", "burst", "max_keys", "_clock", "_buckets", "_idle_after", "evictions")

    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000, clock: Clock) -> None:
        bounded("rate", rate, 0, 1e12)
        bounded("burst", burst, 1, integer=True)
        bounded("max_keys", max_keys, 1, integer=True)
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        # key -> [tokens, last refill time]; insertion order == least recently seen first
        self._buckets: dict[str, list[float]] = {}
        self._idle_after = self.burst / self.rate if self.rate > 0 else 0.0
        #: Active keys evicted because the table was full.
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str) -> float:
        """Spend one of ``key``'s tokens: ``0.0`` when allowed, else seconds until one is due."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.pop(key, None)
        if bucket is None:
            tokens = self.burst
        else:
            tokens = min(self.burst, bucket[0] + max(0.0, now - bucket[1]) * self.rate)
        self._sweep(now)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        buckets[key] = [tokens, now]  # re-inserted: now the most recently seen
        return wait

    def _sweep(self, now: float) -> None:
        """Forget refilled keys at the front; evict the oldest active ones beyond the cap."""
        buckets = self._buckets
        idle_after = self._idle_after
        while buckets:
            oldest = next(iter(buckets))
            if now - buckets[oldest][1] >= idle_after:
                del buckets[oldest]
            elif len(buckets) >= self.max_keys:
                del buckets[oldest]
                self.evictions += 1
            else:
                break
