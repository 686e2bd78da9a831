"""``FedBroadcaster``: a server whose store feeds it (Redis) broadcasts the store's order, not
its own appends; an id jump is the usual gap record; an epoch change closes clients (1012)."""

from __future__ import annotations

from typing import Any

import orjson

from wsnotebook.server.broadcast import Broadcaster
from wsnotebook.server.feed import FedBroadcaster, make_broadcaster
from wsnotebook.server.metrics import ServerCounters
from wsnotebook.store import MemoryStore, RedisStore, StoredEvent


class FakeConn:
    """What the broadcaster calls on a connection, recorded."""

    def __init__(self, extended: bool = True) -> None:
        self.extended = extended
        self.ids: list[int] = []
        self.controls: list[dict[str, Any]] = []
        self.closed: int | None = None

    def push_event(self, encoded: bytes, emsg: bytes, frame: bytes | None = None) -> None:
        self.ids.append(orjson.loads(encoded)["id"])

    def push_auto(self, encoded: bytes) -> bool:
        return False  # record through push_event

    def push_many(self, run: Any) -> None:
        self.ids += [orjson.loads(e)["id"] for e in run.encoded]

    def send_control(self, msg: bytes) -> None:
        self.controls.append(orjson.loads(msg))

    def start_close(self, code: int, reason: bytes, final: bytes | None = None) -> None:
        self.closed = code


def stored(*ids: int) -> list[StoredEvent]:
    return [StoredEvent(i, b'{"id":%d}' % i, "", "", "") for i in ids]


def test_feed_is_the_only_source_and_jumps_are_gaps() -> None:
    store = RedisStore("redis://h/0")
    fed = make_broadcaster(store, ServerCounters())
    assert isinstance(fed, FedBroadcaster)
    assert type(make_broadcaster(MemoryStore(), ServerCounters())) is Broadcaster
    plain, seed = FakeConn(), FakeConn(extended=False)
    fed.clients |= {plain, seed}  # type: ignore[arg-type]
    fed.broadcast(stored(1, 2))  # the server's own append: the feed brings it
    assert plain.ids == [] and fed.broadcast_last == 0
    store._deliver(stored(1))  # type: ignore[misc]
    store._deliver(stored(1, 2, 3))  # type: ignore[misc]  # 1 again: dropped
    assert plain.ids == [1, 2, 3] == seed.ids and fed.broadcast_last == 3
    fed.deliver(stored(7, 8))  # 4..6 evicted before the tail read them
    assert plain.ids[-2:] == [7, 8]
    assert plain.controls == [
        {"type": "gap", "data": {"from_id": 4, "to_id": 6, "reason": "evicted", "epoch": ""}}
    ]
    assert seed.controls == []  # seed clients know no gap messages
    assert fed.gaps_sent == 1 and fed.counters.errors["feed_gap"] == 1
    store._reset_feed()  # type: ignore[misc]
    assert plain.closed == seed.closed == 1012 and fed.resets == 1


def test_a_resuming_client_waits_for_the_tail_to_reach_its_position() -> None:
    import asyncio

    async def run() -> tuple[bool, bool, bool, list[int]]:
        fed = FedBroadcaster(ServerCounters(), RedisStore("redis://h/0"))
        fed.deliver(stored(1, 2))
        at_once = await fed.catch_up(2, timeout=0.01)  # already there: no wait counted
        waiter = asyncio.ensure_future(fed.catch_up(5, timeout=30))
        await asyncio.sleep(0)
        fed.deliver(stored(3, 4))
        await asyncio.sleep(0)
        assert not waiter.done()  # 4 < 5: still waiting
        fed.deliver(stored(5, 6))
        caught = await waiter
        late = await fed.catch_up(99, timeout=0.05)  # the tail never gets there: bounded
        return at_once, caught, late, [fed.catch_ups, fed.catch_up_timeouts]

    at_once, caught, late, counts = asyncio.run(run())
    assert at_once and caught and not late
    assert counts == [2, 1]
