"""Group commit for the Redis store: appends that arrive while a script call is running go
together into the next one (the SQLite store's writer does the same with transactions).

One script call at a time per store: under load each call carries the appends of many requests
(at most :data:`GROUP_MAX_EVENTS` events and :data:`GROUP_MAX_BYTES` bytes of JSON, so one call
never holds Redis for long; a single larger request goes alone), and a store needs one Redis
connection for its appends whatever the number of concurrent POSTs (redis-py's pool used to
refuse past its connection limit).  Ids stay contiguous: request ``k`` of a group gets the ids
after those of requests ``0..k-1``, in arrival order.

Invariants: every submitted append gets exactly one outcome (its first id, or the error of its
group's call, so each request answers 200 or 503 on its own evidence); a call that fails
acknowledges nothing of its group; no exception escapes the drain task; :meth:`AppendGroups.idle`
waits until nothing is pending or running.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from .base import Encoded

__all__ = ["GROUP_MAX_BYTES", "GROUP_MAX_EVENTS", "AppendGroups"]

#: Most events one script call carries (requests are never split: one larger request goes alone).
GROUP_MAX_EVENTS = 2000
#: Most bytes of event JSON one script call carries (same rule).
GROUP_MAX_BYTES = 4 << 20

#: ``run(items, pres)`` -> ``(first id, oldest retained id, retained bytes)``.
Runner = Callable[[list[Encoded], list[bytes]], Awaitable[tuple[int, int, int]]]


def _retrieve(fut: asyncio.Future[tuple[int, int, int]]) -> None:
    if not fut.cancelled():
        fut.exception()


class AppendGroups:
    """Queue of appends waiting for the next script call (loop thread only)."""

    def __init__(self, run: Runner) -> None:
        self._run = run
        self._pending: deque[
            tuple[list[Encoded], list[bytes], asyncio.Future[tuple[int, int, int]]]
        ] = deque()
        self._task: asyncio.Task[None] | None = None
        self.calls = 0  # script calls made
        self.grouped = 0  # appends that shared a call with an earlier one

    async def submit(self, items: list[Encoded], pres: list[bytes]) -> tuple[int, int, int]:
        """Append ``items`` (their stored JSON without ids: ``pres``) in the next call; returns
        ``(their first id, oldest retained id, retained bytes)`` once Redis ran it."""
        fut: asyncio.Future[tuple[int, int, int]] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(_retrieve)  # its waiter may be gone (the request was cancelled)
        self._pending.append((items, pres, fut))
        if self._task is None:
            self._task = asyncio.ensure_future(self._drain())
        return await asyncio.shield(fut)  # a cancelled request leaves its group intact

    async def idle(self) -> None:
        """Until nothing is pending or running."""
        while self._task is not None:
            await asyncio.wait({self._task})

    def _take(
        self,
    ) -> list[tuple[list[Encoded], list[bytes], asyncio.Future[tuple[int, int, int]]]]:
        group = [self._pending.popleft()]
        events = len(group[0][0])
        size = sum(map(len, group[0][1]))
        while self._pending:
            items, pres, _ = self._pending[0]
            more = sum(map(len, pres))
            if events + len(items) > GROUP_MAX_EVENTS or size + more > GROUP_MAX_BYTES:
                break
            group.append(self._pending.popleft())
            events += len(items)
            size += more
        return group

    async def _drain(self) -> None:
        try:
            while self._pending:
                group = self._take()
                self.calls += 1
                self.grouped += len(group) - 1
                items = [it for g in group for it in g[0]]
                pres = [p for g in group for p in g[1]]
                try:
                    start, first, nbytes = await self._run(items, pres)
                except BaseException as exc:  # each waiter answers with the call's error
                    for _, _, fut in group:
                        if not fut.done():
                            fut.set_exception(exc)
                    if isinstance(exc, asyncio.CancelledError):
                        raise
                    continue
                offset = start
                for part, _, fut in group:
                    if not fut.done():
                        fut.set_result((offset, first, nbytes))
                    offset += len(part)
        except asyncio.CancelledError:
            while self._pending:  # never left waiting
                fut = self._pending.popleft()[2]
                if not fut.done():
                    fut.set_exception(asyncio.CancelledError())
        finally:
            self._task = None
