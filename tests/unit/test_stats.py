"""RateMeter and LatencyStats (wsnotebook.stats)."""

from __future__ import annotations

import math
import random
from collections import deque
from typing import Any

import pytest
from _helpers import FakeClock

from wsnotebook.errors import ConfigError
from wsnotebook.stats import LatencyStats, RateMeter

# --------------------------------------------------------------------------- RateMeter


def test_rate_meter_counts_over_a_sliding_window() -> None:
    clock = FakeClock(1000.0)
    meter = RateMeter(window=10, clock=clock)
    assert meter.rate() == 0
    meter.add(5)
    assert meter.rate() == 5.0  # covered time is at least one second
    for _ in range(4):
        clock.now += 1
        meter.add(10)
    clock.now += 0.5  # 4.5 s since start
    assert meter.rate() == pytest.approx(45 / 4.5)
    clock.now += 20  # everything has left the window
    assert meter.rate() == 0 and meter.total == 45
    meter.add()
    assert meter.rate() == pytest.approx(0.1)  # window fully covered: count / 10 s


def test_rate_meter_memory_is_bounded_by_window() -> None:
    clock = FakeClock(0.0)
    meter = RateMeter(window=3, clock=clock)
    for _ in range(100):
        clock.now += 1
        meter.add()
    assert len(meter._buckets) <= 3


def test_rate_meter_window_bound() -> None:
    with pytest.raises(ConfigError):
        RateMeter(window=0.5, clock=FakeClock())


# --------------------------------------------------------------------------- LatencyStats


def test_latency_stats_nearest_rank_percentiles() -> None:
    stats = LatencyStats()
    assert stats.percentile(0.5) is None
    assert stats.summary() == {"p50": None, "p90": None, "p99": None}
    stats.extend([float(v) for v in range(100, 0, -1)])
    stats.add(0.0)
    assert stats.count == 101
    assert stats.percentile(0.0) == 0.0 and stats.percentile(1.0) == 100.0
    assert stats.percentile(0.5) == 50.0
    assert stats.summary((0.5, 0.999)) == {"p50": 50.0, "p99.9": 100.0}


def test_latency_stats_partial_sort_gives_exactly_the_sorted_nearest_rank() -> None:
    rng = random.Random(7)
    for size in (1, 2, 3, 10, 999, 10_000):
        stats = LatencyStats(size=size)
        values = [rng.choice((rng.random() * 50, float(rng.randint(0, 5)))) for _ in range(size)]
        stats.extend(values)
        ordered = sorted(values)
        qs = (0.0, 0.001, 0.5, 0.5, 0.9, 0.99, 0.999, 1.0)
        expected = [ordered[min(size - 1, max(0, math.ceil(q * size) - 1))] for q in qs]
        assert [stats.percentile(q) for q in qs] == expected
        assert list(stats.summary((0.5, 0.9, 0.99, 0.999)).values()) == [
            expected[2],
            expected[4],
            expected[5],
            expected[6],
        ]
        assert all(type(v) is float for v in stats.summary().values())


def test_latency_stats_keep_only_the_last_samples() -> None:
    stats = LatencyStats(size=3)
    stats.extend([100.0, 1.0, 2.0, 3.0])
    assert stats.percentile(1.0) == 3.0 and stats.count == 4
    with pytest.raises(ConfigError):
        LatencyStats(size=0)


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan"), True])
def test_latency_percentiles_outside_0_1_are_refused_not_clamped(q: Any) -> None:
    stats = LatencyStats(10)
    stats.extend([1.0, 2.0, 3.0])
    with pytest.raises(ConfigError, match="percentile q"):
        stats.percentile(q)
    with pytest.raises(ConfigError, match="percentile q"):
        stats.summary((0.5, q))
    assert stats.percentile(1) == 3.0 and stats.percentile(0) == 1.0


def test_latency_stats_ring_keeps_exactly_the_newest_samples_across_wraps() -> None:
    # The ring is written in place (add, and extend in one or two slices, or only the newest
    # ``size`` of a longer batch): its percentiles are those of the last ``size`` values.
    rng = random.Random(11)
    for size in (1, 3, 7, 64):
        stats = LatencyStats(size=size)
        held: deque[float] = deque(maxlen=size)
        for _ in range(200):
            if rng.random() < 0.3:
                v = float(rng.randint(0, 1000))
                stats.add(v)
                held.append(v)
            else:
                batch = [float(rng.randint(0, 1000)) for _ in range(rng.randint(0, 2 * size + 2))]
                stats.extend(batch)
                held.extend(batch)
            ordered = sorted(held)
            n = len(ordered)
            for q in (0.0, 0.5, 0.99, 1.0):
                want = ordered[min(n - 1, max(0, math.ceil(q * n) - 1))] if n else None
                assert stats.percentile(q) == want
        assert stats.count >= len(held)
