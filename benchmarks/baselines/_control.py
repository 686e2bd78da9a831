"""The stdin/stdout control loop shared by the Python bench servers (see benchmarks/_harness.py).

``serve_control(loop, emit_many, stats)`` reads control lines on a thread and runs the producer
on ``loop``: ``emit_many(start, n)`` must create and broadcast events ``start..start+n-1``.
``STATS gc`` runs ``gc.collect()`` before calling ``stats`` and adds ``"gc": true``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any


async def produce(
    count: int, rate: float, chunk: int, emit_many: Callable[[int, int], None]
) -> float:
    """Emit ``count`` events at ``rate`` ev/s (0: flat out, yielding every ``chunk`` events)."""
    t0 = time.perf_counter()
    i = 0
    while i < count:
        if rate > 0:
            due = min(count, int((time.perf_counter() - t0) * rate) + 1)
            n = min(due - i, chunk)
            if n <= 0:
                await asyncio.sleep(0.001)
                continue
        else:
            n = min(chunk, count - i)
        emit_many(i, n)
        i += n
        await asyncio.sleep(0)
    return time.perf_counter() - t0


def serve_control(
    loop: asyncio.AbstractEventLoop,
    emit_many: Callable[[int, int], None],
    stats: Callable[[], dict[str, Any]],
) -> None:
    """Block reading stdin; run GO/STATS on ``loop``; return on QUIT or EOF."""
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "GO":
            count, rate, chunk = int(parts[1]), float(parts[2]), int(parts[3])
            fut = asyncio.run_coroutine_threadsafe(produce(count, rate, chunk, emit_many), loop)

            def done(f: Any, count: int = count) -> None:
                print(f"DONE {count} {f.result():.4f}", flush=True)

            fut.add_done_callback(done)
        elif parts[0] == "STATS":
            # "STATS gc": collect garbage before the RSS read, as every bench server does
            # (node: global.gc()), so no runtime's uncollected garbage counts as its memory.
            collect = parts[1:] == ["gc"]
            if collect:
                gc.collect()
            res = asyncio.run_coroutine_threadsafe(_call(stats), loop).result(30)
            if collect:
                res = {**res, "gc": True}
            print("STATS " + json.dumps(res), flush=True)
        elif parts[0] == "QUIT":
            return


async def _call(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    return fn()


def rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # pragma: no cover
        return 0
