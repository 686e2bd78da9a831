"""Events that validate but cannot be stored as sent, and messages that would outgrow a limit.

Every ingest path (POST bodies of one event or many, WebSocket ``publish``, ``Server.publish``
and ``publish_nowait``) refuses them with a clear error before anything is stored, and no
message the server sends is bigger than its own ``max_message_bytes``.
"""

from __future__ import annotations

import decimal
import gzip
import json
import logging
from typing import Any

import pytest
from websockets.sync.client import connect

from wsnotebook.errors import EventValidationError, LimitExceeded
from wsnotebook.server import Server

JSON = {"Content-Type": "application/json"}
# orjson reads 1024 levels of nesting but writes only 254: 300 passes decoding, fails encoding.
DEEP = '{"a":' * 300 + "1" + "}" * 300


def post(http_request: Any, srv: Server, body: bytes | str, **headers: str) -> Any:
    return http_request("POST", srv.http_url + "/events", body, {**JSON, **headers})


def test_post_of_an_event_too_deep_to_store_is_400_naming_the_field(
    server: Server, http_request: Any
) -> None:
    body = '{"source_app":"a","session_id":"s","hook_event_type":"T","payload":' + DEEP + "}"
    res = post(http_request, server, body)
    assert res.status == 400
    assert res.json()["error"] == "payload: cannot encode as JSON: Recursion limit reached"
    batch = f'[{{"source_app":"a","session_id":"s","hook_event_type":"T","payload":{{}}}},{body}]'
    res = post(http_request, server, batch)
    assert res.status == 400
    assert res.json()["error"].startswith("events[1].payload: cannot encode as JSON")
    assert server.store.last_id == 0  # nothing stored, no id used up
    assert server.metrics()["errors"] == {}


def test_an_event_over_max_event_bytes_is_413_inside_an_array_too(
    server_factory: Any, http_request: Any, make_event: Any
) -> None:
    srv = server_factory(max_event_bytes=2048, max_message_bytes=65536)
    big = make_event(payload={"blob": "x" * 4000})
    res = post(http_request, srv, json.dumps([make_event(), big]))
    assert res.status == 413
    assert res.json()["error"].startswith("events[1]: ")
    assert "exceeds the limit of 2048" in res.json()["error"]
    with pytest.raises(LimitExceeded, match="exceeds the limit of 2048"):
        srv.publish(big)
    assert srv.store.last_id == 0


def test_a_corrupt_compressed_body_is_400(
    server: Server, http_request: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        res = post(http_request, server, b"not gzip at all", **{"Content-Encoding": "gzip"})
        assert res.status == 400
        assert res.json()["error"] == "body: cannot decode Content-Encoding 'gzip'"
        assert res.headers.get("Connection", "").lower() == "close"
    # aiohttp used to drain the rest of the body after the reply and log the same decode error
    # as an "Unhandled exception" traceback (printed by `python -m wsnotebook serve`)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    good = gzip.compress(b'{"source_app":"a","session_id":"s","hook_event_type":"T","payload":{}}')
    assert post(http_request, server, good, **{"Content-Encoding": "gzip"}).status == 200
    assert server.metrics()["errors"] == {}


def test_websocket_publish_of_an_unstorable_event_gets_an_error_and_the_connection_goes_on(
    server: Server, make_event: Any
) -> None:
    with connect(server.url) as ws:
        json.loads(ws.recv(timeout=10))  # initial
        head = '{"type":"publish","data":{"source_app":"a","session_id":"s","hook_event_type":"T"'
        ws.send(head + ',"payload":' + DEEP + "}}")
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "error"
        assert reply["data"]["code"] == "invalid_event"
        assert reply["data"]["message"].startswith("payload: cannot encode as JSON")
        ws.send(json.dumps({"type": "publish", "data": make_event(n=1)}))
        event = json.loads(ws.recv(timeout=10))
        assert event["type"] == "event" and event["data"]["n"] == 1 and event["data"]["id"] == 1
    assert server.metrics()["errors"] == {"client_invalid_event": 1}


def test_publish_nowait_stores_the_events_as_they_were_when_handed_over(
    server: Server, make_event: Any, wait_until: Any
) -> None:
    event = make_event()
    for i in range(20):
        event["payload"] = {"n": i}  # the caller reuses its dict at once
        server.publish_nowait(event)
    event["source_app"] = ""  # would not validate any more
    assert wait_until(lambda: server.store.last_id == 20)
    stored = [s.event for s in server.store._ring.recent(20)]  # type: ignore[attr-defined]
    assert [e["payload"]["n"] for e in stored] == list(range(20))
    assert {e["source_app"] for e in stored} == {"app"}


def test_publish_nowait_refuses_an_unstorable_event_at_once_and_loses_no_other(
    server: Server, make_event: Any, wait_until: Any
) -> None:
    for i in range(50):
        server.publish_nowait(make_event(n=i))
    with pytest.raises(EventValidationError, match=r"^payload: cannot encode as JSON: .*Decimal"):
        server.publish_nowait(make_event(payload={"x": decimal.Decimal("1")}))
    with pytest.raises(EventValidationError, match=r"^events\[1\]\.payload: .*Recursion"):
        server.publish_nowait([make_event(), make_event(payload=json.loads(DEEP))])
    for i in range(50, 100):
        server.publish_nowait(make_event(n=i))
    assert wait_until(lambda: server.store.last_id == 100)
    assert server.metrics()["errors"] == {}


def test_str_subclass_fields_are_stored_as_their_text(server: Server, make_event: Any) -> None:
    import enum

    class App(str, enum.Enum):
        WEB = "web"

    stored = server.publish(make_event(source_app=App.WEB))
    assert stored[0]["source_app"] == "web"
    server.publish_nowait(make_event(source_app=App.WEB))
    assert server.metrics()["errors"] == {}


def big_events(srv: Server, n: int, size: int) -> None:
    for i in range(n):
        srv.publish({"source_app": "a", "session_id": "s", "hook_event_type": "T",
                     "payload": {"i": i, "blob": "x" * size}})  # fmt: skip


def test_initial_snapshot_keeps_the_newest_events_that_fit_in_one_message(
    server_factory: Any,
) -> None:
    srv = server_factory(max_event_bytes=16384, max_message_bytes=65536, initial_limit=300)
    big_events(srv, 20, 15000)
    with connect(srv.url, max_size=65536) as ws:  # a client held to the same limit
        raw = ws.recv(timeout=10)
    assert len(raw) <= 65536
    ids = [e["id"] for e in json.loads(raw)["data"]]
    assert len(ids) == 4 and ids == [17, 18, 19, 20]  # the newest, oldest first


def test_a_resume_replays_everything_in_messages_within_the_limit(server_factory: Any) -> None:
    srv = server_factory(max_event_bytes=16384, max_message_bytes=65536)
    big_events(srv, 20, 15000)
    seen: list[int] = []
    with connect(f"{srv.url}?since=0&epoch={srv.epoch}", max_size=65536) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "initial" and first["more"] is True
        seen += [e["id"] for e in first["data"]]
        while len(seen) < 20:
            raw = ws.recv(timeout=10)
            assert len(raw) <= 65536
            msg = json.loads(raw)
            assert msg["type"] == "batch"
            seen += [e["id"] for e in msg["data"]]
    assert seen == list(range(1, 21))


def test_fixed_size_batches_of_big_events_are_flushed_early(server_factory: Any) -> None:
    srv = server_factory(max_event_bytes=300_000, max_message_bytes=1 << 20)
    with connect(f"{srv.url}?batch=1000&interval_ms=60000", max_size=1 << 20) as ws:
        ws.recv(timeout=10)  # initial
        big_events(srv, 3, 200_000)
        msg = json.loads(ws.recv(timeout=10))  # 256 KiB reached: no waiting for 1000 or 60 s
        assert msg["type"] == "batch" and [e["id"] for e in msg["data"]] == [1, 2]


@pytest.mark.parametrize("query", ["batch=auto", "batch=1000&interval_ms=50", "batch=auto&deflate"])
@pytest.mark.parametrize("max_event_bytes", [2048, 1 << 20])
def test_live_batches_stay_within_max_message_bytes(
    server_factory: Any, query: str, max_event_bytes: int
) -> None:
    """A live batch used to be cut at 256 KiB whatever the limit: with an 8 KiB limit a client
    held to the same limit was closed with 1009.  With the default (larger) event limit the
    batches must still carry many events (a first fix sent one event per fixed batch)."""
    srv = server_factory(max_event_bytes=max_event_bytes, max_message_bytes=8192)
    deflate = query.endswith("&deflate")
    url = f"{srv.url}?{query.removesuffix('&deflate')}"
    with connect(url, max_size=8192, compression="deflate" if deflate else None) as ws:
        ws.recv(timeout=10)  # initial
        events = [
            {"source_app": "a", "session_id": "s", "hook_event_type": "T",
             "payload": {"i": i, "pad": "y" * (150 + i % 1700)}}
            for i in range(300)
        ]  # fmt: skip
        srv.publish(events)  # one ingest: all of them reach the client in the same tick
        seen: list[int] = []
        sizes: list[int] = []
        while len(seen) < 300:
            raw = ws.recv(timeout=10)
            sizes.append(len(raw))
            msg = json.loads(raw)
            seen += (
                [e["id"] for e in msg["data"]] if msg["type"] == "batch" else [msg["data"]["id"]]
            )
    assert seen == list(range(1, 301))
    assert max(sizes) <= 8192
    assert 1 < len(sizes) < 150  # batched (~1 KB events: ~7 per 8 KiB message), cut by bytes


def test_an_event_limit_beyond_what_fits_one_message_is_lowered_to_it(
    server_factory: Any, http_request: Any
) -> None:
    """max_event_bytes=4096 with max_message_bytes=1024 let a 3 KB event through, broadcast
    as a 3.2 KB frame that closed every client held to 1024 bytes for good."""
    srv = server_factory(max_event_bytes=4096, max_message_bytes=1024)
    assert srv.max_event_bytes == 1024 - 128 - 128
    event = {"source_app": "a", "session_id": "s", "hook_event_type": "T"}
    with connect(srv.url, max_size=1024) as ws:
        ws.recv(timeout=10)  # initial
        res = post(http_request, srv, json.dumps({**event, "payload": {"p": "x" * 3000}}))
        assert res.status == 413
        with pytest.raises(LimitExceeded):
            srv.publish({**event, "payload": {"p": "x" * 3000}})
        srv.publish({**event, "payload": {"p": "x" * 600}})  # fits: delivered, within the limit
        raw = ws.recv(timeout=10)
    assert len(raw) <= 1024 and json.loads(raw)["data"]["id"] == 1


def test_fixed_batches_keep_batching_under_a_1_mib_message_limit(server_factory: Any) -> None:
    """Review: with max_message_bytes=1 MiB (a common client limit) and the default event limit,
    a fixed batch of 100 small events went out as 100 one-event messages."""
    srv = server_factory(max_message_bytes=1 << 20)
    with connect(f"{srv.url}?batch=100&interval_ms=60000", max_size=1 << 20) as ws:
        ws.recv(timeout=10)  # initial
        srv.publish([
            {"source_app": "a", "session_id": "s", "hook_event_type": "T", "payload": {"i": i}}
            for i in range(100)
        ])  # fmt: skip
        msg = json.loads(ws.recv(timeout=10))
    assert msg["type"] == "batch" and len(msg["data"]) == 100
