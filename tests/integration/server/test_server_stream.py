"""WebSocket /stream: seed messages, resume, batching, client messages, limits, slow clients."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from wsnotebook.server import Server


def recv_json(ws: ClientConnection, timeout: float = 10.0) -> Any:
    return json.loads(ws.recv(timeout=timeout))


def ids_of(msg: dict[str, Any]) -> list[int]:
    data = msg["data"]
    return [data["id"]] if msg["type"] == "event" else [e["id"] for e in data]


def collect_ids(ws: ClientConnection, count: int, timeout: float = 20.0) -> list[int]:
    """Read event/batch messages until ``count`` event ids arrived (ignores heartbeats)."""
    got: list[int] = []
    while len(got) < count:
        msg = recv_json(ws, timeout)
        if msg["type"] in ("event", "batch"):
            got.extend(ids_of(msg))
    return got


def close_code(ws: ClientConnection, timeout: float = 15.0) -> int | None:
    """Drain until the server closes; return the close code it sent."""
    try:
        while True:
            ws.recv(timeout=timeout)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd is not None else None


def test_seed_client_sees_exactly_initial_then_event(server: Server, make_event: Any) -> None:
    server.publish(make_event(n=0))
    with connect(server.url) as ws:
        initial = recv_json(ws)
        assert set(initial) == {"type", "data"}
        assert initial["type"] == "initial" and [e["n"] for e in initial["data"]] == [0]
        server.publish(make_event(n=1, extra_field="kept"))
        msg = recv_json(ws)
        assert set(msg) == {"type", "data"} and msg["type"] == "event"
        assert msg["data"]["id"] == 2 and msg["data"]["extra_field"] == "kept"


def test_initial_holds_the_latest_initial_limit_events_oldest_first(
    server_factory: Any, make_event: Any
) -> None:
    srv = server_factory(initial_limit=300)
    srv.publish([make_event(n=i) for i in range(350)])
    with connect(srv.url) as ws:
        assert ids_of(recv_json(ws)) == list(range(51, 351))
    with connect(srv.url + "?ext=1") as ws:
        initial = recv_json(ws)
        assert ids_of(initial) == list(range(51, 351))
        assert (initial["seq"], initial["epoch"]) == (350, srv.epoch)
        assert (initial["reset"], initial["more"]) == (False, False)


def test_resume_since_replays_only_newer_events(server: Server, make_event: Any) -> None:
    server.publish([make_event() for _ in range(8)])
    with connect(f"{server.url}?since=5&epoch={server.epoch}") as ws:
        initial = recv_json(ws)
        assert ids_of(initial) == [6, 7, 8]
        assert initial["reset"] is False and initial["seq"] == 8
        server.publish(make_event())
        assert ids_of(recv_json(ws)) == [9]


def test_resume_after_eviction_resets_and_replays_everything_retained(
    server_factory: Any, make_event: Any
) -> None:
    srv = server_factory(retain=10)
    srv.publish([make_event() for _ in range(30)])
    with connect(f"{srv.url}?since=3") as ws:
        initial = recv_json(ws)
        assert initial["reset"] is True and ids_of(initial) == list(range(21, 31))
    with connect(f"{srv.url}?since=19") as ws:  # 20 is evicted too
        assert recv_json(ws)["reset"] is True
    with connect(f"{srv.url}?since=20") as ws:  # nothing missing
        initial = recv_json(ws)
        assert initial["reset"] is False and ids_of(initial) == list(range(21, 31))


def test_resume_with_another_epoch_resets(server: Server, make_event: Any) -> None:
    server.publish([make_event() for _ in range(4)])
    with connect(f"{server.url}?since=2&epoch=not-this-one") as ws:
        initial = recv_json(ws)
        assert initial["reset"] is True and ids_of(initial) == [1, 2, 3, 4]
        assert initial["epoch"] == server.epoch
    with connect(f"{server.url}?since=99") as ws:  # a position this store never had
        assert recv_json(ws)["reset"] is True


def test_long_replay_sets_more_and_follows_with_batches_then_live(
    server: Server, make_event: Any
) -> None:
    server.publish([make_event() for _ in range(2500)])
    with connect(f"{server.url}?since=0") as ws:
        initial = recv_json(ws)
        assert initial["more"] is True and ids_of(initial) == list(range(1, 1001))
        first, second = recv_json(ws), recv_json(ws)
        assert first["type"] == second["type"] == "batch"
        assert ids_of(first) + ids_of(second) == list(range(1001, 2501))
        server.publish(make_event())
        assert ids_of(recv_json(ws)) == [2501]


def test_fixed_batching_flushes_on_size_and_on_interval(server: Server, make_event: Any) -> None:
    with connect(f"{server.url}?batch=4&interval_ms=60000") as ws:
        assert recv_json(ws)["type"] == "initial"
        server.publish([make_event() for _ in range(4)])
        msg = recv_json(ws)
        assert msg["type"] == "batch" and ids_of(msg) == [1, 2, 3, 4]
    with connect(f"{server.url}?batch=100&interval_ms=20") as ws:
        assert recv_json(ws)["type"] == "initial"
        server.publish([make_event() for _ in range(3)])
        msg = recv_json(ws)
        assert msg["type"] == "batch" and ids_of(msg) == [5, 6, 7]


def test_auto_batching_sends_events_singly_when_keeping_up_and_coalesces_when_behind(
    server: Server, make_event: Any, wait_until: Any
) -> None:
    # compression=None: deflate would shrink these repetitive frames ~15x, so the socket would
    # take far more of them before the queue builds (backpressure still holds, just later).
    with connect(f"{server.url}?batch=auto", max_queue=1, compression=None) as ws:
        assert recv_json(ws)["type"] == "initial"
        server.publish(make_event())
        assert recv_json(ws)["type"] == "event"
        # stop reading: the socket fills up, messages queue and must be coalesced
        published = 1
        for _ in range(200):
            server.publish([make_event(payload={"pad": "x" * 400}) for _ in range(500)])
            published += 500
            if server.metrics()["queue_depth_current_max"] > 20:
                break
        assert server.metrics()["queue_depth_current_max"] > 20
        kinds: list[str] = []
        got: list[int] = []
        while len(got) < published - 1:
            msg = recv_json(ws)
            kinds.append(msg["type"])
            got.extend(ids_of(msg))
        assert got == list(range(2, published + 1))
        # every publish here is a multi-event ingest: batched (per tick or from the queue)
        assert "batch" in kinds
    assert server.metrics()["dropped_slow_clients"] == 0


def test_slow_client_is_dropped_with_1013_while_others_get_everything(
    server_factory: Any, make_event: Any, caplog: pytest.LogCaptureFixture
) -> None:
    srv = server_factory(queue_size=64)
    with (
        caplog.at_level(logging.WARNING, logger="wsnotebook"),
        connect(srv.url, max_queue=1, compression=None) as slow,
    ):
        assert recv_json(slow)["type"] == "initial"
        fast_results = _run_with_fast_readers(srv, make_event)
        assert srv.metrics()["dropped_slow_clients"] == 1
        assert close_code(slow) == 1013
    # the log says which limit the message that did not fit would have passed
    assert re.search(
        r"dropping slow client .*send queue full: \d+ messages, \d+ bytes queued; "
        r"a \d+-byte message would exceed queue_size=64 or max_queue_bytes=\d+",
        caplog.text,
    )
    total = srv.store.last_id
    assert [sorted(r) for r in fast_results] == [list(range(1, total + 1))] * 2
    assert all(r == sorted(r) for r in fast_results)


def _run_with_fast_readers(srv: Server, make_event: Any) -> list[list[int]]:
    """Two reading clients while events are published until the slow client is dropped."""
    fast_results: list[list[int]] = []
    ready = threading.Barrier(3)
    total = {"n": 0}
    done = threading.Event()

    def fast_reader() -> None:
        with connect(srv.url, compression=None) as ws:
            recv_json(ws)
            ready.wait(10)
            got: list[int] = []
            while not (done.is_set() and len(got) >= total["n"]):
                try:
                    msg = recv_json(ws, timeout=0.5)
                except TimeoutError:
                    continue
                got.extend(ids_of(msg))
            fast_results.append(got)

    threads = [threading.Thread(target=fast_reader) for _ in range(2)]
    for t in threads:
        t.start()
    ready.wait(10)
    for _ in range(200):
        srv.publish([make_event(payload={"pad": "x" * 1000}) for _ in range(200)])
        total["n"] += 200
        if srv.metrics()["dropped_slow_clients"]:
            break
    srv.publish([make_event() for _ in range(10)])
    total["n"] += 10
    done.set()
    for t in threads:
        t.join(30)
    return fast_results


def test_hundred_clients_receive_every_event(server: Server, make_event: Any) -> None:
    n_clients, n_events = 100, 50

    async def main() -> list[list[int]]:
        conns = [await websockets.connect(server.url) for _ in range(n_clients)]
        try:
            for c in conns:
                assert json.loads(await c.recv())["type"] == "initial"
            await asyncio.to_thread(server.publish, [make_event() for _ in range(n_events)])

            async def read(c: Any) -> list[int]:
                got: list[int] = []
                while len(got) < n_events:
                    got.extend(ids_of(json.loads(await c.recv())))
                return got

            return await asyncio.wait_for(asyncio.gather(*(read(c) for c in conns)), 60)
        finally:
            await asyncio.gather(*(c.close() for c in conns))

    results = asyncio.run(main())
    assert results == [list(range(1, n_events + 1))] * n_clients


def test_too_many_connections_get_503(server_factory: Any) -> None:
    srv = server_factory(max_connections=2)
    with connect(srv.url) as a, connect(srv.url) as b:
        recv_json(a), recv_json(b)
        with pytest.raises(InvalidStatus) as info:
            connect(srv.url, open_timeout=5)
        assert info.value.response.status_code == 503
        assert b"too many connections" in info.value.response.body
    assert srv.metrics()["rejected"]["503"] == 1


def test_bad_stream_query_is_rejected_with_400(server: Server) -> None:
    for query in ("since=abc", "batch=-1", "batch=fast", "interval_ms=x", "format=xml"):
        with pytest.raises(InvalidStatus) as info:
            connect(f"{server.url}?{query}", open_timeout=5)
        assert info.value.response.status_code == 400


def test_client_publish_ingests_like_post(server: Server, make_event: Any) -> None:
    with connect(server.url) as pub, connect(server.url) as sub:
        recv_json(pub), recv_json(sub)
        pub.send(json.dumps({"type": "publish", "data": make_event(n=1)}))
        pub.send(json.dumps({"type": "publish", "data": [make_event(n=2), make_event(n=3)]}))
        pub.send(json.dumps({"type": "heartbeat"}))
        assert collect_ids(sub, 3) == [1, 2, 3]
        assert collect_ids(pub, 3) == [1, 2, 3]
    assert [e["n"] for e in [s.event for s in asyncio.run(server.store.recent(10))]] == [1, 2, 3]


def test_rejected_client_messages_get_error_codes_and_ten_in_a_row_close_1008(
    server_factory: Any, make_event: Any
) -> None:
    srv = server_factory(max_event_bytes=2048, max_batch_events=2)
    cases = [
        ("{nope", "invalid_json"),
        (json.dumps({"type": "subscribe"}), "unknown_type"),
        (json.dumps([1]), "unknown_type"),
        (json.dumps({"type": "publish"}), "invalid_event"),
        (json.dumps({"type": "publish", "data": {"source_app": "a"}}), "invalid_event"),
        (
            json.dumps({"type": "publish", "data": make_event(payload={"x": "y" * 3000})}),
            "too_large",
        ),
        (json.dumps({"type": "publish", "data": [make_event()] * 3}), "batch_too_large"),
    ]
    with connect(srv.url) as ws:
        recv_json(ws)
        for raw, code in cases:
            ws.send(raw)
            msg = recv_json(ws)
            assert msg["type"] == "error" and msg["data"]["code"] == code, raw
            assert msg["data"]["message"]
        ws.send(json.dumps({"type": "heartbeat"}))  # a good message resets the count
        for _ in range(9):
            ws.send("{nope")
            assert recv_json(ws)["data"]["code"] == "invalid_json"
        ws.send(json.dumps({"type": "publish", "data": make_event()}))
        assert recv_json(ws)["type"] == "event"
        for _ in range(10):
            ws.send("{nope")
        assert close_code(ws) == 1008
    assert srv.store.last_id == 1


def test_frame_larger_than_max_message_bytes_closes_1009(server_factory: Any) -> None:
    srv = server_factory(max_message_bytes=4096)
    with connect(srv.url) as ws:
        recv_json(ws)
        ws.send("x" * 5000)
        assert close_code(ws) == 1009


def test_extended_clients_get_heartbeats_and_seed_clients_do_not(
    server_factory: Any, make_event: Any
) -> None:
    srv = server_factory(heartbeat_interval=0.05)
    with connect(srv.url) as seed, connect(srv.url + "?ext=1") as ext:
        recv_json(seed), recv_json(ext)
        beats = [recv_json(ext) for _ in range(2)]
        assert all(b["type"] == "heartbeat" for b in beats)
        assert beats[0]["seq"] == 0 and beats[0]["epoch"] == srv.epoch
        assert isinstance(beats[0]["timestamp"], int)
        srv.publish(make_event())
        assert recv_json(seed)["type"] == "event"


def test_stop_closes_clients_with_1001(server_factory: Any) -> None:
    srv = server_factory()
    with connect(srv.url) as ws:
        recv_json(ws)
        srv.stop()
        assert close_code(ws) == 1001
    assert not srv.running


def test_events_published_right_after_a_paged_resume_arrive_exactly_once_in_id_order(
    server: Server, make_event: Any
) -> None:
    # 2500 stored events replay in 3 pages; the 500 published right after the handshake land
    # during that replay or just after it (the test cannot pin which): either way each event
    # arrives exactly once, in id order, and nothing is repeated afterwards.
    server.publish([make_event() for _ in range(2500)])
    with connect(f"{server.url}?since=0&batch=auto") as ws:
        for _ in range(5):
            server.publish([make_event() for _ in range(100)])
        initial = recv_json(ws)
        got = ids_of(initial) + collect_ids(ws, 3000 - len(ids_of(initial)))
        assert got == list(range(1, 3001))
        # a duplicate sent after the 3000th id would arrive before this sentinel
        server.publish(make_event())
        assert collect_ids(ws, 1) == [3001]


def test_invalid_utf8_in_a_text_frame_closes_1007_and_in_a_binary_frame_gets_invalid_json(
    server: Server, make_event: Any
) -> None:
    """TEXT frames reach the server as bytes (``decode_text=False``): invalid UTF-8 still
    closes with 1007 as when aiohttp decoded them, counted as ``ws_receive``; the same bytes in
    a BINARY frame get an ``invalid_json`` reply; a valid non-ASCII event is stored."""
    bad = b'{"type":"publish","data":{"source_app":"\xff"}}'
    good = {"type": "publish", "data": make_event(n=1, payload={"t": "\u00e9\u2028\U0001f600"})}
    before = server.metrics()["errors"].get("ws_receive", 0)
    with connect(server.url) as ws:
        recv_json(ws)
        ws.send(bad)  # binary
        assert recv_json(ws)["data"]["code"] == "invalid_json"
        ws.send(json.dumps(good, ensure_ascii=False))
        assert collect_ids(ws, 1) == [1]
        ws.send(bad, text=True)
        assert close_code(ws) == 1007
    assert server.metrics()["errors"].get("ws_receive", 0) == before + 1
    stored = asyncio.run(server.store.recent(10))
    assert [s.event["payload"] for s in stored] == [good["data"]["payload"]]
