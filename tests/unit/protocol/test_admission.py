"""The per-key handshake rate limiter (sans-I/O, fake clock)."""

from __future__ import annotations

import math

import pytest

from wsnotebook.errors import ConfigError
from wsnotebook.protocol import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_new_key_gets_the_whole_burst_then_waits_for_the_rate():
    clock = FakeClock()
    rl = RateLimiter(2.0, 3, clock=clock)
    assert [rl.check("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert rl.check("a") == pytest.approx(0.5)
    clock.now += 0.25
    assert rl.check("a") == pytest.approx(0.25)
    clock.now += 0.25
    assert rl.check("a") == 0.0
    assert rl.check("a") == pytest.approx(0.5)


def test_refused_attempts_spend_nothing():
    clock = FakeClock()
    rl = RateLimiter(1.0, 1, clock=clock)
    assert rl.check("a") == 0.0
    for _ in range(100):
        assert rl.check("a") > 0
    clock.now += 1.0
    assert rl.check("a") == 0.0


def test_tokens_never_exceed_the_burst_after_a_long_idle():
    clock = FakeClock()
    rl = RateLimiter(10.0, 2, clock=clock)
    rl.check("a")
    clock.now += 3600
    assert [rl.check("a") for _ in range(3)][:2] == [0.0, 0.0]
    assert rl.check("a") > 0


def test_keys_are_independent():
    clock = FakeClock()
    rl = RateLimiter(1.0, 1, clock=clock)
    assert rl.check("a") == 0.0
    assert rl.check("a") > 0
    assert rl.check("b") == 0.0


def test_a_clock_going_backwards_adds_no_tokens():
    clock = FakeClock()
    rl = RateLimiter(1.0, 1, clock=clock)
    assert rl.check("a") == 0.0
    clock.now -= 50
    assert rl.check("a") > 0


def test_rate_zero_disables_and_stores_nothing():
    rl = RateLimiter(0.0, 1, clock=FakeClock())
    assert not rl.enabled
    assert all(rl.check("a") == 0.0 for _ in range(1000))
    assert len(rl) == 0


def test_refilled_keys_are_forgotten_and_the_table_is_capped():
    clock = FakeClock()
    rl = RateLimiter(1.0, 2, max_keys=50, clock=clock)
    for i in range(1000):
        rl.check(f"10.0.{i // 256}.{i % 256}")
        assert len(rl) <= 50
    assert len(rl) == 50 and rl.evictions == 950
    clock.now += 2.0  # every bucket refilled: the next check sweeps them all
    rl.check("x")
    assert len(rl) == 1


def test_the_active_key_survives_while_idle_ones_are_swept():
    clock = FakeClock()
    rl = RateLimiter(1.0, 1, max_keys=3, clock=clock)
    rl.check("hot")
    for name in ("a", "b"):
        clock.now += 0.4
        rl.check(name)
        rl.check("hot")  # refused, but keeps "hot" most recently seen
    assert len(rl) == 3 and rl.evictions == 0
    assert rl.check("hot") > 0  # still limited: its bucket was not forgotten


@pytest.mark.parametrize(
    ("rate", "burst", "max_keys"),
    [(-1.0, 1, 1), (math.nan, 1, 1), (math.inf, 1, 1), (1.0, 0, 1), (1.0, 1, 0)],
)
def test_bad_bounds_raise_config_error(rate, burst, max_keys):
    with pytest.raises(ConfigError):
        RateLimiter(rate, burst, max_keys=max_keys, clock=FakeClock())
