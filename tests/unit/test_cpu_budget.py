"""The background loop's CPU budget (sans-I/O governor) and its loop wiring."""

from __future__ import annotations

import threading
import time

import pytest

from wsnotebook import _loop
from wsnotebook._protocol import CpuBudget
from wsnotebook.errors import ConfigError


def test_idle_loop_is_never_paused():
    b = CpuBudget(fraction=0.5, period=0.02)
    assert b.observe(0.0, 0.0) == 0.0
    assert b.observe(0.02, 0.001) == 0.0
    assert b.pauses == 0


def test_busy_loop_is_paused_to_its_share_of_a_core():
    b = CpuBudget(fraction=0.5, period=0.02, max_pause=1.0)
    b.observe(0.0, 0.0)
    # 20 ms of wall time fully on CPU: at half a core the loop must idle another 20 ms.
    pause = b.observe(0.02, 0.02)
    assert pause == pytest.approx(0.02)
    assert b.pauses == 1
    assert b.paused_seconds == pytest.approx(0.02)


def test_pause_is_capped_so_heartbeats_keep_flowing():
    b = CpuBudget(fraction=0.1, period=0.02, max_pause=0.05)
    b.observe(0.0, 0.0)
    assert b.observe(0.02, 0.02) == pytest.approx(0.05)


def test_time_spent_paused_counts_as_idle():
    b = CpuBudget(fraction=0.5, period=0.02, max_pause=1.0)
    b.observe(0.0, 0.0)
    assert b.observe(0.02, 0.02) > 0
    b.resumed(0.04, 0.02)
    assert b.observe(0.06, 0.021) == 0.0


def test_fraction_one_disables_throttling():
    b = CpuBudget(fraction=1.0)
    b.observe(0.0, 0.0)
    assert not b.enabled
    assert b.observe(1.0, 1.0) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [{"fraction": 0.0}, {"fraction": 1.5}, {"period": 0.0}, {"period": 2.0}, {"max_pause": 0}],
)
def test_out_of_bounds_options_are_rejected(kwargs):
    with pytest.raises(ConfigError):
        CpuBudget(**kwargs)


def test_background_loop_governor_throttles_a_cpu_hog():
    """A callback hogging the loop thread gets paused by the governor (counted in stats)."""
    old = _loop.budget
    _loop.set_cpu_budget(0.2, period=0.01, max_pause=0.05)
    try:
        loop = _loop.get_loop()
        done = threading.Event()
        deadline = time.monotonic() + 10

        def hog(left: int) -> None:
            end = time.thread_time() + 0.005
            while time.thread_time() < end:
                pass
            if left and _loop.budget.pauses < 3 and time.monotonic() < deadline:
                loop.call_soon(hog, left - 1)
            else:
                done.set()

        loop.call_soon_threadsafe(hog, 10_000)
        assert done.wait(15)
        stats = _loop.budget_stats()
        assert stats["throttle_pauses"] >= 3
        assert stats["throttled_s"] > 0
    finally:
        _loop.budget = old
        _loop._budget_set_by_user = False
