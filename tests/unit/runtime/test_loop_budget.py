"""The CPU budget wired into the real background loop: throttling, switch interval, backpressure,
worker threads, counters."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from wsnotebook.runtime import loop as _loop
from wsnotebook.runtime.budget import CpuBudget


@pytest.fixture
def restore_budget() -> Iterator[None]:
    old, old_user = _loop.budget, _loop._budget_set_by_user
    # Earlier tests may have imported ipykernel, which turns the kernel budget on for the
    # pytest process; a busy loop then has the interval lowered.  Put it back *before* taking
    # the value to restore, or this fixture would make the lowered value permanent.
    _loop.set_cpu_budget(1.0, switch_interval=None)
    interval = sys.getswitchinterval()
    try:
        yield
    finally:
        _loop.set_cpu_budget(1.0, switch_interval=None)  # restores a lowered switch interval
        _loop.budget, _loop._budget_set_by_user = old, old_user
        sys.setswitchinterval(interval)


def _hog_until(loop: asyncio.AbstractEventLoop, cond: Callable[[], bool]) -> threading.Event:
    """Schedule 5 ms CPU-bound callbacks back to back until ``cond()`` (for at most 10 s).

    Returns an event set only once ``cond()`` became true: when the 10 s pass first the hog
    stops without setting it, so ``assert reached.wait(...)`` fails instead of passing."""
    reached = threading.Event()
    deadline = time.monotonic() + 10

    def hog() -> None:
        end = time.thread_time() + 0.005
        while time.thread_time() < end:
            pass
        if cond():
            reached.set()
        elif time.monotonic() < deadline:
            loop.call_soon(hog)

    loop.call_soon_threadsafe(hog)
    return reached


@pytest.mark.usefixtures("restore_budget")
def test_background_loop_governor_throttles_a_cpu_hog():
    """Callbacks hogging the loop thread are paused at every loop iteration (counted)."""
    _loop.set_cpu_budget(0.2, period=0.01, max_pause=0.05, switch_interval=None)
    reached = _hog_until(_loop.get_loop(), lambda: _loop.budget.pauses >= 3)
    assert reached.wait(15)
    stats = _loop.budget_stats()
    assert stats["throttle_pauses"] >= 3
    assert stats["throttled_s"] > 0
    assert stats["loop_cpu_s"] > 0


@pytest.mark.usefixtures("restore_budget")
def test_switch_interval_is_lowered_while_the_loop_is_busy_and_put_back_on_reset():
    before = sys.getswitchinterval()
    _loop.set_cpu_budget(1.0, switch_interval=0.0005)
    seen: list[float] = []

    def lowered() -> bool:
        seen.append(sys.getswitchinterval())
        return seen[-1] < before

    reached = _hog_until(_loop.get_loop(), lowered)
    assert reached.wait(15)
    assert seen[-1] == pytest.approx(0.0005)
    assert _loop.budget_stats()["switch_lowered"] >= 1
    _loop.set_cpu_budget(1.0, switch_interval=None)
    assert sys.getswitchinterval() == pytest.approx(before)


@pytest.mark.usefixtures("restore_budget")
def test_a_switch_interval_changed_by_the_user_is_left_alone():
    before = sys.getswitchinterval()
    _loop.set_cpu_budget(1.0, switch_interval=0.0005)
    reached = _hog_until(_loop.get_loop(), lambda: sys.getswitchinterval() < before)
    assert reached.wait(15)
    sys.setswitchinterval(0.002)  # the user's own choice
    _loop.set_cpu_budget(1.0, switch_interval=None)
    assert sys.getswitchinterval() == pytest.approx(0.002)


@pytest.mark.usefixtures("restore_budget")
@pytest.mark.parametrize("just_woke", [False, True])
def test_producers_awaiting_budget_ready_are_held_back_when_over_budget(just_woke: bool) -> None:
    # just_woke=True (right after a timer sleep) skips only the plain yield, never a debt wait
    _loop.set_cpu_budget(0.1, period=0.01, max_pause=0.05, switch_interval=None)

    async def producer() -> int:
        for _ in range(200):
            end = time.thread_time() + 0.002
            while time.thread_time() < end:
                pass
            await _loop.budget_ready(just_woke=just_woke)
            if _loop.budget.producer_waits >= 2:
                break
        return _loop.budget.producer_waits

    assert _loop.run(producer(), timeout=30) >= 2
    assert _loop.budget_stats()["producer_wait_s"] > 0


@pytest.mark.usefixtures("restore_budget")
def test_budget_ready_yields_to_other_tasks_even_without_a_budget():
    _loop.set_cpu_budget(1.0, switch_interval=None)

    async def scenario() -> bool:
        ran = asyncio.Event()
        asyncio.get_running_loop().call_soon(ran.set)
        await _loop.budget_ready()
        return ran.is_set()

    assert _loop.run(scenario(), timeout=10)


@pytest.mark.usefixtures("restore_budget")
@pytest.mark.parametrize("fraction", [1.0, 0.5])
def test_budget_ready_just_woke_does_not_yield_when_not_in_debt(fraction: float) -> None:
    # Right after a timer sleep the caller has just come back from the loop: another yield
    # would only cost a loop iteration.  Within budget (or without one) it returns at once.
    _loop.set_cpu_budget(fraction, switch_interval=None)

    async def scenario() -> tuple[bool, bool]:
        ran = asyncio.Event()
        asyncio.get_running_loop().call_soon(ran.set)
        await _loop.budget_ready(just_woke=True)
        skipped = not ran.is_set()
        await _loop.budget_ready()
        return skipped, ran.is_set()

    assert _loop.run(scenario(), timeout=10) == (True, True)


@pytest.mark.usefixtures("restore_budget")
def test_checkpoint_inside_a_long_callback_pauses_it():
    _loop.set_cpu_budget(0.1, period=0.01, max_pause=0.05, switch_interval=None)

    async def long_step() -> int:
        for _ in range(200):  # one task step that never yields, but checkpoints
            end = time.thread_time() + 0.002
            while time.thread_time() < end:
                pass
            _loop.budget_checkpoint()
            if _loop.budget.pauses >= 2:
                break
        return _loop.budget.pauses

    assert _loop.run(long_step(), timeout=30) >= 2


@pytest.mark.usefixtures("restore_budget")
def test_worker_thread_cpu_is_charged_to_the_shared_budget():
    # 50 ms of CPU at 5 % of a core: about a second of debt
    _loop.set_cpu_budget(0.05, period=0.01, switch_interval=None)
    with _loop.background_work():
        end = time.thread_time() + 0.05
        while time.thread_time() < end:
            pass
    assert _loop.budget_stats()["worker_cpu_s"] >= 0.045
    assert _loop.budget_stats()["throttling"] is True
    with _loop.background_work():  # in debt: the next job waits first (counted)
        pass
    assert _loop.budget_stats()["throttle_pauses"] >= 1


def test_budget_stats_fields_for_the_status_line():
    stats = _loop.budget_stats()
    assert set(stats) == {
        "cpu_budget",
        "cpu_share",
        "throttling",
        "throttle_pauses",
        "throttled_s",
        "producer_waits",
        "producer_wait_s",
        "loop_cpu_s",
        "worker_cpu_s",
        "switch_interval_ms",
        "switch_lowered",
        "coalesced_ticks",
    }


@pytest.mark.usefixtures("restore_budget")
def test_off_switch_costs_nothing_and_counts_nothing():
    _loop.set_cpu_budget(1.0, switch_interval=None)
    n = [0]

    def cond() -> bool:
        n[0] += 1
        return n[0] >= 5

    reached = _hog_until(_loop.get_loop(), cond)
    assert reached.wait(15)
    _loop.budget_checkpoint()
    stats = _loop.budget_stats()
    assert stats["throttle_pauses"] == 0
    assert stats["loop_cpu_s"] == 0


@pytest.mark.usefixtures("restore_budget")
def test_a_pause_is_counted_on_the_budget_that_ordered_it_not_on_its_replacement():
    # The loop thread sleeps off a debt of budget A; a cell sets budget B meanwhile: the pause
    # is A's (B would otherwise report a throttle pause it never ordered).
    old = CpuBudget(fraction=0.2, period=0.01, max_pause=0.05)
    _loop.set_cpu_budget(1.0, switch_interval=None)
    _loop._pause_loop(0.0, old)
    assert old.pauses == 1
    assert _loop.budget_stats()["throttle_pauses"] == 0
