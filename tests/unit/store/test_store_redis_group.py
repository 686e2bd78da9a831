"""Group commit of the Redis store (``AppendGroups``) with a fake script call: appends waiting
while a call runs share the next one, ids follow arrival order, a failed call fails exactly its
group, a cancelled request does not break its group, one call never exceeds the limits."""

from __future__ import annotations

import asyncio

import pytest

from wsnotebook.errors import StoreError
from wsnotebook.store import Encoded
from wsnotebook.store.redis_group import GROUP_MAX_EVENTS, AppendGroups


def items(n: int) -> tuple[list[Encoded], list[bytes]]:
    return [Encoded(b"{}", "a", "s", "h", False) for _ in range(n)], [b"{}"] * n


class FakeRedis:
    def __init__(self) -> None:
        self.calls: list[int] = []
        self.seq = 0
        self.fail_next = False
        self.gate = asyncio.Event()

    async def run(self, its: list[Encoded], pres: list[bytes]) -> tuple[int, int, int]:
        await self.gate.wait()
        self.calls.append(len(its))
        if self.fail_next:
            self.fail_next = False
            raise StoreError("redis down")
        start = self.seq + 1
        self.seq += len(its)
        return start, 1, 100


def test_groups_ids_errors_and_limits() -> None:
    async def main() -> None:
        fake = FakeRedis()
        groups = AppendGroups(fake.run)
        first = asyncio.ensure_future(groups.submit(*items(2)))
        await asyncio.sleep(0)  # the first call is running (held at the gate)
        waiting = [asyncio.ensure_future(groups.submit(*items(n))) for n in (3, 1, 4)]
        await asyncio.sleep(0)
        waiting[1].cancel()  # its request went away: the group is still stored whole
        fake.gate.set()
        assert (await first)[0] == 1
        assert (await waiting[0])[0] == 3 and (await waiting[2])[0] == 7
        assert fake.calls == [2, 8] and groups.calls == 2 and groups.grouped == 2
        # a failed call fails its whole group and nothing else
        fake.gate.clear()
        a = asyncio.ensure_future(groups.submit(*items(1)))
        await asyncio.sleep(0)
        fake.fail_next = True
        b = asyncio.ensure_future(groups.submit(*items(1)))
        c = asyncio.ensure_future(groups.submit(*items(1)))
        fake.gate.set()
        with pytest.raises(StoreError):
            await a
        assert (await b)[0] == 11 and (await c)[0] == 12  # ids never used by the failure
        # limits: a big request goes alone, others are not merged past GROUP_MAX_EVENTS
        fake.gate.clear()
        held = asyncio.ensure_future(groups.submit(*items(1)))
        await asyncio.sleep(0)
        big = [asyncio.ensure_future(groups.submit(*items(GROUP_MAX_EVENTS - 1))) for _ in range(2)]
        fake.gate.set()
        await asyncio.gather(held, *big)
        assert fake.calls[-2:] == [GROUP_MAX_EVENTS - 1] * 2
        await groups.idle()

    asyncio.run(main())
