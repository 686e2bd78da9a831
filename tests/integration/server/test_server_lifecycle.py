"""serve()/stop() lifecycle: idempotence, restart, ports, leaks, SQLite restarts, security."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from typing import Any

import psutil
import pytest
from websockets.sync.client import connect

from wsnotebook.errors import (
    ConfigError,
    EventValidationError,
    PortInUseError,
    ServerError,
    StoreError,
)
from wsnotebook.runtime import loop as _loop
from wsnotebook.server import Server, running_servers, serve, stop_all
from wsnotebook.server import start as _server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_serve_is_idempotent_per_port_and_restart_is_explicit(server_factory: Any) -> None:
    port = free_port()
    first = server_factory(port=port)
    assert first.port == port and first.url == f"ws://127.0.0.1:{port}/stream"
    assert server_factory(port=port) is first
    with pytest.raises(ConfigError, match="retain"):
        server_factory(port=port, retain=5)
    assert first.running
    second = server_factory(port=port, retain=5, restart=True)
    assert second is not first and second.running and not first.running
    assert second.port == port and second in running_servers()


def test_port_taken_by_someone_else_raises_port_in_use() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUseError, match=str(port)) as info:
            serve(port=port)
        assert info.value.port == port


def test_stop_frees_the_port_and_is_idempotent(server_factory: Any) -> None:
    srv = server_factory()
    assert not port_is_free(srv.port)
    srv.stop()
    assert port_is_free(srv.port)
    srv.stop()
    with pytest.raises(ServerError, match="stopped"):
        srv.publish({"source_app": "a", "session_id": "s", "hook_event_type": "x", "payload": {}})


def test_twenty_start_stop_cycles_on_one_port_leak_nothing(make_event: Any) -> None:
    port = free_port()
    proc = psutil.Process()
    loop = _loop.get_loop()

    def tasks() -> int:
        async def count() -> int:
            return len(asyncio.all_tasks())

        return _loop.run(count())

    def cycle() -> None:
        srv = serve(port=port)
        with connect(srv.url) as ws:
            json.loads(ws.recv(timeout=5))
            srv.publish(make_event())
            json.loads(ws.recv(timeout=5))
        srv.stop()

    cycle()  # warm up lazily created pools
    threads, fds, before = threading.active_count(), proc.num_fds(), tasks()
    for _ in range(20):
        cycle()
    assert loop.is_running()
    assert threading.active_count() <= threads
    assert proc.num_fds() <= fds
    assert tasks() <= before
    assert port_is_free(port)


def test_sqlite_restart_keeps_history_epoch_and_id_sequence(
    tmp_path: Any, make_event: Any, http_request: Any
) -> None:
    url = f"sqlite:///{tmp_path / 'events.db'}"
    srv = serve(port=0, store=url)
    try:
        stored = srv.publish([make_event(n=i) for i in range(5)])
        assert [e["id"] for e in stored] == [1, 2, 3, 4, 5]
        epoch = srv.epoch
    finally:
        srv.stop()
    srv = serve(port=0, store=url)
    try:
        assert srv.epoch == epoch
        recent = http_request("GET", srv.http_url + "/events/recent").json()
        assert [e["n"] for e in recent] == [0, 1, 2, 3, 4]
        assert recent[0] == stored[0]
        assert srv.publish(make_event())[0]["id"] == 6
        with connect(f"{srv.url}?since=3&epoch={epoch}") as ws:
            initial = json.loads(ws.recv(timeout=5))
            assert initial["reset"] is False and [e["id"] for e in initial["data"]] == [4, 5, 6]
        opts = http_request("GET", srv.http_url + "/events/filter-options").json()
        assert opts["source_apps"] == ["app"]
    finally:
        srv.stop()


def test_concurrent_posts_to_sqlite_all_commit_and_ids_are_unique(
    tmp_path: Any, make_event: Any, http_request: Any
) -> None:
    srv = serve(port=0, store=f"sqlite:///{tmp_path / 'e.db'}")
    try:
        results: list[int] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(10):
                res = http_request(
                    "POST",
                    srv.http_url + "/events",
                    json.dumps(make_event()),
                    {"Content-Type": "application/json"},
                )
                with lock:
                    results.append(res.json()["id"])

        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results) == list(range(1, 81))
        assert srv.store.stats()["commits"] <= 80
    finally:
        srv.stop()


def test_unusable_sqlite_paths_raise_store_error_and_free_the_port(tmp_path: Any) -> None:
    port = free_port()
    with pytest.raises(StoreError, match="does not exist"):
        serve(port=port, store=f"sqlite:///{tmp_path / 'missing' / 'e.db'}")
    bad = tmp_path / "corrupt.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a database"):
        serve(port=port, store=f"sqlite:///{bad}")
    assert port_is_free(port)
    with pytest.raises(ConfigError, match="sqlite"):
        serve(port=port, store="postgres://x")


@pytest.mark.parametrize(
    "options",
    [
        {"port": 70000},
        {"queue_size": 0},
        {"max_connections": 0},
        {"initial_limit": -1},
        {"retain": 0},
        {"heartbeat_interval": -1},
        {"max_message_bytes": "big"},
        {"host": "0.0.0.0", "token": ""},
        {"host": "not..a..host", "token": "t"},  # IDNA refuses it: UnicodeError before
    ],
)
def test_invalid_options_raise_config_error(options: dict[str, Any]) -> None:
    options.setdefault("port", 0)
    with pytest.raises(ConfigError):
        serve(**options)
    assert not any(s.port == 0 for s in running_servers())


def test_non_loopback_host_without_token_generates_and_prints_one(
    monkeypatch: Any, capsys: Any, http_request: Any, caplog: Any
) -> None:
    # bound to 127.0.0.1 (tests never leave loopback) but treated as a network host
    monkeypatch.setattr(_server, "is_loopback", lambda host: False)
    srv = serve(port=0)
    try:
        assert srv.token and len(srv.token) >= 24
        out = capsys.readouterr().out
        assert out.count(srv.token) == 1
        assert srv.token not in caplog.text
        assert http_request("GET", srv.http_url + "/health").status == 401
        auth = {"Authorization": f"Bearer {srv.token}"}
        assert http_request("GET", srv.http_url + "/health", headers=auth).status == 200
    finally:
        srv.stop()


def test_publish_from_a_cell_validates_and_returns_stored_events(
    server: Server, make_event: Any
) -> None:
    out = server.publish(make_event(keep="me"))
    assert out[0]["id"] == 1 and out[0]["keep"] == "me" and "server_received" in out[0]
    with pytest.raises(EventValidationError, match="payload"):
        server.publish({"source_app": "a", "session_id": "s", "hook_event_type": "x"})
    m = server.metrics()
    for key in (
        "connections",
        "events_in",
        "events_out",
        "events_per_s",
        "bytes_out",
        "errors",
        "dropped_slow_clients",
        "queue_depth_max",
        "queue_depth_total",
        "rejected",
        "uptime_s",
    ):
        assert key in m
    assert m["events_in"] == 1 and m["events_per_s"] > 0


def test_stop_all_stops_every_running_server(server_factory: Any) -> None:
    a, b = server_factory(), server_factory()
    assert {a, b} <= set(running_servers())
    stop_all()
    assert not a.running and not b.running
    assert port_is_free(a.port) and port_is_free(b.port)
