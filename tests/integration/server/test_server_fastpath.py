"""Server hot paths: per-tick write coalescing, batch=auto per tick, publish_nowait."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from wsnotebook.errors import EventValidationError, LimitExceeded, ServerError
from wsnotebook.runtime import loop as _loop
from wsnotebook.server import Server
from wsnotebook.server import broadcast as broadcast_mod
from wsnotebook.server import connection as connection_mod
from wsnotebook.server import ingest as ingest_mod


def recv_json(ws: ClientConnection, timeout: float = 10.0) -> Any:
    return json.loads(ws.recv(timeout=timeout))


def ids_of(msg: dict[str, Any]) -> list[int]:
    data = msg["data"]
    return [data["id"]] if msg["type"] == "event" else [e["id"] for e in data]


def read_messages(ws: ClientConnection, events: int) -> list[dict[str, Any]]:
    """Event/batch messages until ``events`` events arrived (heartbeats ignored)."""
    out: list[dict[str, Any]] = []
    n = 0
    while n < events:
        msg = recv_json(ws)
        if msg["type"] in ("event", "batch"):
            out.append(msg)
            n += len(ids_of(msg))
    return out


def only_client(srv: Server, wait_until: Any) -> Any:
    wait_until(lambda: len(srv.broadcaster.clients) == 1)
    return next(iter(srv.broadcaster.clients))


@pytest.fixture
def blocked_loop() -> Iterator[Callable[[], threading.Event]]:
    """``block()`` stalls the background loop until the returned event is set (or 10 s)."""
    releases: list[threading.Event] = []

    def block() -> threading.Event:
        release, entered = threading.Event(), threading.Event()

        def hold() -> None:
            entered.set()
            release.wait(10)

        _loop.call_soon(hold)
        assert entered.wait(10)
        releases.append(release)
        return release

    yield block
    for r in releases:
        r.set()


def test_events_of_one_ingest_reach_a_per_event_client_in_one_socket_write(
    server: Server, make_event: Any, wait_until: Any
) -> None:
    with connect(server.url, compression=None) as ws:
        assert recv_json(ws)["type"] == "initial"
        client = only_client(server, wait_until)
        transport = client.transport
        writes: list[int] = []
        real_write = transport.write

        def counting_write(data: bytes) -> None:
            writes.append(len(data))
            real_write(data)

        transport.write = counting_write
        try:
            server.publish([make_event(n=i) for i in range(200)])
            msgs = read_messages(ws, 200)
        finally:
            del transport.write
    assert [m["type"] for m in msgs] == ["event"] * 200
    assert [m["data"]["n"] for m in msgs] == list(range(200))
    assert len(writes) == 1


def test_auto_client_gets_a_lone_event_singly_and_one_ticks_events_as_one_batch(
    server: Server, make_event: Any
) -> None:
    with (
        connect(f"{server.url}?batch=auto", compression=None) as auto,
        connect(f"{server.url}?batch=0", compression=None) as plain,
    ):
        assert recv_json(auto)["type"] == recv_json(plain)["type"] == "initial"
        server.publish(make_event())
        assert recv_json(auto)["type"] == "event"
        assert recv_json(plain)["type"] == "event"
        server.publish([make_event() for _ in range(50)])
        msg = recv_json(auto)
        assert msg["type"] == "batch" and ids_of(msg) == list(range(2, 52))
        per_event = read_messages(plain, 50)
        assert {m["type"] for m in per_event} == {"event"}
        assert [i for m in per_event for i in ids_of(m)] == list(range(2, 52))


def test_auto_client_batches_are_split_at_the_auto_batch_limit(
    server: Server, make_event: Any
) -> None:
    with connect(f"{server.url}?batch=auto", compression=None) as ws:
        assert recv_json(ws)["type"] == "initial"
        server.publish([make_event() for _ in range(2500)])
        msgs = read_messages(ws, 2500)
    sizes = [len(ids_of(m)) for m in msgs]
    assert max(sizes) <= connection_mod.AUTO_BATCH_MAX
    assert [i for m in msgs for i in ids_of(m)] == list(range(1, 2501))


def test_publish_nowait_events_from_another_thread_arrive_in_call_order(
    server: Server, make_event: Any, wait_until: Any
) -> None:
    with connect(f"{server.url}?batch=auto", compression=None) as ws:
        assert recv_json(ws)["type"] == "initial"
        accepted: list[int] = []

        def producer() -> None:
            for i in range(300):
                events = make_event(n=i) if i % 3 else [make_event(n=i)]
                accepted.append(server.publish_nowait(events))

        t = threading.Thread(target=producer)
        t.start()
        t.join(30)
        assert accepted == [1] * 300
        msgs = read_messages(ws, 300)
    got = [e["n"] for m in msgs for e in ([m["data"]] if m["type"] == "event" else m["data"])]
    assert got == list(range(300))
    wait_until(lambda: server.metrics()["publish_nowait_pending"] == 0)
    assert server.metrics()["events_in"] == 300


def test_publish_nowait_validates_in_the_callers_thread(server: Server, make_event: Any) -> None:
    with pytest.raises(EventValidationError, match="payload"):
        server.publish_nowait(make_event(payload="not an object"))
    with pytest.raises(EventValidationError, match=r"events\[1\]"):
        server.publish_nowait([make_event(), {"source_app": "x"}])
    with pytest.raises(LimitExceeded):
        server.publish_nowait([make_event()] * (server.max_batch_events + 1))
    assert server.publish([make_event()])[0]["id"] == 1  # nothing was stored before


def test_publish_nowait_refuses_beyond_the_pending_limit_and_counts_it(
    server: Server,
    make_event: Any,
    wait_until: Any,
    monkeypatch: pytest.MonkeyPatch,
    blocked_loop: Callable[[], threading.Event],
) -> None:
    monkeypatch.setattr(ingest_mod, "NOWAIT_MAX_PENDING", 5)
    release = blocked_loop()
    try:
        assert server.publish_nowait([make_event(n=i) for i in range(3)]) == 3
        assert server.publish_nowait([make_event(n=i) for i in range(3, 6)]) == 2
        assert server.publish_nowait(make_event(n=6)) == 0
    finally:
        release.set()
    wait_until(lambda: server.metrics()["events_in"] == 5)
    metrics = server.metrics()
    assert metrics["publish_nowait_refused"] == 2 and metrics["publish_nowait_pending"] == 0
    stored = server.publish(make_event(n=99))
    assert stored[0]["id"] == 6
    assert server.publish_nowait(make_event(n=100)) == 1  # room again


def test_publish_nowait_on_a_stopped_server_raises(server_factory: Any, make_event: Any) -> None:
    srv = server_factory()
    srv.stop()
    with pytest.raises(ServerError, match="stopped"):
        srv.publish_nowait(make_event())


def test_publish_nowait_with_sqlite_store_ingests_after_commit(
    server_factory: Any, make_event: Any, wait_until: Any, tmp_path: Any
) -> None:
    srv = server_factory(store=f"sqlite:///{tmp_path / 'ev.db'}")
    with connect(f"{srv.url}?ext=1", compression=None) as ws:
        assert recv_json(ws)["type"] == "initial"
        for i in range(20):
            assert srv.publish_nowait(make_event(n=i)) == 1
        msgs = read_messages(ws, 20)
    assert [i for m in msgs for i in ids_of(m)] == list(range(1, 21))
    wait_until(lambda: srv.metrics()["publish_nowait_pending"] == 0)


def test_control_messages_keep_their_place_between_tick_buffered_events(
    server_factory: Any, make_event: Any, blocked_loop: Callable[[], threading.Event]
) -> None:
    srv = server_factory(max_batch_events=2)
    with connect(srv.url, compression=None) as ws:
        assert recv_json(ws)["type"] == "initial"
        # Three messages handled in ONE loop tick: two events enter the tick buffer, the
        # invalid message's error reply must be written after them, then one more event.
        release = blocked_loop()
        try:
            ws.send(json.dumps({"type": "publish", "data": [make_event(), make_event()]}))
            ws.send(json.dumps({"type": "publish", "data": [make_event()] * 3}))
            ws.send(json.dumps({"type": "publish", "data": make_event()}))
        finally:
            release.set()
        kinds = [recv_json(ws)["type"] for _ in range(4)]
    assert kinds == ["event", "event", "error", "event"]


def test_publish_nowait_ingest_errors_are_logged_and_counted_not_raised(
    server_factory: Any, make_event: Any, wait_until: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from wsnotebook.errors import StoreError
    from wsnotebook.store import MemoryStore

    class BrokenStore(MemoryStore):
        async def append(self, events: Any) -> Any:
            raise StoreError("disk on fire")

    srv = server_factory(store=BrokenStore())
    assert srv.publish_nowait([make_event(), make_event()]) == 2
    wait_until(lambda: srv.metrics()["errors"].get("publish_nowait") == 1)
    assert srv.metrics()["publish_nowait_pending"] == 0
    assert "disk on fire" in caplog.text
    with pytest.raises(StoreError):
        srv.publish(make_event())  # the blocking path still raises to its caller


def test_compressed_auto_client_gets_a_big_ingest_as_batches_not_a_queue_overflow(
    server: Server, make_event: Any
) -> None:
    n = 10_000  # more events than the default send queue holds messages (4096)
    with connect(f"{server.url}?batch=auto") as ws:  # permessage-deflate negotiated
        assert recv_json(ws)["type"] == "initial"
        assert ws.protocol.extensions, "expected permessage-deflate"
        server.publish([make_event() for _ in range(n)])
        msgs = read_messages(ws, n)
    assert [i for m in msgs for i in ids_of(m)] == list(range(1, n + 1))
    assert len(msgs) <= n // connection_mod.AUTO_BATCH_MAX + 2
    assert server.metrics()["dropped_slow_clients"] == 0


def test_publish_nowait_flood_reaches_compressed_and_plain_auto_clients_without_drops(
    server: Server, make_event: Any
) -> None:
    n = 20_000
    with (
        connect(f"{server.url}?batch=auto") as deflated,
        connect(f"{server.url}?batch=auto", compression=None) as plain,
    ):
        assert recv_json(deflated)["type"] == recv_json(plain)["type"] == "initial"
        for start in range(0, n, 100):
            events = [make_event(n=i) for i in range(start, start + 100)]
            assert server.publish_nowait(events) == 100
        got_plain = [i for m in read_messages(plain, n) for i in ids_of(m)]
        got_deflated = [i for m in read_messages(deflated, n) for i in ids_of(m)]
    assert got_plain == got_deflated == list(range(1, n + 1))
    assert server.metrics()["dropped_slow_clients"] == 0


def test_ws_publish_size_limit_counts_utf8_bytes_not_characters(
    server_factory: Any, make_event: Any
) -> None:
    srv = server_factory(max_event_bytes=2048)
    with connect(srv.url, compression=None) as ws:
        assert recv_json(ws)["type"] == "initial"
        # ~1,600 characters but ~3,100 UTF-8 bytes: over the limit
        ws.send(
            json.dumps(
                {"type": "publish", "data": make_event(payload={"t": "é" * 1500})},
                ensure_ascii=False,
            )
        )
        msg = recv_json(ws)
        assert msg["type"] == "error" and msg["data"]["code"] == "too_large"
        assert "bytes exceeds the limit of 2048" in msg["data"]["message"]
        ws.send(
            json.dumps(
                {"type": "publish", "data": make_event(payload={"t": "é" * 500})},
                ensure_ascii=False,
            )
        )
        assert recv_json(ws)["type"] == "event"
    assert srv.store.last_id == 1


@pytest.fixture
def budget_under_pressure(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The background CPU budget reports pressure (as inside a kernel whose background work
    uses most of its budget) without throttling anything: a fresh budget, restored after."""
    budget = _loop.CpuBudget(fraction=1.0, switch_interval=None)
    monkeypatch.setattr(budget, "under_pressure", lambda: True)
    monkeypatch.setattr(_loop, "budget", budget)
    return budget


def test_under_budget_pressure_ticks_linger_and_reach_auto_clients_as_fewer_batches(
    server: Server, make_event: Any, budget_under_pressure: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A long linger so that five publishes always fall into it, however slow this machine.
    monkeypatch.setattr(broadcast_mod, "BUDGET_COALESCE", 0.5)
    with (
        connect(f"{server.url}?batch=auto", compression=None) as auto,
        connect(f"{server.url}?batch=0", compression=None) as plain,
    ):
        assert recv_json(auto)["type"] == recv_json(plain)["type"] == "initial"
        # Five publishes, each its own loop tick: without pressure that is five messages.
        for _ in range(5):
            server.publish([make_event(), make_event()])
        msgs = read_messages(auto, 10)
        per_event = read_messages(plain, 10)
    assert [i for m in msgs for i in ids_of(m)] == list(range(1, 11))
    assert len(msgs) < 5 and msgs[0]["type"] == "batch"
    assert [i for m in per_event for i in ids_of(m)] == list(range(1, 11))
    assert budget_under_pressure.coalesced >= 1
    assert _loop.budget_stats()["coalesced_ticks"] == budget_under_pressure.coalesced


def test_a_lingering_tick_is_written_before_a_control_message_and_at_stop(
    server_factory: Any, make_event: Any, budget_under_pressure: Any
) -> None:
    srv = server_factory(heartbeat_interval=60)
    with connect(f"{srv.url}?batch=auto", compression=None) as ws:
        assert recv_json(ws)["type"] == "initial"
        srv.publish([make_event(), make_event()])
        srv.stop()  # the final heartbeat must follow the lingering events, not overtake them
        kinds = []
        while True:
            msg = recv_json(ws)
            kinds.append(msg["type"])
            if msg["type"] == "heartbeat":
                break
    assert kinds == ["batch", "heartbeat"]
    assert msg.get("final") is True and msg["seq"] == 2


def test_an_auto_client_behind_by_more_single_events_than_queue_size_is_not_dropped(
    server_factory: Any, make_event: Any
) -> None:
    """``queue_size`` counts the messages the writer will send: for a ``batch=auto`` client a
    run of queued single events is one message (<= AUTO_BATCH_MAX events, <= 1 MiB)."""
    srv = server_factory(queue_size=64)
    pad = "x" * 4096  # 4000 events of ~4 KiB: far more than the loopback socket buffers hold
    with connect(f"{srv.url}?batch=auto", compression=None, max_queue=1) as ws:
        assert recv_json(ws)["type"] == "initial"
        for _ in range(4000):  # one ingest per event: each is queued as a single event
            srv.publish(make_event(payload={"pad": pad}))
        m = srv.metrics()
        assert m["dropped_slow_clients"] == 0
        assert m["queue_depth_max"] >= 2  # the socket did back up: events were queued
        msgs = read_messages(ws, 4000)
    assert [i for msg in msgs for i in ids_of(msg)] == list(range(1, 4001))
    assert max(len(ids_of(msg)) for msg in msgs) > 64
    # every message fits the 1 MiB default limit of this (websockets) client: it was read


def test_an_auto_client_run_holds_at_most_auto_batch_max_events(
    server_factory: Any, make_event: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_mod, "AUTO_BATCH_MAX", 7)
    srv = server_factory(queue_size=1000)
    pad = "x" * 4096
    with connect(f"{srv.url}?batch=auto", compression=None, max_queue=1) as ws:
        assert recv_json(ws)["type"] == "initial"
        for _ in range(3000):
            srv.publish(make_event(payload={"pad": pad}))
        assert srv.metrics()["queue_depth_max"] >= 2
        msgs = read_messages(ws, 3000)
    assert [i for msg in msgs for i in ids_of(msg)] == list(range(1, 3001))
    assert max(len(ids_of(msg)) for msg in msgs) == 7
