"""The client against the real wsnotebook server (loopback): resume across restarts, forced
disconnects, batching, compression, auth, heartbeats.  Bounded in count and time.

The exactly-once tests (restarts, forced disconnects) run on each of the client's three paths
(issue 20): JSON over the socket, the ``columns`` format over the socket (our client's default
there) and the in-process subscription (the default for a server of this process)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import wsnotebook.runtime.loop as _loop
from wsnotebook.client import Client, connect
from wsnotebook.errors import AuthError
from wsnotebook.server import Server, serve

pytestmark = pytest.mark.timeout(120)

FAST: dict[str, Any] = {"backoff_base": 0.005, "backoff_cap": 0.05, "open_timeout": 5.0}

#: The client's delivery paths, as ``connect()`` options.
PATHS: dict[str, dict[str, Any]] = {
    "json": {"in_process": False, "wire_format": "json"},
    "columns": {"in_process": False},
    "in_process": {"in_process": True},
}


def ev(i: int) -> dict[str, Any]:
    return {
        "source_app": "test",
        "session_id": f"s{i % 4}",
        "hook_event_type": "PreToolUse",
        "payload": {"i": i, "command": "ls -la /tmp && echo done " * 4},
        "summary": f"event {i}",
    }


def wait_until(pred: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = serve(port=0, heartbeat_interval=0.5)
    yield srv
    srv.stop()


def force_disconnect(client: Client, then: Callable[[], object] | None = None) -> bool:
    """Drop the client's connection at once.  Over a socket: abort its TCP connection from the
    client side (the peer sees no close frame).  In-process: the server ends the subscription
    with 1013 (its slow-consumer drop, the one way an in-process link ends early).  ``then``
    runs in the same loop callback, so before the client can even notice the drop."""
    done = threading.Event()
    result = []

    def abort() -> None:
        session = client._session
        link = session.local.link
        if link is not None:
            result.append(True)
            link.start_close(1013, b"test: forced drop")  # type: ignore[attr-defined]
        else:
            ws = session.ws
            result.append(ws is not None)
            if ws is not None:
                ws.transport.abort()
        if then is not None:
            then()
        done.set()

    _loop.call_soon(abort)
    done.wait(5)
    return bool(result and result[0])


def ids(client: Client) -> list[int]:
    return client.frame.df["id"].tolist()


def assert_took_path(client: Client, path: str) -> None:
    """The events came the way ``path`` says (not silently another path).  Call it after at
    least one live batch: replays arrive as ``initial`` and ``batch`` pages on every path, only
    live batches as ``columns``.  In-process: at least the first connection (a reconnect right
    after a server restart may meet the new server's socket before its in-process endpoint is
    registered, docs/design.md)."""
    local = client.metrics()["in_process"]
    df = client.traffic.df
    kinds = set(df[df["n_events"] > 0]["type"].astype(str))
    if path == "in_process":
        assert local["connects"] >= 1 and local["messages"] > 0
        if local["connects"] < client.connects:
            return  # a reconnect met the socket (see above), whose batches are columns
    else:
        assert local["connects"] == 0
    assert ("columns" in kinds) is (path == "columns"), kinds


def test_receives_initial_snapshot_and_live_events(server: Server, clients: list[Client]) -> None:
    server.publish([ev(i) for i in range(10)])
    c = connect(server.url, **FAST)
    clients.append(c)
    assert c.wait_for(10)
    server.publish([ev(i) for i in range(10, 25)])
    assert c.wait_for(25)
    assert ids(c) == list(range(1, 26))
    m = c.metrics()
    assert m["state"] == "open" and m["connects"] == 1
    assert m["epoch"] and m["last_id"] == 25
    assert c.frame.df["client_received"].notna().all()


@pytest.mark.parametrize("path", PATHS)
def test_restart_with_memory_store_records_a_gap_for_the_new_epoch(
    clients: list[Client], path: str
) -> None:
    srv = serve(port=0, heartbeat_interval=0.2)
    port = srv.port if hasattr(srv, "port") else int(srv.url.split(":")[2].split("/")[0])
    c = connect(srv.url, **FAST, **PATHS[path])
    clients.append(c)
    c.wait_state("open")
    stop = threading.Event()
    published: list[int] = []

    def producer(s: Server) -> None:
        while not stop.is_set():
            try:
                published.extend(e["id"] for e in s.publish([ev(0) for _ in range(5)]))
            except Exception:
                return  # the server is being killed mid-stream
            time.sleep(0.002)

    t = threading.Thread(target=producer, args=(srv,))
    t.start()
    wait_until(lambda: c.frame.total >= 100, what="100 events before the kill")
    srv.stop()  # mid-stream
    stop.set()
    t.join(10)
    old_received = c.frame.total
    assert old_received <= len(published)
    final_id = srv.store.last_id  # what the stopping server announced in its final heartbeat
    assert final_id >= len(published)

    srv2 = serve(port=port, heartbeat_interval=0.2)
    try:
        assert srv2.url == srv.url
        c.wait_state("open")
        wait_until(lambda: c.connects >= 2, what="reconnect")
        srv2.publish([ev(i) for i in range(50)])
        assert c.wait_for(old_received + 50)
        got = ids(c)
        # old epoch: a contiguous prefix received exactly once; new epoch: 1..50 exactly once
        assert got[:old_received] == list(range(1, old_received + 1))
        assert got[old_received:] == list(range(1, 51))
        # The graceful stop announced its final id, so the loss is known exactly: no gap when
        # everything had arrived, else exactly old_received+1..final_id.
        gaps = c.frame.gaps.to_dict("records")
        if final_id == old_received:
            assert gaps == []
        else:
            assert [(g["from_id"], g["to_id"]) for g in gaps] == [(old_received + 1, final_id)]
            assert "new epoch" in gaps[0]["reason"]
        assert_took_path(c, path)
    finally:
        srv2.stop()


@pytest.mark.parametrize("path", PATHS)
def test_restart_with_sqlite_store_resumes_without_loss_or_gap(
    tmp_path: Path, clients: list[Client], path: str
) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    srv = serve(port=0, store=store, heartbeat_interval=0.2, initial_limit=0)
    port = int(srv.url.split(":")[2].split("/")[0])
    c = connect(srv.url, **FAST, **PATHS[path])
    clients.append(c)
    c.wait_state("open")
    stop = threading.Event()
    published: list[int] = []

    def producer(s: Server) -> None:
        while not stop.is_set():
            try:
                published.extend(e["id"] for e in s.publish([ev(0) for _ in range(5)]))
            except Exception:
                return
            time.sleep(0.002)

    t = threading.Thread(target=producer, args=(srv,))
    t.start()
    wait_until(lambda: c.frame.total >= 100, what="100 events before the kill")
    srv.stop()
    stop.set()
    t.join(10)
    # while the client's port is down, 30 more events reach the store through another server:
    # only ?since= replay can deliver them (initial_limit=0: no snapshot fallback)
    side = serve(port=0, store=store, initial_limit=0)
    published.extend(e["id"] for e in side.publish([ev(i) for i in range(30)]))
    side.stop()
    n_old = len(published)

    srv2 = serve(port=port, store=store, heartbeat_interval=0.2, initial_limit=0)
    try:
        published.extend(e["id"] for e in srv2.publish([ev(i) for i in range(50)]))
        assert c.wait_for(len(published), timeout=20)
        got = ids(c)
        assert got == sorted(published) == list(range(1, n_old + 51))
        assert len(c.frame.gaps) == 0
        assert c.connects >= 2
        assert_took_path(c, path)
    finally:
        srv2.stop()


@pytest.mark.parametrize("path", PATHS)
def test_events_evicted_while_the_client_was_away_are_one_gap(
    clients: list[Client], path: str
) -> None:
    srv = serve(port=0, retain=50)
    try:
        c = connect(srv.url, **FAST, **PATHS[path])
        clients.append(c)
        c.wait_state("open")
        srv.publish([ev(i) for i in range(20)])
        assert c.wait_for(20)
        before = c.connects
        burst = [ev(i) for i in range(200)]  # ids 21..220; the store keeps 171..220
        tasks: list[asyncio.Future[list[dict[str, Any]]]] = []

        def publish_burst() -> None:
            # a task made in the dropping callback runs before the client's reconnect (which
            # first sees the drop, then sleeps its backoff): the client comes back after
            # ids 21..170 were evicted
            tasks.append(asyncio.ensure_future(srv.publish_async(burst)))

        assert force_disconnect(c, then=publish_burst)
        wait_until(lambda: c.connects > before and c.state == "open", what="reconnect")
        assert c.wait_for(70)
        assert len(tasks[0].result()) == 200
        assert ids(c) == list(range(1, 21)) + list(range(171, 221))
        gaps = c.frame.gaps.to_dict("records")
        assert [(g["from_id"], g["to_id"], g["reason"]) for g in gaps] == [(21, 170, "evicted")]
        assert_took_path(c, path)
    finally:
        srv.stop()


@pytest.mark.parametrize("path", PATHS)
def test_200_forced_disconnects_while_10k_events_flow_lose_and_duplicate_nothing(
    clients: list[Client], path: str
) -> None:
    # initial_limit=0: a reconnect that did not resume would get no snapshot at all, so only
    # ?since= replay can fill what was published while the client was away
    server = serve(port=0, initial_limit=0)
    c = connect(server.url, backoff_base=0.001, backoff_cap=0.01, open_timeout=5.0, **PATHS[path])
    clients.append(c)
    c.wait_state("open")
    total, rounds = 10_000, 200
    per_round = total // rounds
    drops = 0
    for r in range(rounds):
        server.publish([ev(r * per_round + i) for i in range(per_round)])
        before = c.connects
        assert force_disconnect(c)
        drops += 1
        # the next drop hits the next connection (events keep flowing meanwhile)
        wait_until(lambda b=before: c.connects > b and c.state == "open", what="reconnect")
    assert c.wait_for(total, timeout=60)
    got = ids(c)
    counts = Counter(got)
    duplicated = [i for i, n in counts.items() if n > 1]
    lost = sorted(set(range(1, total + 1)) - set(got))
    assert lost == [] and duplicated == []
    assert len(got) == total
    assert len(c.frame.gaps) == 0
    assert drops == rounds
    assert c.reconnects == rounds
    dropped = "close_1013" if path == "in_process" else "closed_abnormally"
    assert c.metrics()["errors"][dropped] == rounds
    if path == "in_process":  # the server kept running: every reconnect stayed in-process
        assert c.metrics()["in_process"]["connects"] == rounds + 1
    # most events came back through resume replays; one live batch shows the path's format
    server.publish([ev(total + i) for i in range(50)])
    assert c.wait_for(total + 50, timeout=20)
    assert_took_path(c, path)
    server.stop()


@pytest.mark.parametrize(
    ("batch", "interval_ms", "types"),
    [(None, None, {"event"}), (25, 20, {"batch"}), ("auto", None, {"event", "batch"})],
)
def test_batch_modes_deliver_everything_in_the_requested_message_types(
    server: Server,
    clients: list[Client],
    batch: Any,
    interval_ms: Any,
    types: set[str],
) -> None:
    # the JSON messages (the columns format has its own test: test_client_columns.py)
    c = connect(server.url, batch=batch, interval_ms=interval_ms, wire_format="json", **FAST)
    clients.append(c)
    c.wait_state("open")
    for k in range(10):
        server.publish([ev(k * 100 + i) for i in range(100)])
    assert c.wait_for(1000)
    assert ids(c) == list(range(1, 1001))
    df = c.traffic.df
    data = df[df["n_events"] > 0]
    live = set(data["type"].astype(str)) - {"initial"}
    assert live <= types
    if batch == 25:
        assert data[data["type"] == "batch"]["n_events"].max() <= 25
        assert live == {"batch"}
    if batch is None:
        assert (data[data["type"] == "event"]["n_events"] == 1).all()


def test_compression_request_is_harmless_when_the_server_declines_it(
    server: Server, clients: list[Client]
) -> None:
    c = connect(server.url, compression=True, **FAST)
    clients.append(c)
    c.wait_state("open")
    server.publish([ev(i) for i in range(20)])
    assert c.wait_for(20)
    m = c.metrics()
    if not m["deflate"]:  # the server chose not to negotiate permessage-deflate
        assert m["compression_ratio"] == pytest.approx(1.0)
    assert m["tcp_bytes_in"] > m["bytes_in_wire"] > 0


def test_bad_token_stops_with_auth_error_without_retrying(clients: list[Client]) -> None:
    srv = serve(port=0, token="right-token")
    try:
        c = connect(srv.url, token="wrong-token", **FAST)
        clients.append(c)
        assert c.wait_state("closed")
        assert isinstance(c.error, AuthError)
        assert c.attempts == 1 and c.connects == 0
        good = connect(srv.url, token="right-token", **FAST)
        clients.append(good)
        srv.publish(ev(1))
        assert good.wait_for(1)
    finally:
        srv.stop()


def test_heartbeats_track_server_seq_and_pings_measure_rtt(
    server: Server, clients: list[Client]
) -> None:
    # pings are a socket thing: no RTT in-process
    c = connect(server.url, ping_interval=0.1, ping_timeout=5.0, in_process=False, **FAST)
    clients.append(c)
    c.wait_state("open")
    server.publish([ev(i) for i in range(3)])
    assert c.wait_for(3)
    wait_until(lambda: c.metrics()["last_rtt_ms"] is not None, what="an RTT sample")
    wait_until(lambda: "heartbeat" in set(c.traffic.df["type"].astype(str)), what="a heartbeat")
    m = c.metrics()
    assert m["server_seq"] == 3
    assert m["last_rtt_ms"] > 0


def test_publish_over_the_socket_round_trips(server: Server, clients: list[Client]) -> None:
    c = connect(server.url, **FAST)
    clients.append(c)
    c.wait_state("open")
    c.publish([ev(1), ev(2)])
    assert c.wait_for(2)
    out = c.traffic.df
    assert out[out["direction"] == "out"]["n_events"].tolist() == [2]
    assert server.metrics()["events_in"] == 2
