"""Backoff timing (fake clock, seeded RNG, no sleeping): the delays the session waits."""

from __future__ import annotations

import random

import pytest

from wsnotebook.errors import ConfigError
from wsnotebook.protocol import Backoff


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_delays_follow_full_jitter_under_an_exponential_ceiling() -> None:
    clock = FakeClock()
    b = Backoff(base=0.1, factor=2.0, cap=10.0, min_delay=0.0, rng=random.Random(1), clock=clock)
    ref = random.Random(1)
    expected_ceilings = [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 6.4, 10.0, 10.0, 10.0]
    for ceiling in expected_ceilings:
        assert b.next_delay() == pytest.approx(ref.uniform(0, ceiling))
    assert b.attempts == len(expected_ceilings)


def test_delays_are_bounded_by_cap_and_min_delay_over_many_attempts() -> None:
    b = Backoff(base=0.05, cap=0.5, min_delay=0.01, rng=random.Random(3), clock=FakeClock())
    delays = [b.next_delay() for _ in range(2000)]
    assert all(0.01 <= d <= 0.5 for d in delays)
    # full jitter: late delays spread over the whole [0, cap] range, not clustered at cap
    late = delays[100:]
    assert min(late) < 0.1 and max(late) > 0.4


def test_same_seed_gives_the_same_schedule() -> None:
    a = Backoff(rng=random.Random(42), clock=FakeClock())
    b = Backoff(rng=random.Random(42), clock=FakeClock())
    assert [a.next_delay() for _ in range(20)] == [b.next_delay() for _ in range(20)]


def test_attempts_reset_only_after_a_stable_connection() -> None:
    clock = FakeClock()
    b = Backoff(stable_after=5.0, rng=random.Random(0), clock=clock)
    for _ in range(4):
        b.next_delay()
    b.connected()
    clock.t += 4.9
    b.disconnected()  # flapping: not stable, keep growing
    assert b.attempts == 4
    b.connected()
    clock.t += 5.0
    b.disconnected()
    assert b.attempts == 0


def test_max_attempts_exhausts() -> None:
    b = Backoff(max_attempts=2, rng=random.Random(0), clock=FakeClock())
    assert not b.exhausted()
    b.next_delay()
    b.next_delay()
    assert b.exhausted()
    assert Backoff(max_attempts=0, clock=FakeClock()).exhausted()


def test_huge_attempt_counts_do_not_overflow() -> None:
    b = Backoff(cap=3.0, clock=FakeClock())
    assert b.ceiling(10**9) == 3.0


@pytest.mark.parametrize(
    "kwargs", [{"base": 0}, {"factor": 0.5}, {"cap": 0.01}, {"max_attempts": -1}]
)
def test_invalid_backoff_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        Backoff(clock=FakeClock(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad",
    [{"cap": float("nan")}, {"base": float("inf"), "cap": float("inf")},
     {"stable_after": float("nan")}, {"factor": float("nan")}, {"min_delay": float("inf")},
     {"base": True}],
)  # fmt: skip
def test_backoff_refuses_settings_that_are_not_finite_numbers(bad: dict) -> None:
    """cap=nan gave a 10 ms reconnect storm, inf an endless wait, stable_after=nan never reset."""
    with pytest.raises(ConfigError, match="backoff"):
        Backoff(clock=lambda: 0.0, **bad)
