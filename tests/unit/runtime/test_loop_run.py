"""Blocking calls into the background loop: ``run`` refuses the loop thread and bounds its wait."""

from __future__ import annotations

import asyncio
import concurrent.futures

import pytest

from wsnotebook.errors import LoopThreadError, WaitTimeout, WsnError
from wsnotebook.runtime import loop as _loop


async def _value() -> int:
    await asyncio.sleep(0)
    return 7


def test_run_returns_the_coroutines_result() -> None:
    assert _loop.run(_value(), timeout=10) == 7


def test_run_from_the_loop_thread_raises_loop_thread_error_and_closes_the_coroutine() -> None:
    async def inner() -> None:
        coro = _value()
        with pytest.raises(LoopThreadError, match="from the background loop thread") as info:
            _loop.run(coro)
        assert isinstance(info.value, RuntimeError) and isinstance(info.value, WsnError)
        assert coro.cr_frame is None  # closed: never "was never awaited"

    _loop.submit(inner()).result(10)


def test_run_past_its_timeout_raises_wait_timeout_and_leaves_the_work_running() -> None:
    done: concurrent.futures.Future[str] = concurrent.futures.Future()

    async def slow() -> None:
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            done.set_result("cancelled")
            raise
        done.set_result("completed")

    with pytest.raises(WaitTimeout, match=r"no result within 0\.05 s") as info:
        _loop.run(slow(), timeout=0.05)
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, WsnError)
    assert done.result(10) == "completed"  # not cancelled: it went on in the background


def test_a_timeout_error_raised_by_the_coroutine_itself_is_not_a_wait_timeout() -> None:
    async def fails() -> None:
        raise TimeoutError("the coroutine's own")

    with pytest.raises(TimeoutError, match="the coroutine's own") as info:
        _loop.run(fails(), timeout=10)
    assert not isinstance(info.value, WaitTimeout)
