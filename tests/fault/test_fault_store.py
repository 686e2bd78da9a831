"""A store that cannot work fails loudly: a clear error at ``serve()``, or — when the disk fills
while running — a 503 / StoreError for the rejected events, logged and counted, never a silent
loss, and the server keeps serving (and recovers once space is back)."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

import wsnotebook as wsn
from wsnotebook.errors import StoreError
from wsnotebook.store import SQLiteStore

pytestmark = pytest.mark.timeout(120)

EVENT = {"source_app": "a", "session_id": "s", "hook_event_type": "t", "payload": {"k": "v"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def post(url: str, body: Any) -> tuple[int, Any]:
    req = urllib.request.Request(
        url + "/events",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def assert_port_free(port: int) -> None:
    server = wsn.serve(port=port)  # binds again: the failed serve() released the port
    server.stop()


@pytest.mark.parametrize(
    "make_path",
    [
        pytest.param(lambda tmp: "/proc/wsnotebook-test/events.db", id="unwritable-dir"),
        pytest.param(lambda tmp: "/proc/wsnotebook-test.db", id="read-only-filesystem"),
        pytest.param(lambda tmp: str(tmp / "missing" / "events.db"), id="missing-dir"),
    ],
)
def test_unusable_sqlite_path_is_a_clear_error_at_serve(tmp_path, make_path, logs):
    path = make_path(tmp_path)
    port = free_port()
    with pytest.raises(StoreError) as info:
        wsn.serve(port=port, store=f"sqlite:///{path}")
    assert path in str(info.value)
    assert_port_free(port)


def test_corrupted_database_is_a_clear_error_at_serve(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database " * 500)
    with pytest.raises(StoreError, match="not a database"):
        wsn.serve(port=0, store=f"sqlite:///{garbage}")

    # a real database whose pages were overwritten in the middle
    db = tmp_path / "torn.db"
    server = wsn.serve(port=0, store=f"sqlite:///{db}")
    server.publish([{**EVENT, "payload": {"pad": "x" * 2000}}] * 500)
    server.stop()
    data = db.read_bytes()
    assert len(data) > 32 * 1024
    db.write_bytes(data[:4096] + b"\x13" * 8192 + data[12288:])
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    with pytest.raises(StoreError, match="malformed"):
        wsn.serve(port=0, store=f"sqlite:///{db}")


class TinyDisk(SQLiteStore):
    """An SQLite store whose database may not grow past ``pages`` pages (a full disk)."""

    def __init__(self, path: str, pages: int) -> None:
        super().__init__(path)
        self.pages = pages
        self.conns: list[sqlite3.Connection] = []

    def _connect(self) -> sqlite3.Connection:
        conn = super()._connect()
        conn.execute(f"PRAGMA max_page_count={self.pages}")
        self.conns.append(conn)
        return conn

    def grow(self) -> None:
        for conn in self.conns:
            conn.execute("PRAGMA max_page_count=1000000")


def test_disk_full_at_run_time_is_reported_counted_and_recoverable(tmp_path, logs):
    store = TinyDisk(str(tmp_path / "full.db"), pages=40)
    server = wsn.serve(port=0, store=store)
    client = wsn.connect(server.url)
    try:
        assert client.wait_state("open", 15)
        big = {**EVENT, "payload": {"pad": "y" * 3000}}
        accepted: list[int] = []
        status, body = 200, None
        for _ in range(200):
            status, body = post(server.http_url, big)
            if status != 200:
                break
            accepted.append(body["id"])
        assert status == 503, (status, body)
        assert "full" in body["error"]
        with pytest.raises(StoreError):
            server.publish(big)
        m = server.metrics()
        assert m["errors"].get("store", 0) >= 1
        assert m["store"]["commit_errors"] >= 2
        assert any("full" in r.getMessage() for r in logs.records if r.levelname == "ERROR")
        # every event the server acknowledged reached the subscriber; no rejected one did
        client.wait_for(len(accepted), timeout=15)
        assert client.frame.df["id"].tolist() == accepted
        # the server keeps serving reads, and accepts writes again once space is back
        with urllib.request.urlopen(server.http_url + "/events/recent?limit=5", timeout=10) as r:
            assert r.status == 200
        store.grow()
        status, body = post(server.http_url, EVENT)
        assert status == 200
        client.wait_for(len(accepted) + 1, timeout=15)
        assert client.frame.df["id"].tolist()[-1] == body["id"]
        assert not logs.unhandled(), logs.unhandled()
    finally:
        client.close()
        server.stop()


def test_store_failures_surface_as_store_error_from_the_store_api(tmp_path):
    """The sans-server path: appends to a full store raise StoreError and are counted."""

    async def main() -> tuple[int, int]:
        store = TinyDisk(str(tmp_path / "api.db"), pages=30)
        await store.open()
        ok = 0
        try:
            for _ in range(100):
                await store.append([{**EVENT, "payload": {"pad": "z" * 3000}}])
                ok += 1
        except StoreError:
            pass
        finally:
            await store.close()
        return ok, store.commit_errors

    ok, errors = asyncio.run(main())
    assert 0 < ok < 100 and errors == 1
