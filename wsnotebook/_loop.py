"""The one background event loop per process, in a daemon thread.

Every server and client that wsnotebook starts runs on this loop, so cells return at once and the
kernel's own loop is never touched (no ``nest_asyncio``).  The public API is synchronous and
thread-safe: it schedules coroutines here with :func:`run` / :func:`submit`.

Errors inside background tasks are logged on the ``wsnotebook`` logger and counted in
:data:`unhandled_errors`; the loop's exception handler is replaced so nothing is printed into a
cell by asyncio itself.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from ._protocol import CpuBudget

log = logging.getLogger("wsnotebook")

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_shutdown_hooks: list[Callable[[], object]] = []

#: Count of exceptions that reached the background loop's exception handler.
unhandled_errors = 0


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    global unhandled_errors
    unhandled_errors += 1
    exc = context.get("exception")
    log.error("background task error: %s", context.get("message", ""), exc_info=exc)


#: Share of one core the background loop may use inside a Jupyter kernel.  Outside a kernel
#: (CLI server, scripts, benchmarks) nothing competes for the GIL, so the default is no budget.
KERNEL_CPU_BUDGET = 0.5

#: The background loop's CPU budget (see :class:`~wsnotebook._protocol.CpuBudget`).  Change it
#: with :func:`set_cpu_budget`; ``fraction=1.0`` turns throttling off.
budget = CpuBudget(fraction=1.0)
_budget_set_by_user = False


def _in_kernel() -> bool:
    import sys

    return "ipykernel" in sys.modules and sys.modules["ipykernel"] is not None


def _govern(loop: asyncio.AbstractEventLoop) -> None:
    """Periodic governor: sleep the loop thread (releasing the GIL) when over budget."""
    pause = budget.observe(time.monotonic(), time.thread_time())
    if pause:
        time.sleep(pause)  # deliberate: blocks only the background loop, frees the GIL
        budget.resumed(time.monotonic(), time.thread_time())
    loop.call_later(budget.period, _govern, loop)


def set_cpu_budget(fraction: float = 0.5, *, period: float = 0.02, max_pause: float = 0.05) -> None:
    """Set the share of one core wsnotebook's background work may use (0.05..1.0)."""
    global budget, _budget_set_by_user
    budget = CpuBudget(fraction=fraction, period=period, max_pause=max_pause)
    _budget_set_by_user = True


def budget_stats() -> dict[str, float]:
    """Throttling counters: pauses taken and seconds spent paused, and the configured fraction."""
    return {
        "cpu_budget": budget.fraction,
        "throttle_pauses": budget.pauses,
        "throttled_s": round(budget.paused_seconds, 3),
    }


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_exception_handler)
    loop.call_soon(ready.set)
    loop.call_soon(_govern, loop)
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the background loop, starting its daemon thread on first use."""
    global _loop, _thread, budget
    with _lock:
        if _loop is not None and _thread is not None and _thread.is_alive():
            return _loop
        if not _budget_set_by_user and _in_kernel():
            budget = CpuBudget(fraction=KERNEL_CPU_BUDGET)
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        thread = threading.Thread(
            target=_run_loop, args=(loop, ready), name="wsnotebook-loop", daemon=True
        )
        thread.start()
        ready.wait()
        _loop, _thread = loop, thread
        return loop


def in_loop_thread() -> bool:
    """True when called from the background loop's own thread."""
    return _thread is not None and threading.current_thread() is _thread


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the background loop; return a concurrent future at once."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def run(coro: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
    """Run ``coro`` on the background loop and wait for its result (bounded by ``timeout``).

    Must not be called from the loop thread itself (it would deadlock): raises RuntimeError.
    """
    if in_loop_thread():
        coro.close()
        raise RuntimeError("wsnotebook: blocking call made from the background loop thread")
    return submit(coro).result(timeout)


def call_soon(callback: Callable[..., Any], *args: Any) -> None:
    """Run a plain callback on the background loop (thread-safe)."""
    get_loop().call_soon_threadsafe(callback, *args)


def add_shutdown_hook(hook: Callable[[], object]) -> None:
    """Register a callable run at interpreter exit, before the loop stops (e.g. server.stop)."""
    _shutdown_hooks.append(hook)


def remove_shutdown_hook(hook: Callable[[], object]) -> None:
    try:
        _shutdown_hooks.remove(hook)
    except ValueError:
        pass


@atexit.register
def _atexit() -> None:
    for hook in list(reversed(_shutdown_hooks)):
        try:
            hook()
        except Exception:  # pragma: no cover - exit path
            log.debug("shutdown hook failed", exc_info=True)
    loop = _loop
    if loop is not None and loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
        if _thread is not None:
            _thread.join(timeout=5)
