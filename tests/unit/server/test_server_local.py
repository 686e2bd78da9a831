"""``LocalSubscriber`` (server/local.py) without sockets: the replay hold is bounded like a socket
client's queue (1013 on overflow, counted), held messages go live in arrival order, a tick's
events leave as one message, and closing reports the code once and leaves the broadcaster."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from wsnotebook.protocol import CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN, heartbeat_message
from wsnotebook.runtime.logthrottle import ThrottledLog
from wsnotebook.server.broadcast import Broadcaster
from wsnotebook.server.local import LocalSubscriber, ServerEndpoint, resolve
from wsnotebook.server.metrics import ServerCounters
from wsnotebook.store import MemoryStore


class FakeServer:
    """The attributes of a Server a subscriber and the replay use."""

    def __init__(self, queue_size: int = 100, max_queue_bytes: int = 1 << 20) -> None:
        self.counters = ServerCounters()
        self.broadcaster = Broadcaster(self.counters)
        self.store = MemoryStore(retain=1000)
        self.max_message_bytes = 1 << 20
        self.initial_limit = 300
        self.queue_size = queue_size
        self.max_queue_bytes = max_queue_bytes
        self.max_connections = 10
        self.running = True
        self.log_throttle = ThrottledLog(logging.getLogger("wsnotebook"))


def enc(i: int) -> bytes:
    return orjson.dumps(
        {"id": i, "source_app": "a", "session_id": "s", "hook_event_type": "X", "payload": {}}
    )


def subscriber(server: FakeServer) -> tuple[LocalSubscriber, list[bytes], list[int]]:
    got: list[bytes] = []
    codes: list[int] = []
    sub = LocalSubscriber(
        server,  # type: ignore[arg-type]
        got.append,
        lambda code, reason: codes.append(code),
        since=None,
        epoch=None,
    )
    server.broadcaster.clients.add(sub)  # type: ignore[arg-type]
    return sub, got, codes


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_replay_hold_overflow_closes_with_1013_and_counts() -> None:
    async def go() -> None:
        server = FakeServer(queue_size=3)
        sub, _got, codes = subscriber(server)
        for i in range(1, 5):
            sub.push_event(enc(i), b"")
        assert codes == [CLOSE_TRY_AGAIN]
        assert server.counters.dropped_slow == 1
        assert sub not in server.broadcaster.clients
        sub.push_event(enc(9), b"")  # closed: ignored
        assert codes == [CLOSE_TRY_AGAIN]

    run(go())


def test_replay_hold_byte_bound() -> None:
    async def go() -> None:
        server = FakeServer(max_queue_bytes=2 * len(enc(1)) + 60)
        sub, _got, codes = subscriber(server)
        for i in range(1, 4):
            sub.push_event(enc(i), b"")
        assert codes == [CLOSE_TRY_AGAIN]

    run(go())


def test_held_messages_go_live_in_order_and_a_tick_is_one_message() -> None:
    async def go() -> None:
        server = FakeServer()
        sub, got, _codes = subscriber(server)
        hb = heartbeat_message(1.0)
        sub.push_event(enc(1), b"")
        sub.send_control(hb)
        sub.push_event(enc(2), b"")
        assert got == []
        sub.go_live()
        server.broadcaster.flush_dirty()
        assert [orjson.loads(m)["type"] for m in got] == ["event", "heartbeat", "event"]
        got.clear()
        for i in range(3, 8):
            sub.push_event(enc(i), b"")
        server.broadcaster.flush_dirty()
        assert len(got) == 1
        msg = orjson.loads(got[0])
        assert msg["type"] == "batch" and [e["id"] for e in msg["data"]] == [3, 4, 5, 6, 7]
        assert sub.events_out == 7

    run(go())


def test_a_tick_past_its_byte_room_is_split_and_loses_nothing() -> None:
    async def go() -> None:
        server = FakeServer()
        server.max_message_bytes = 4096  # a tick holds ~40 of these events
        sub, got, _codes = subscriber(server)
        sub.go_live()
        for i in range(1, 501):
            sub.push_event(enc(i), b"")
        server.broadcaster.flush_dirty()
        ids = []
        for m in got:
            msg = orjson.loads(m)
            assert len(m) <= server.max_message_bytes
            ids += [e["id"] for e in msg["data"]] if msg["type"] == "batch" else [msg["data"]["id"]]
        assert ids == list(range(1, 501))
        assert len(got) > 1

    run(go())


def test_close_delivers_the_tick_then_final_then_the_code_once() -> None:
    async def go() -> None:
        server = FakeServer()
        sub, got, codes = subscriber(server)
        sub.go_live()
        sub.push_event(enc(1), b"")
        final = heartbeat_message(1.0)
        sub.start_close(CLOSE_GOING_AWAY, b"server stopping", final)
        sub.start_close(CLOSE_GOING_AWAY, b"again")
        assert [orjson.loads(m)["type"] for m in got] == ["event", "heartbeat"]
        assert codes == [CLOSE_GOING_AWAY]
        assert sub not in server.broadcaster.clients
        assert server.counters.closed_events_out == 1

    run(go())


def test_subscribe_replays_the_store_then_goes_live() -> None:
    async def go() -> None:
        server = FakeServer()
        await server.store.open()
        stored = await server.store.append(
            [{"source_app": "a", "session_id": "s", "hook_event_type": "X", "payload": {}}] * 3
        )
        server.broadcaster.broadcast_last = stored[-1].id
        got: list[bytes] = []
        sub = ServerEndpoint(server).subscribe(  # type: ignore[arg-type]
            got.append, lambda c, r: None, since=1, epoch=server.store.epoch
        )
        assert sub is not None and sub.writer_task is not None
        await sub.writer_task
        first = orjson.loads(got[0])
        assert first["type"] == "initial" and [e["id"] for e in first["data"]] == [2, 3]
        assert not sub.replaying
        server.running = False
        assert (
            ServerEndpoint(server).subscribe(  # type: ignore[arg-type]
                got.append, lambda c, r: None, since=None, epoch=None
            )
            is None
        )

    run(go())


def test_resolve_refuses_other_paths_and_schemes() -> None:
    assert resolve("ws://127.0.0.1:1/other", None) is None
    assert resolve("http://127.0.0.1:1/stream", None) is None
    assert resolve("ws://127.0.0.1/stream", None) is None
    assert resolve("ws://127.0.0.1:notaport/stream", None) is None
