"""ReplaySchedule (sans-I/O): send times are the recorded inter-arrival times divided by the
speed, on an injected clock; recorded order is kept; ``speed=None`` sends everything at once."""

from __future__ import annotations

import random

import pytest
from _helpers import FakeClock

from wsnotebook.errors import ConfigError
from wsnotebook.recording import ReplaySchedule, parse_speed

T0 = 1_760_000_000_000.0


def test_send_times_are_the_original_gaps_divided_by_the_speed() -> None:
    clock = FakeClock(50.0)
    times = [T0, T0 + 1000, T0 + 1500, T0 + 4000]
    sched = ReplaySchedule(times, speed=10.0, clock=clock)
    assert [sched.send_time(i) - 50.0 for i in range(4)] == pytest.approx([0, 0.1, 0.15, 0.4])
    assert sched.duration == pytest.approx(0.4)


def test_due_and_next_time_walk_the_schedule() -> None:
    clock = FakeClock(0.0)
    sched = ReplaySchedule([T0, T0 + 1000, T0 + 2000], speed=2.0, clock=clock)
    assert sched.due() == 1  # the first event is due at once
    sched.advance(1)
    assert sched.next_time() == pytest.approx(0.5)
    clock.now = 0.49
    assert sched.due() == 1
    clock.now = 1.2  # a late shell catches up: both due events at once
    assert sched.due() == 3
    sched.advance(3)
    assert sched.finished and sched.next_time() is None


def test_lateness_does_not_accumulate_the_schedule_is_absolute() -> None:
    clock = FakeClock(0.0)
    times = [T0 + 10 * i for i in range(101)]  # 100 Hz for 1 s
    sched = ReplaySchedule(times, speed=10.0, clock=clock)
    # a shell that wakes 3 ms late every time still ends at the scheduled end + 3 ms
    while not sched.finished:
        upto = sched.due()
        if upto > sched.sent:
            sched.advance(upto)
            continue
        nxt = sched.next_time()
        assert nxt is not None
        clock.now = nxt + 0.003
    # the last event went out no later than its own time + one wake-up's lateness
    assert clock.now <= sched.duration + 0.003 + 1e-9
    assert sched.duration == pytest.approx(0.1)


@pytest.mark.parametrize("speed", [1.0, 10.0, 123.0])
def test_a_realistic_schedule_stays_within_half_a_percent_of_the_speed(speed: float) -> None:
    rng = random.Random(24)
    t = T0
    times = []
    for _ in range(10_000):
        t += rng.expovariate(1 / 1.0)  # ~1000 ev/s, exponential gaps
        times.append(t)
    clock = FakeClock(0.0)
    sched = ReplaySchedule(times, speed=speed, clock=clock)
    span = (times[-1] - times[0]) / 1000.0
    assert sched.duration == pytest.approx(span / speed, rel=0.005)
    for i in rng.sample(range(10_000), 50):
        assert sched.send_time(i) == pytest.approx((times[i] - times[0]) / 1000.0 / speed)


def test_recorded_order_is_kept_when_times_go_back_or_are_missing() -> None:
    clock = FakeClock(0.0)
    sched = ReplaySchedule(
        [T0, T0 + 500, T0 + 200, 0.0, float("nan"), T0 + 800], speed=1.0, clock=clock
    )
    assert sched.offsets == pytest.approx([0, 0.5, 0.5, 0.5, 0.5, 0.8])


def test_speed_max_sends_everything_at_once() -> None:
    clock = FakeClock(5.0)
    sched = ReplaySchedule([T0, T0 + 1e6], speed=None, clock=clock)
    assert sched.due() == 2 and sched.duration == 0.0


def test_parse_speed() -> None:
    assert parse_speed("max") is None and parse_speed(None) is None
    assert parse_speed("10") == 10.0 and parse_speed(2) == 2.0
    for bad in ("0", "-1", "fast", 0, 1e9):
        with pytest.raises(ConfigError):
            parse_speed(bad)


def test_empty_schedule_is_finished() -> None:
    sched = ReplaySchedule([], speed=10.0, clock=FakeClock())
    assert sched.finished and sched.duration == 0.0 and sched.next_time() is None
