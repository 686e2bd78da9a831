"""Replay and live traffic against stores that commit asynchronously, holes in the id
sequence, and stopping while events are still queued (found by an audit of the SQLite store:
the same races, made deterministic with small store subclasses)."""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from websockets.sync.client import connect

from wsnotebook.errors import StoreError
from wsnotebook.server import serve
from wsnotebook.store import MemoryStore, StoredEvent


def event(n: int) -> dict[str, Any]:
    return {"source_app": "a", "session_id": "s", "hook_event_type": "T", "payload": {"n": n}}


class GatedStore(MemoryStore):
    """Commits at once (``last_id`` moves) but returns only when the gate opens: like SQLite,
    whose commit callback runs a loop pass before the appending task broadcasts."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.committed = threading.Event()

    async def append(self, events: Any) -> list[StoredEvent]:
        stored = self.append_now(events)
        self.committed.set()
        if self.gate is not None:
            await self.gate.wait()
        return stored


def test_a_client_connecting_between_commit_and_broadcast_gets_each_event_once() -> None:
    store = GatedStore()
    srv = serve(port=0, store=store, heartbeat_interval=0)
    try:
        srv.publish([event(i) for i in range(3)])  # ids 1..3, broadcast
        loop = srv._loop
        assert loop is not None
        store.gate = asyncio.Event()
        assert srv.publish_nowait([event(i) for i in range(3, 5)]) == 2  # ids 4, 5: held
        assert store.committed.wait(10)
        with connect(f"{srv.url}?since=0&epoch={store.epoch}") as ws:
            initial = json.loads(ws.recv(timeout=10))
            loop.call_soon_threadsafe(store.gate.set)
            ids = [e["id"] for e in initial["data"]]
            while len(ids) < 5:
                msg = json.loads(ws.recv(timeout=10))
                if msg["type"] in ("event", "batch"):
                    data = msg["data"]
                    ids += [e["id"] for e in (data if isinstance(data, list) else [data])]
        assert initial["seq"] == 3  # the replay ends where the broadcast had got to
        assert ids == [1, 2, 3, 4, 5]  # 4 and 5 arrive live only, once
    finally:
        srv.stop()


class HoleStore(MemoryStore):
    """A store whose commit of one batch failed after its ids were taken (SQLite: 503, and
    "the sequence may skip them")."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_next = False

    async def append(self, events: Any) -> list[StoredEvent]:
        if self.fail_next:
            self.fail_next = False
            self._last += len(events)  # ids used up, nothing stored
            raise StoreError("commit failed")
        return self.append_now(events)


def test_ids_a_failed_commit_used_up_are_no_loss_for_a_resuming_client() -> None:
    store = HoleStore()
    srv = serve(port=0, store=store, heartbeat_interval=0)
    try:
        srv.publish([event(i) for i in range(5)])  # 1..5
        store.fail_next = True
        with pytest.raises(StoreError):
            srv.publish([event(i) for i in range(3)])  # 6..8 never stored
        assert srv.metrics()["errors"].get("store") == 1  # counted on the publish path too
        srv.publish([event(i) for i in range(3)])  # 9..11
        with connect(f"{srv.url}?since=5&epoch={store.epoch}") as ws:
            initial = json.loads(ws.recv(timeout=10))
        assert initial["reset"] is False  # not an eviction
        assert [e["id"] for e in initial["data"]] == [9, 10, 11]
    finally:
        srv.stop()


def test_events_publish_nowait_accepted_are_stored_by_a_graceful_stop() -> None:
    store = MemoryStore()
    srv = serve(port=0, store=store, heartbeat_interval=0)
    batch = [event(i) for i in range(1000)]
    accepted = sum(srv.publish_nowait(batch) for _ in range(60))  # a backlog of 60 slices
    srv.stop()  # right away: the loop is still draining
    assert accepted == 60_000 and store.last_id == 60_000
    assert srv.metrics()["errors"].get("publish_nowait") is None


class SlowCloseStore(MemoryStore):
    """Closing takes until the test releases it (SQLite: the writer thread finishing)."""

    def __init__(self) -> None:
        super().__init__()
        self.closing = threading.Event()
        self.release = threading.Event()

    async def close(self) -> None:
        self.closing.set()
        await asyncio.to_thread(self.release.wait, 30)


def test_a_second_stop_waits_until_the_first_has_closed_the_store() -> None:
    store = SlowCloseStore()
    srv = serve(port=0, store=store, heartbeat_interval=0)
    first = threading.Thread(target=srv.stop)
    first.start()
    assert store.closing.wait(10)
    second_done = threading.Event()
    second = threading.Thread(target=lambda: (srv.stop(), second_done.set()))
    second.start()
    # Returning now would tell the caller "stopped" while the store is still open.
    assert not second_done.wait(0.5)
    store.release.set()
    first.join(30)
    second.join(30)
    assert second_done.is_set() and not srv.running
