"""SQLite store faults seen through a real server: a store instance served again, publishers
racing ``stop()``, and two servers pointed at one database file."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.sync.client import connect

from wsnotebook.errors import ServerError, StoreError
from wsnotebook.server import Server, serve
from wsnotebook.store import SQLiteStore

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stored_ids(path: Path) -> list[int]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM events ORDER BY id")]


def test_a_server_restarted_with_the_same_sqlite_store_serves_each_event_once(
    tmp_path: Path, http_request: Any, make_event: Callable[..., dict[str, Any]]
) -> None:
    store = SQLiteStore(tmp_path / "e.db")
    servers: list[Server] = []
    try:
        servers.append(serve(port=0, store=store, heartbeat_interval=0))
        servers[0].publish([make_event(n=i) for i in range(3)])
        port = servers[0].port
        servers.append(
            serve(port=port, store=store, heartbeat_interval=0, initial_limit=50, restart=True)
        )
        srv = servers[1]
        assert srv is not servers[0] and not servers[0].running
        res = http_request("GET", srv.http_url + "/events/recent?limit=100")
        assert [e["id"] for e in res.json()] == [1, 2, 3]
        assert srv.publish(make_event())[0]["id"] == 4
        res = http_request("GET", srv.http_url + "/events/recent?limit=100")
        assert [e["id"] for e in res.json()] == [1, 2, 3, 4]
        assert srv.metrics()["store"]["retained"] == 4
        srv.stop()
        servers.append(serve(port=0, store=store, heartbeat_interval=0))  # a third time
        srv = servers[2]
        with connect(f"{srv.url}?since=2&epoch={srv.epoch}", open_timeout=10) as ws:
            first = orjson.loads(ws.recv(timeout=10))
        assert first["type"] == "initial" and not first.get("reset")
        assert [e["id"] for e in first["data"]] == [3, 4]
    finally:
        for srv in servers:
            srv.stop()


def race_stop(
    db: Path, event: dict[str, Any], publishers: int = 16
) -> tuple[int, list[Any], list[int]]:
    """Publishers in a loop on a server over ``db``, then ``stop()``: how many publish() calls
    were still waiting 3 s later, the unexpected errors, and the acknowledged ids."""
    srv = serve(port=0, store=f"sqlite:///{db}", heartbeat_interval=0)
    acked: list[int] = []
    errors: list[BaseException] = []
    go = threading.Event()

    def publish() -> None:
        go.wait()
        while True:
            try:
                acked.append(srv.publish(event)[0]["id"])
            except (ServerError, StoreError):
                return
            except BaseException as exc:  # pragma: no cover - reported by the caller
                errors.append(exc)
                return

    threads = [threading.Thread(target=publish, daemon=True) for _ in range(publishers)]
    for t in threads:
        t.start()
    go.set()
    time.sleep(0.03)
    srv.stop()
    for t in threads:
        t.join(3)
    return sum(t.is_alive() for t in threads), errors, acked


def test_publishers_racing_stop_all_return_and_every_acknowledged_event_is_stored(
    tmp_path: Path, make_event: Callable[..., dict[str, Any]]
) -> None:
    """An append that reached the store after stop() had queued the writer's stop marker
    waited forever (publish() timed out after 30 s).  Now it fails at once as closed."""
    deadline = time.monotonic() + 5.0
    trial = 0
    while time.monotonic() < deadline:
        trial += 1
        db = tmp_path / f"e{trial}.db"
        blocked, errors, acked = race_stop(db, make_event())
        assert not blocked, f"trial {trial}: {blocked} publish() calls still waiting after stop()"
        assert not errors, errors
        assert set(acked) <= set(stored_ids(db)), f"trial {trial}: acknowledged, not stored"


def test_a_second_server_on_the_same_sqlite_file_is_refused_and_frees_its_port(
    tmp_path: Path,
    server_factory: Callable[..., Server],
    make_event: Callable[..., dict[str, Any]],
) -> None:
    url = f"sqlite:///{tmp_path / 'e.db'}"
    first = server_factory(store=url, heartbeat_interval=0)
    port = free_port()
    with pytest.raises(StoreError, match="is in use by another wsnotebook server"):
        serve(port=port, store=url, heartbeat_interval=0)
    with socket.socket() as sock:  # the refused server released its port
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
    assert first.publish(make_event())[0]["id"] == 1  # the first one is unaffected
    first.stop()
    again = server_factory(store=url, heartbeat_interval=0)  # free once the first stopped
    assert again.publish(make_event())[0]["id"] == 2
