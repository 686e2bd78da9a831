"""``connect(server.url, in_process=True)`` against a server of this process: the in-process path
is used (metrics), stores what a socket client stores, and falls back to the socket when the
URL, the token or the server does not allow it; plain ``connect(server.url)`` (``"auto"``) takes
it too, unless an option asks for what only a socket does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from wsnotebook.client import Client, connect
from wsnotebook.errors import AuthError
from wsnotebook.server import Server, serve

pytestmark = pytest.mark.timeout(120)

FAST = {"backoff_base": 0.005, "backoff_cap": 0.05, "open_timeout": 5.0}
COLUMNS = ["id", "source_app", "session_id", "hook_event_type", "payload", "summary", "timestamp"]


def ev(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "source_app": "test",
        "session_id": f"s{i % 4}",
        "hook_event_type": "PreToolUse",
        "payload": {"i": i, "text": "ünïcode ✓ " * (i % 3)},
        "summary": f"event {i}",
        **extra,
    }


def wait_until(pred: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = serve(port=0, heartbeat_interval=0.2)
    yield srv
    srv.stop()


def test_in_process_frame_equals_the_socket_clients(server: Server, clients: list[Client]) -> None:
    server.publish([ev(i) for i in range(120)])  # the initial snapshot
    local = connect(server.url, in_process=True, **FAST)
    sock = connect(server.url, in_process=False, **FAST)
    clients += [local, sock]
    local.wait_for(120, timeout=20)
    sock.wait_for(120, timeout=20)
    # live: single events, small and big batches, an unknown top-level field (dict path)
    server.publish(ev(1000))
    for k in range(20):
        server.publish([ev(2000 + 100 * k + j) for j in range(k * 7 + 1)])
    server.publish(ev(9999, extra_field={"kept": True}))
    total = 120 + 1 + sum(k * 7 + 1 for k in range(20)) + 1
    local.wait_for(total, timeout=20)
    sock.wait_for(total, timeout=20)
    a, b = local.frame.df, sock.frame.df
    assert a["id"].tolist() == list(range(1, total + 1))
    assert a[COLUMNS].equals(b[COLUMNS])
    assert a["extra_field"].dropna().tolist() == [{"kept": True}]
    m = local.metrics()
    assert m["in_process"]["active"] and m["in_process"]["connects"] == 1
    assert m["in_process"]["messages"] > 0
    assert m["tcp_bytes_in"] == 0 and m["tcp_bytes_out"] == 0
    assert sock.metrics()["in_process"]["connects"] == 0
    wait_until(lambda: local.metrics()["server_seq"] == total, what="a heartbeat's seq")
    srv = server.metrics()
    assert srv["connections"] == 2
    assert srv["events_out"] >= 2 * total
    local.close()
    wait_until(lambda: server.metrics()["connections"] == 1, what="the subscriber to leave")


def test_resume_with_since_replays_in_process(server: Server, clients: list[Client]) -> None:
    server.publish([ev(i) for i in range(50)])
    c = connect(server.url, in_process=True, since=20, **FAST)
    clients.append(c)
    c.wait_for(30, timeout=20)
    assert c.frame.df["id"].tolist() == list(range(21, 51))
    assert c.metrics()["in_process"]["connects"] == 1


def test_localhost_url_is_in_process_and_other_paths_are_not(
    server: Server, clients: list[Client]
) -> None:
    server.publish(ev(1))
    same = connect(f"ws://localhost:{server.port}/stream", in_process=True, **FAST)
    clients.append(same)
    same.wait_for(1, timeout=20)
    assert same.metrics()["in_process"]["connects"] == 1
    # in_process=False: the socket, always
    plain = connect(server.url, in_process=False, **FAST)
    clients.append(plain)
    plain.wait_for(1, timeout=20)
    assert plain.metrics()["in_process"]["connects"] == 0


def test_token_must_match_else_the_socket_path_decides(clients: list[Client]) -> None:
    srv = serve(port=0, token="s3cret")
    try:
        srv.publish(ev(1))
        good = connect(srv.url, token="s3cret", in_process=True, **FAST)
        in_url = connect(f"{srv.url}?token=s3cret", in_process=True, **FAST)
        clients += [good, in_url]
        good.wait_for(1, timeout=20)
        in_url.wait_for(1, timeout=20)
        assert good.metrics()["in_process"]["connects"] == 1
        assert in_url.metrics()["in_process"]["connects"] == 1
        bad = connect(srv.url, token="wrong", in_process=True, **FAST)
        clients.append(bad)
        assert not bad.wait_state("open", timeout=20)  # closed: the socket's 401 is fatal
        assert isinstance(bad.error, AuthError)
        assert bad.metrics()["in_process"]["connects"] == 0
    finally:
        srv.stop()


def test_no_server_in_this_process_takes_the_socket_path(clients: list[Client]) -> None:
    c = connect("ws://127.0.0.1:1/stream", in_process=True, max_attempts=1, **FAST)
    clients.append(c)
    assert not c.wait_state("open", timeout=20)
    assert c.metrics()["in_process"]["connects"] == 0
    assert c.metrics()["failed_attempts"] >= 1


def test_publish_in_process_is_handled_as_from_a_socket(
    server: Server, clients: list[Client]
) -> None:
    c = connect(server.url, in_process=True, **FAST)
    clients.append(c)
    c.wait_state("open")
    c.publish([ev(1), ev(2)])
    c.publish(ev(3))
    c.wait_for(3, timeout=20)
    assert c.frame.df["payload"].map(lambda p: p["i"]).tolist() == [1, 2, 3]
    assert server.metrics()["events_in"] == 3
    assert c.metrics()["in_process"]["active"]
    # a rejection comes back as an ``error`` message, as over a socket
    too_big = ev(4, payload={"x": "y" * (server.max_event_bytes + 10)})
    c.publish(too_big)
    wait_until(lambda: c.metrics()["server_errors"] == 1, what="the error reply")
    out = c.traffic.df
    assert (out[out["direction"] == "out"]["type"].astype(str) == "publish").sum() == 3


def test_a_plain_connect_to_this_process_server_is_in_process_unless_asked_otherwise(
    server: Server, clients: list[Client]
) -> None:
    server.publish([ev(i) for i in range(5)])
    plain = connect(server.url, **FAST)  # in_process="auto", the default
    fixed = connect(server.url, batch=0, **FAST)  # per-event messages: a socket's
    deflate = connect(server.url, compression=True, **FAST)
    clients += [plain, fixed, deflate]
    for c in (plain, fixed, deflate):
        c.wait_for(5, timeout=20)
    server.publish([ev(i) for i in range(5, 10)])
    for c in (plain, fixed, deflate):
        c.wait_for(10, timeout=20)
    assert plain.metrics()["in_process"]["active"] is True
    assert plain.metrics()["in_process"]["connects"] == 1
    for c in (fixed, deflate):
        assert c.metrics()["in_process"]["connects"] == 0
    assert deflate.metrics()["deflate"] is True  # negotiated on the socket
    # the same rows either way
    want = fixed.frame.df[COLUMNS].reset_index(drop=True)
    assert plain.frame.df[COLUMNS].reset_index(drop=True).equals(want)
