"""The client against a bare seed-style server and misbehaving peers (loopback, bounded)."""

from __future__ import annotations

import random
import time
from typing import Any

import orjson
import pytest
from _seed_server import SeedServer, SilentServer, free_port, make_event
from aiohttp import web

from wsnotebook.client import Client, close_all, connect, running_clients
from wsnotebook.errors import AuthError, ClientError, WaitTimeout
from wsnotebook.protocol import Backoff

pytestmark = pytest.mark.timeout(60)

FAST = {"backoff_base": 0.005, "backoff_cap": 0.05, "open_timeout": 5.0}


def wait_until(pred: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def ids(client: Client) -> list[int]:
    return client.frame.df["id"].tolist()


def test_seed_style_server_works_and_reconnects_with_dedupe(clients: list[Client]) -> None:
    with SeedServer() as srv:
        srv.publish([make_event(i) for i in range(5)])
        c = connect(srv.url, **FAST)
        clients.append(c)
        assert c.wait_for(5)
        srv.publish([make_event(i) for i in range(5, 10)])
        assert c.wait_for(10)
        assert srv.drop_clients() == 1
        wait_until(lambda: c.connects == 2, what="reconnect")
        srv.publish([make_event(i) for i in range(10, 12)])
        assert c.wait_for(12)
        assert ids(c) == list(range(1, 13))  # the replayed initial was deduped
        assert c.duplicates_skipped == 10
        assert len(c.frame.gaps) == 0
        # the seed server ignores our query; we still asked to resume
        assert "since=10" in srv.query_strings[-1]
        assert c.metrics()["epoch"] is None


def test_seed_server_restarted_empty_is_a_visible_gap(clients: list[Client]) -> None:
    port = free_port()
    srv = SeedServer(port).start()
    c = connect(srv.url, **FAST)
    clients.append(c)
    c.wait_state("open")
    srv.publish([make_event(i) for i in range(4)])
    assert c.wait_for(4)
    srv.stop()
    with SeedServer(port) as srv2:
        srv2.publish([make_event(i) for i in range(2)])
        assert c.wait_for(6)
        assert ids(c) == [1, 2, 3, 4, 1, 2]
        assert c.frame.gaps["from_id"].tolist() == [5]


def test_http_401_stops_with_auth_error_without_retry(clients: list[Client]) -> None:
    with SeedServer(token="t0ken") as srv:
        c = connect(srv.url, token="nope", **FAST)
        clients.append(c)
        assert c.wait_state("closed")
        assert isinstance(c.error, AuthError)
        assert "401" in str(c.error)
        assert c._future is not None and c._future.result(5) is None  # run loop ended
        assert srv.handshakes_refused == 1 and c.attempts == 1
        assert c not in running_clients()


def test_unknown_path_stops_with_client_error(clients: list[Client]) -> None:
    with SeedServer() as srv:
        c = connect(srv.url.replace("/stream", "/nope"), **FAST)
        clients.append(c)
        assert c.wait_state("closed")
        assert isinstance(c.error, ClientError) and "404" in str(c.error)


def test_handshake_that_never_answers_times_out_and_gives_up(clients: list[Client]) -> None:
    with SilentServer() as srv:
        c = connect(srv.url, open_timeout=0.2, max_attempts=2, **{"backoff_base": 0.01})
        clients.append(c)
        assert c.wait_state("closed", timeout=20)
        assert isinstance(c.error, ClientError)
        assert "gave up after 2 retries" in str(c.error)
        assert c.errors["timeout"] == 3
        assert len(srv.accepted) == 3
        assert c.connects == 0


def test_peer_that_stops_answering_pings_is_dropped_and_reconnected(
    clients: list[Client],
) -> None:
    with SeedServer(autoping=False) as srv:
        c = connect(srv.url, ping_interval=0.1, ping_timeout=0.2, close_timeout=0.2, **FAST)
        clients.append(c)
        wait_until(lambda: srv.connections >= 2, what="a reconnect after a ping timeout")
        assert c.errors.get("ping_timeout", 0) >= 1
        assert c.state in ("open", "reconnecting", "connecting")
        assert c.error is None


def test_garbage_from_the_server_is_counted_and_the_stream_continues(
    clients: list[Client],
) -> None:
    async def garbage(srv: SeedServer, ws: web.WebSocketResponse) -> None:
        await ws.send_str("{not json")
        await ws.send_bytes(b"\x00\xff binary junk")
        await ws.send_str('{"type": "mystery", "data": 1}')
        await ws.send_str('{"type": "event", "data": {"id": 1, "payload": "nope"}}')
        await ws.send_str('"just a string"')
        good = dict(make_event(0), id=7)
        await ws.send_str(orjson.dumps({"type": "event", "data": good}).decode())

    with SeedServer(script=garbage) as srv:
        c = connect(srv.url, **FAST)
        clients.append(c)
        assert c.wait_for(1)
        m = c.metrics()
        assert m["decode_failures"] == 3
        assert m["unknown_messages"] == 1
        assert m["invalid_events"] == 1
        assert m["state"] == "open" and m["connects"] == 1
        assert ids(c) == [7]


@pytest.mark.parametrize(
    ("code", "fatal"), [(1008, True), (1003, True), (1011, False), (1001, False), (1013, False)]
)
def test_close_codes_stop_or_reconnect(clients: list[Client], code: int, fatal: bool) -> None:
    async def close_with_code(srv: SeedServer, ws: web.WebSocketResponse) -> None:
        await ws.close(code=code, message=b"test close")

    with SeedServer(script=close_with_code) as srv:
        c = connect(srv.url, **FAST)
        clients.append(c)
        if fatal:
            assert c.wait_state("closed")
            assert isinstance(c.error, AuthError if code == 1008 else ClientError)
            assert str(code) in str(c.error)
            assert srv.connections == 1
        else:
            wait_until(lambda: srv.connections >= 3, what="repeated reconnects")
            assert c.errors[f"close_{code}"] >= 2
            assert c.error is None


def test_refused_port_retries_on_the_seeded_backoff_schedule(clients: list[Client]) -> None:
    kw = {"backoff_base": 0.02, "backoff_factor": 2.0, "backoff_cap": 0.08}
    c = connect(f"ws://127.0.0.1:{free_port()}/stream", max_attempts=5, rng=random.Random(5), **kw)
    clients.append(c)
    assert c.wait_state("closed", timeout=20)
    assert c.errors["refused"] == 6
    ref = Backoff(base=0.02, factor=2.0, cap=0.08, rng=random.Random(5), clock=time.monotonic)
    assert list(c.delays) == [ref.next_delay() for _ in range(5)]
    assert "gave up after 5 retries" in str(c.error)


@pytest.mark.parametrize("compression", [True, False])
def test_wire_bytes_reflect_permessage_deflate(clients: list[Client], compression: bool) -> None:
    with SeedServer() as srv:  # aiohttp negotiates deflate when the client offers it
        c = connect(srv.url, compression=compression, **FAST)
        clients.append(c)
        c.wait_state("open")
        srv.publish([make_event(i, note="repetitive text " * 20) for i in range(200)])
        assert c.wait_for(200)
        m = c.metrics()
        assert m["deflate"] is compression
        if compression:
            assert m["compression_ratio"] < 0.5
        else:
            assert m["compression_ratio"] == pytest.approx(1.0)
        st = c.traffic.stats()["in"]
        assert st["events"] == 200 and st["messages"] == 201  # initial + one per event
        assert m["tcp_bytes_in"] > m["bytes_in_wire"]


def test_wait_for_times_out_and_close_all_cancels_the_backoff_sleep(
    clients: list[Client],
) -> None:
    class Longest(random.Random):  # full jitter always draws its ceiling: a one-hour sleep
        def uniform(self, a: float, b: float) -> float:
            return b

    c = connect(
        f"ws://127.0.0.1:{free_port()}/stream",
        backoff_base=3600.0,
        backoff_cap=3600.0,
        rng=Longest(),
    )
    clients.append(c)
    with pytest.raises(WaitTimeout):
        c.wait_for(1, timeout=0.2)
    assert c.wait_state("reconnecting")
    assert list(c.delays) == [3600.0]  # refused once, now in its hour-long backoff sleep
    assert c in running_clients()
    assert close_all() >= 1
    # close() waits at most 5 s for the run task: it ended only if the sleep was cancelled.
    assert c._future is not None and c._future.done()
    assert c.state == "closed"
    assert c.wait_for(1, timeout=1) is False  # closed: returns instead of waiting
    assert c.error is None  # closed by the user, not failed


def test_invalid_url_raises_at_connect() -> None:
    with pytest.raises(ClientError):
        connect("ftp://127.0.0.1/stream")


def test_async_api_runs_the_client_on_the_background_loop() -> None:
    import asyncio

    from wsnotebook.client import connect_async

    with SeedServer() as srv:
        srv.publish([make_event(i) for i in range(3)])

        async def main() -> tuple[bool, str]:
            c = await connect_async(srv.url, **FAST)
            reached = await c.wait_for_async(3)
            await c.aclose()
            return reached, c.state

        assert asyncio.run(main()) == (True, "closed")


def test_batches_from_another_server_are_stored_like_single_events(
    clients: list[Client],
) -> None:
    # Another server may send our batch prefix with escaped or spaced payload text; only a
    # wsnotebook server (handshake header X-Wsnotebook) gets the columnar path, which keeps
    # payload text as sent, so this one's rows must read as the dict path stores them.
    head = b'{"id":%d,"source_app":"a","session_id":"s","hook_event_type":"T","payload":'
    body = b",".join(head % i + b'{"w": "caf\\u00e9", "n": %d}}' % i for i in range(1, 201))

    async def spaced(srv: SeedServer, ws: web.WebSocketResponse) -> None:
        await ws.send_bytes(b'{"type":"batch","data":[' + body + b"]}")

    with SeedServer(script=spaced) as srv:
        c = connect(srv.url, **FAST)
        clients.append(c)
        assert c.wait_for(200)
        assert c._sink.columnar is False
        assert len(c.frame.filter(search='"w":"café"', limit=None)) == 200
        assert c.frame.snapshot(payload="json")["payload"].iloc[0] == '{"w":"café","n":1}'


def test_a_wsnotebook_server_names_itself_so_its_batches_take_the_columnar_path(
    clients: list[Client],
) -> None:
    import wsnotebook as wsn

    srv = wsn.serve(port=0)
    try:
        c = connect(srv.url, **FAST)
        clients.append(c)
        assert c.wait_state("open")
        assert c._sink.columnar is True
    finally:
        srv.stop()
