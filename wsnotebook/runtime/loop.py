"""The one background event loop per process, in a daemon thread.

Every server and client that wsnotebook starts runs on this loop, so cells return at once and the
kernel's own loop is never touched (no ``nest_asyncio``).  The public API is synchronous and
thread-safe: it schedules coroutines here with :func:`run` / :func:`submit`.

Inside a Jupyter kernel, all of wsnotebook's background work runs under one CPU budget
(:class:`~wsnotebook.runtime.budget.CpuBudget`, half a core by default) so the kernel stays
responsive under a flood: the loop's selector charges every loop iteration's CPU and sleeps the
loop thread (releasing the GIL) when over budget; long loops call :func:`budget_checkpoint`,
in-process producers await :func:`budget_ready` (backpressure), worker threads run inside
:func:`background_work`, and the server lets broadcast ticks linger under pressure (fewer,
larger messages per client). Lowering the GIL switch interval while background work is busy is
opt-in (``set_cpu_budget(switch_interval=KERNEL_SWITCH_INTERVAL)``; see that constant for why it
is off by default). Counters: :func:`budget_stats`.  Outside a kernel nothing of this
is active.

Errors inside background tasks are logged on the ``wsnotebook`` logger and counted in
:data:`unhandled_errors`; the loop's exception handler is replaced so nothing is printed into a
cell by asyncio itself.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import selectors
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from ..errors import LoopThreadError, WaitTimeout
from .budget import CpuBudget
from .logthrottle import ThrottledLog

log = logging.getLogger("wsnotebook")

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_shutdown_hooks: list[Callable[[], object]] = []

#: Count of exceptions that reached the background loop's exception handler.
unhandled_errors = 0
#: ``socket.accept()`` failures for lack of descriptors (EMFILE/ENFILE/ENOBUFS/ENOMEM); asyncio
#: reports them to the exception handler (up to one per pending connection per loop wake-up).
#: They are counted here, logged at most once per ``ACCEPT_LOG_PERIOD`` s, and handed to the
#: hooks (a server frees descriptors by closing idle connections), not counted as unhandled.
accept_errors = 0
ACCEPT_LOG_PERIOD = 10.0
ACCEPT_ERROR_MESSAGE = "socket.accept() out of system resource"
_accept_hooks: list[Callable[[int], object]] = []
_accept_log = ThrottledLog(log, per_period=1, period=ACCEPT_LOG_PERIOD)


def add_accept_error_hook(hook: Callable[[int], object]) -> None:
    """Call ``hook(listening socket fd)`` on every accept() failure for lack of descriptors."""
    _accept_hooks.append(hook)


def remove_accept_error_hook(hook: Callable[[int], object]) -> None:
    with contextlib.suppress(ValueError):
        _accept_hooks.remove(hook)


def _accept_error(context: dict[str, Any]) -> None:
    global accept_errors
    accept_errors += 1
    sock = context.get("socket")
    fd = sock.fileno() if sock is not None else -1
    _accept_log.warning(
        "accept_error",
        "wsnotebook: socket.accept() failed: %s (fd %d); closing idle connections",
        context.get("exception"),
        fd,
    )
    for hook in list(_accept_hooks):
        try:
            hook(fd)
        except Exception:  # pragma: no cover - a hook must not break the handler
            log.debug("accept error hook failed", exc_info=True)


def _stale_accept_retry(context: dict[str, Any]) -> bool:
    """asyncio (3.11) schedules one accept retry per failed accept(); those still pending when
    the server closes its listening socket raise ``ValueError: Invalid file descriptor: -1``.
    Harmless (the server is gone): logged at DEBUG, not as an error."""
    callback = getattr(context.get("handle"), "_callback", None)
    if getattr(callback, "__name__", "") != "_start_serving":
        return False
    if not isinstance(context.get("exception"), (ValueError, OSError)):
        return False
    log.debug("accept retry for a closed listening socket ignored")
    return True


def _exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    global unhandled_errors
    if context.get("message") == ACCEPT_ERROR_MESSAGE:
        _accept_error(context)
        return
    if _stale_accept_retry(context):
        return
    unhandled_errors += 1
    exc = context.get("exception")
    log.error("background task error: %s", context.get("message", ""), exc_info=exc)


#: Share of one core wsnotebook's background work may use inside a Jupyter kernel.  Outside a
#: kernel (CLI server, scripts, benchmarks) nothing competes for the GIL: no budget, no overhead.
KERNEL_CPU_BUDGET = 0.5
#: Opt-in GIL switch interval (seconds) for busy background work inside a kernel:
#: ``set_cpu_budget(switch_interval=KERNEL_SWITCH_INTERVAL)`` lowers it while background work is
#: busy and restores the interpreter's value once it has been idle for a second (see CpuBudget).
#: It was the default while the pipeline held the GIL for long stretches (cell p99 at 10k ev/s:
#: 36 ms at 5 ms, 18-21 ms at 0.1 ms).  Once those holds were gone (monitor copies, full GC
#: collections) lowering it cost more than it gave: ~0.37 cores with it vs ~0.31 without at
#: 10k ev/s, and cell p99 was lower without it in 6 of 8 paired kernel comparisons (equal in 1,
#: higher in 1; under a flood, mixed, far within its 50 ms target either way).  So by default
#: it is left alone.
KERNEL_SWITCH_INTERVAL = 0.0001

#: The background work's CPU budget (see :class:`~wsnotebook.runtime.budget.CpuBudget`).  Change it
#: with :func:`set_cpu_budget`; ``fraction=1.0, switch_interval=None`` turns everything off.
budget = CpuBudget(fraction=1.0, switch_interval=None)
_budget_set_by_user = False
_budget_lock = threading.Lock()  # budget is charged from the loop thread and worker threads
_loop_cpu_mark: float | None = None  # loop thread's thread_time() at the last accounting
_loop_cpu_owner: CpuBudget | None = None  # the budget that mark belongs to (re-baseline on swap)
_switch_saved: float | None = None  # interpreter switch interval before we lowered it
_switch_set: float | None = None  # the value we set (restore only if nobody changed it since)


def _in_kernel() -> bool:
    import sys

    return "ipykernel" in sys.modules and sys.modules["ipykernel"] is not None


def _apply_switch(low: bool, target: float | None) -> None:
    """Lower / restore the interpreter's GIL switch interval (called with _budget_lock held)."""
    global _switch_saved, _switch_set
    if low and target is not None and _switch_saved is None:
        _switch_saved = sys.getswitchinterval()
        if target < _switch_saved:
            sys.setswitchinterval(target)
            _switch_set = sys.getswitchinterval()
        else:
            _switch_saved = None
    elif not low and _switch_saved is not None:
        # Leave a value someone else set meanwhile alone.
        if _switch_set is not None and sys.getswitchinterval() == _switch_set:
            sys.setswitchinterval(_switch_saved)
        _switch_saved = _switch_set = None


def _account_loop() -> tuple[float, CpuBudget]:
    """Charge the loop thread's CPU since the last call; return the pause owed (seconds) and
    the budget that owes it (the one to count the pause on, even if replaced meanwhile)."""
    global _loop_cpu_mark, _loop_cpu_owner
    cpu = time.thread_time()
    b = budget
    mark, _loop_cpu_mark = _loop_cpu_mark, cpu
    if _loop_cpu_owner is not b:  # a new budget: CPU used before it was set is not its debt
        _loop_cpu_owner, mark = b, None
    now = time.monotonic()
    with _budget_lock:
        if mark is not None:
            b.charge(now, cpu - mark)
        if b.switch_interval is not None or _switch_saved is not None:
            _apply_switch(b.switch_wanted(now), b.switch_interval)
        return b.pause_for(now), b


def _pause_loop(pause: float, b: CpuBudget) -> None:
    """Sleep the loop thread (releases the GIL; blocks only background work) and count it on
    ``b``, the budget that ordered it: a budget set during the sleep starts with no pause."""
    global _loop_cpu_mark
    time.sleep(pause)
    with _budget_lock:
        b.paused(pause)
        b.resumed(time.monotonic())
    _loop_cpu_mark = time.thread_time()


class _BudgetSelector(selectors.DefaultSelector):
    """The loop's selector: accounts every loop iteration's CPU and pays budget debt.

    ``select`` is called once per loop iteration, so the CPU used since the previous call is
    exactly the work done by the callbacks of one iteration: no sampling, no timer that a busy
    loop could starve.  When over budget, the thread sleeps before polling.
    """

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if budget.active:
            try:
                pause, owner = _account_loop()
                if pause:
                    _pause_loop(pause, owner)
                    if timeout is not None:
                        timeout = max(0.0, timeout - pause)
            except Exception:  # pragma: no cover - never break the loop over accounting
                log.debug("cpu budget accounting failed", exc_info=True)
        return super().select(timeout)


def budget_checkpoint() -> None:
    """Cheap synchronous checkpoint for long loops running on the loop thread.

    Charges the CPU used since the last checkpoint / loop iteration and, when the budget is
    exceeded, sleeps the loop thread (at most ``max_pause``), giving the GIL to the kernel.  A
    no-op (one attribute read) when no budget is active, and off the loop thread.  Call it every
    few hundred microseconds of work (e.g. once per message or per batch), not per byte.
    """
    if not budget.active or not in_loop_thread():
        return
    pause, owner = _account_loop()
    if pause:
        _pause_loop(pause, owner)


async def budget_ready(*, just_woke: bool = False) -> None:
    """Backpressure for in-process producers on the loop: await it before generating more.

    Yields to the loop once (so consumers and sockets get their turn); while background work
    is over budget, waits until the debt is paid (at most ``max_pause`` per call), counted in
    ``budget_stats()["producer_waits"]`` / ``["producer_wait_s"]``.  Off the loop or with no
    budget it is just ``await asyncio.sleep(0)``.  ``just_woke=True`` (the caller has just
    come back from the loop, e.g. from a timer sleep): no yield unless in debt, since the yield
    would cost one more loop iteration (a ``select`` call) and give nothing new its turn.
    """
    if not budget.enabled or not in_loop_thread():
        if not just_woke:
            await asyncio.sleep(0)
        return
    pause, b = _account_loop()
    if not pause:
        if not just_woke:
            await asyncio.sleep(0)
        return
    t0 = time.monotonic()
    await asyncio.sleep(pause)
    waited = time.monotonic() - t0
    with _budget_lock:
        b.producer_waited(waited)


@contextlib.contextmanager
def background_work() -> Iterator[None]:
    """Run a worker thread's background job (e.g. monitor rendering) inside the CPU budget.

    Waits first while the budget is in debt (the worker sleeps, at most ``max_pause``), then
    charges the thread CPU time the block used to the same budget as the loop thread: all of
    wsnotebook's background work shares one token bucket.  Thread-safe; cheap when no budget.
    """
    b = budget
    if not b.active:
        yield
        return
    with _budget_lock:
        pause = b.pause_for(time.monotonic())
    if pause:
        time.sleep(pause)
        with _budget_lock:
            b.paused(pause)
    c0 = time.thread_time()
    try:
        yield
    finally:
        used = time.thread_time() - c0
        with _budget_lock:
            b.charge(time.monotonic(), used, worker=True)


def note_coalesced() -> None:
    """Count a broadcast tick the server let linger under budget pressure (loop thread)."""
    with _budget_lock:
        budget.coalesced += 1


def set_cpu_budget(
    fraction: float = KERNEL_CPU_BUDGET,
    *,
    period: float = 0.01,
    max_pause: float = 0.05,
    switch_interval: float | None = None,
) -> None:
    """Set the share of one core wsnotebook's background work may use (0.05..1.0).

    ``period``: longest burst is ``fraction * period`` CPU seconds (0.001..1 s);
    ``max_pause``: longest single pause (0..1 s); ``switch_interval``: GIL switch interval used
    while background work is busy (1e-5..0.005 s, e.g. ``KERNEL_SWITCH_INTERVAL``), or None (the
    default) to never touch it.
    ``set_cpu_budget(1.0, switch_interval=None)`` turns the budget off entirely.
    """
    global budget, _budget_set_by_user
    new = CpuBudget(
        fraction=fraction, period=period, max_pause=max_pause, switch_interval=switch_interval
    )
    with _budget_lock:
        _apply_switch(False, None)
        budget = new
        _budget_set_by_user = True


def budget_stats() -> dict[str, Any]:
    """Throttling counters of the background CPU budget (the monitor's status line shows them).

    ``cpu_budget`` (configured fraction of a core), ``cpu_share`` (recent background CPU use, in
    cores), ``throttling`` (True while in debt), ``throttle_pauses`` / ``throttled_s`` (pauses of
    the loop and worker threads), ``producer_waits`` / ``producer_wait_s`` (backpressure on
    in-process producers), ``loop_cpu_s`` / ``worker_cpu_s`` (CPU charged), ``switch_interval_ms``
    (current GIL switch interval), ``switch_lowered`` (times it was lowered) and
    ``coalesced_ticks`` (server broadcast ticks that lingered under budget pressure).
    """
    b = budget
    now = time.monotonic()
    with _budget_lock:
        b.accrue(now)
        return {
            "cpu_budget": b.fraction,
            "cpu_share": round(b.share, 3),
            "throttling": b.enabled and b.credit < 0,
            "throttle_pauses": b.pauses,
            "throttled_s": round(b.paused_seconds, 3),
            "producer_waits": b.producer_waits,
            "producer_wait_s": round(b.producer_wait_seconds, 3),
            "loop_cpu_s": round(b.loop_cpu_seconds, 3),
            "worker_cpu_s": round(b.worker_cpu_seconds, 3),
            "switch_interval_ms": round(sys.getswitchinterval() * 1000.0, 3),
            "switch_lowered": b.switch_lowered,
            "coalesced_ticks": b.coalesced,
        }


def _run_loop(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    global _loop_cpu_mark
    _loop_cpu_mark = None  # thread_time() is per thread: a new loop thread starts afresh
    asyncio.set_event_loop(loop)
    loop.set_exception_handler(_exception_handler)
    loop.call_soon(ready.set)
    try:
        loop.run_forever()
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        except Exception:  # pragma: no cover - best effort at interpreter exit
            pass
        with _budget_lock:
            _apply_switch(False, None)


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the background loop, starting its daemon thread on first use."""
    global _loop, _thread, budget
    with _lock:
        if _loop is not None and _thread is not None and _thread.is_alive():
            return _loop
        if not _budget_set_by_user and _in_kernel():
            budget = CpuBudget(fraction=KERNEL_CPU_BUDGET, switch_interval=None)
        loop = asyncio.SelectorEventLoop(_BudgetSelector())
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

    Must not be called from the loop thread itself (it would deadlock): raises
    :class:`~wsnotebook.errors.LoopThreadError` (a RuntimeError).  When ``timeout`` passes
    first, raises :class:`~wsnotebook.errors.WaitTimeout` (a TimeoutError); the coroutine is
    not cancelled and may still complete in the background.  A TimeoutError raised by the
    coroutine itself propagates unchanged.
    """
    if in_loop_thread():
        coro.close()
        raise LoopThreadError("wsnotebook: blocking call made from the background loop thread")
    fut = submit(coro)
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        # The builtin TimeoutError on 3.11+, so the coroutine's own TimeoutError lands here
        # too: only the wait running out (the future not done with an error) is WaitTimeout.
        if fut.done() and not fut.cancelled() and fut.exception() is not None:
            raise
        raise WaitTimeout(f"wsnotebook: no result within {timeout} s") from None


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
        # Cancel what is still pending (tasks of objects the user never closed) so that asyncio
        # does not report "Task was destroyed but it is pending!" while the interpreter exits.
        try:
            asyncio.run_coroutine_threadsafe(_cancel_pending(), loop).result(3)
        except Exception:  # pragma: no cover - exit path, best effort
            log.debug("cancelling pending tasks at exit failed", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        if _thread is not None:
            _thread.join(timeout=5)


async def _cancel_pending() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=2)
