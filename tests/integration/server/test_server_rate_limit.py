"""Per-IP WebSocket handshake rate limit (``connect_rate`` / ``connect_burst``) on a live server,
and control messages held during a replay."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

import wsnotebook as wsn
from wsnotebook.errors import ConfigError
from wsnotebook.server import Server, serve


def handshake(url: str) -> int:
    try:
        with ws_connect(url, open_timeout=10):
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize(
    "options",
    [
        {"connect_rate": -1},
        {"connect_rate": float("nan")},
        {"connect_rate": 2_000_000},
        {"connect_rate": True},
        {"connect_rate": "50"},
        {"connect_burst": 0},
        {"connect_burst": 2.5},
    ],
)
def test_out_of_bounds_rate_limit_options_raise_config_error(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="connect_"):
        serve(port=0, **options)


def test_connect_rate_zero_disables_the_limit(server_factory: Callable[..., Server]) -> None:
    srv = server_factory(connect_rate=0, connect_burst=1)
    assert [handshake(srv.url) for _ in range(20)] == [101] * 20
    assert "429" not in srv.metrics()["rejected"]


def test_default_limit_lets_a_hundred_quick_handshakes_through(
    server_factory: Callable[..., Server],
) -> None:
    srv = server_factory()
    assert [handshake(srv.url) for _ in range(100)] == [101] * 100
    assert "429" not in srv.metrics()["rejected"]


def test_a_wsnotebook_client_refused_with_429_retries_and_gets_in(
    server_factory: Callable[..., Server], wait_until: Callable[..., Any]
) -> None:
    srv = server_factory(connect_rate=2.0, connect_burst=1)
    assert handshake(srv.url) == 101  # spends the only token
    client = wsn.connect(srv.url, backoff_base=0.05, backoff_cap=0.2, in_process=False)
    try:
        assert client.wait_state("open", 20)
        assert srv.metrics()["rejected"]["429"] >= 1
        assert client.metrics()["failed_attempts"] >= 1
        srv.publish({"source_app": "a", "session_id": "s", "hook_event_type": "t", "payload": {}})
        assert client.wait_for(1, timeout=15)
    finally:
        client.close()


def test_serve_with_another_connect_rate_on_the_same_port_needs_restart() -> None:
    port = free_port()
    srv = serve(port=port, connect_rate=10.0)
    try:
        assert serve(port=port, connect_rate=10.0) is srv
        with pytest.raises(ConfigError, match="connect_rate"):
            serve(port=port, connect_rate=20.0)
        srv2 = serve(port=port, connect_rate=20.0, restart=True)
        assert srv2 is not srv and srv2.connect_rate == 20.0
        srv = srv2
    finally:
        srv.stop()


def test_errors_and_live_events_during_a_replay_arrive_after_it_in_order(
    server_factory: Callable[..., Server], make_event: Callable[..., dict[str, Any]]
) -> None:
    srv = server_factory()
    for _ in range(10):
        srv.publish([make_event(payload={"p": "x" * 200})] * 1000)
    with ws_connect(srv.url + "?since=0", open_timeout=10, max_size=None) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "initial" and first["more"] is True
        ws.send('{"type":"probe-1"}')
        live = srv.publish(make_event())[0]["id"]  # after probe-1 was sent, before probe-2
        ws.send('{"type":"probe-2"}')
        order: list[Any] = []
        ids = [e["id"] for e in first["data"]]
        while len([o for o in order if isinstance(o, str)]) < 2:
            msg = json.loads(ws.recv(timeout=20))
            if msg["type"] == "batch":
                ids += [e["id"] for e in msg["data"]]
            elif msg["type"] == "event":
                ids.append(msg["data"]["id"])
                order.append(msg["data"]["id"])
            elif msg["type"] == "error":
                order.append(msg["data"]["message"].split("'")[1])
    assert ids == list(range(1, live + 1))
    assert order[-1] == "probe-2" and "probe-1" in order and live in order
