"""The monitor's tick schedule: a fixed rate whatever each tick costs, no burst after a stall."""

from __future__ import annotations

import itertools

import pytest

from wsnotebook.widget.pacing import TickPacer


def _run(pacer: TickPacer, start: float, work: float, ticks: int) -> list[float]:
    """Tick start times when each tick takes ``work`` seconds."""
    now, starts = start, []
    for _ in range(ticks):
        now += pacer.delay(now)
        starts.append(now)
        now += work
        pacer.ticked(now)
    return starts


def test_the_rate_does_not_drift_with_the_work_of_a_tick() -> None:
    starts = _run(TickPacer(0.25, now=100.0), 100.0, work=0.04, ticks=41)
    assert starts[0] == pytest.approx(100.25)
    assert starts[-1] - starts[0] == pytest.approx(10.0)  # 40 periods: 4 Hz, not 1/0.29 Hz


def test_a_stalled_tick_is_followed_by_rest_not_by_a_burst() -> None:
    pacer = TickPacer(0.25, now=0.0)
    assert pacer.delay(0.0) == pytest.approx(0.25)
    pacer.ticked(2.0)  # the tick due at 0.25 ended at 2.0 (a stalled kernel)
    assert pacer.delay(2.0) == pytest.approx(0.125)  # half a period of rest
    starts = _run(pacer, 2.0, work=0.3, ticks=5)  # every tick longer than a period
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert all(g == pytest.approx(0.3 + 0.125) for g in gaps)


def test_the_period_must_be_positive() -> None:
    with pytest.raises(ValueError):
        TickPacer(0.0, now=0.0)
