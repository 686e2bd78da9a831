"""Questions and updates in the stores (no sockets): an update is a new log entry keeping the
event's id (``update_seq``), ``recent()`` shows each event once in its newest version while
``since()`` replays every version, ``latest()``/``questions()`` read the newest version;
SQLite keeps all of it across a reopen; a store without updates refuses them clearly."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _store_helpers import ev, ids

from wsnotebook.errors import LimitExceeded, StoreError
from wsnotebook.store import MemoryStore, SQLiteStore, Store
from wsnotebook.store.hitl import Questions, Versions, update_stored


def question(**fields: Any) -> dict[str, Any]:
    return ev(
        humanInTheLoop={"question": "ok?", "type": "permission", "responseWebSocketUrl": "ws://x"},
        humanInTheLoopStatus={"status": "pending"},
        **fields,
    )


async def scenario(store: Store) -> tuple[int, int]:
    stored = await store.append([ev(), question(), ev()])
    store.note_questions(stored)
    qid = stored[1].id
    event = await store.latest(qid)
    assert event is not None and event["humanInTheLoopStatus"] == {"status": "pending"}
    event["humanInTheLoopStatus"] = {"status": "responded", "respondedAt": 5}
    upd = await store.append_update(qid, event)
    assert upd.id == store.last_id == 4
    assert upd.event["id"] == qid and upd.event["update_seq"] == 4
    return qid, upd.id


def check_views(store: Store, qid: int) -> None:
    async def go() -> None:
        recent = await store.recent(10)
        assert ids(recent) == [1, 3, 4]  # the superseded pending version left out
        assert [s.event["id"] for s in recent] == [1, 3, qid]
        assert ids(await store.since(0, 10)) == [1, 2, 3, 4]  # a replay keeps every version
        latest = await store.latest(qid)
        assert latest is not None and latest["humanInTheLoopStatus"]["status"] == "responded"
        (q,) = await store.questions(10)
        assert q["id"] == qid and q["humanInTheLoopStatus"]["status"] == "responded"
        assert await store.latest(999) is None
        assert await store.latest(4) is None  # a sequence number is not an event id
        plain = await store.latest(1)
        assert plain is not None and "humanInTheLoop" not in plain

    asyncio.run(go())


def test_memory_store_updates() -> None:
    store = MemoryStore()
    qid, _ = asyncio.run(scenario(store))
    check_views(store, qid)


def test_sqlite_store_updates_survive_reopen(tmp_path: Any) -> None:
    path = tmp_path / "h.db"

    async def first() -> int:
        store = SQLiteStore(path)
        await store.open()
        try:
            qid, _ = await scenario(store)
            return qid
        finally:
            await store.close()

    qid = asyncio.run(first())

    async def reopen() -> None:
        store = SQLiteStore(path)
        await store.open()
        try:
            assert store.last_id == 4
            recent = await store.recent(10)
            assert ids(recent) == [1, 3, 4]
            latest = await store.latest(qid)
            assert latest is not None and latest["humanInTheLoopStatus"]["status"] == "responded"
            assert [q["id"] for q in await store.questions(10)] == [qid]
        finally:
            await store.close()

    asyncio.run(reopen())


def test_sqlite_questions_need_no_note(tmp_path: Any) -> None:
    """The schema's trigger indexes questions in the insert's own transaction."""

    async def go() -> None:
        store = SQLiteStore(tmp_path / "t.db")
        await store.open()
        try:
            await store.append([question(), ev(payload={"text": '"humanInTheLoop"'})])
            assert [q["id"] for q in await store.questions(10)] == [1]
        finally:
            await store.close()

    asyncio.run(go())


def test_update_size_is_bounded() -> None:
    store = MemoryStore()
    store.max_event_bytes = 1024
    stored = asyncio.run(store.append([question()]))
    with pytest.raises(LimitExceeded):
        asyncio.run(store.append_update(stored[0].id, question(payload={"x": "y" * 2000})))
    assert store.last_id == 1  # nothing appended


class Bare(Store):
    """A store implementing only the abstract interface (as a new backend starts)."""

    def __init__(self) -> None:
        self.inner = MemoryStore()
        self.kind = "bare"

    @property
    def last_id(self) -> int:
        return self.inner.last_id

    @property
    def first_id(self) -> int | None:
        return self.inner.first_id

    def __len__(self) -> int:
        return len(self.inner)

    async def append(self, events: Any) -> Any:
        return await self.inner.append(events)

    async def recent(self, limit: int, max_bytes: int | None = None) -> Any:
        return await self.inner.recent(limit, max_bytes)

    async def since(self, after_id: int, limit: int, max_bytes: int | None = None) -> Any:
        return await self.inner.since(after_id, limit, max_bytes)

    async def filter_options(self) -> dict[str, list[str]]:
        return await self.inner.filter_options()


def test_base_store_defaults() -> None:
    store = Bare()

    async def go() -> None:
        await store.append([question()])
        store.note_questions([])
        assert (await store.latest(1) or {})["id"] == 1
        assert await store.latest(2) is None
        assert await store.questions(10) == []
        with pytest.raises(StoreError, match="not supported"):
            await store.append_update(1, question())

    asyncio.run(go())
    assert store.themes is store.themes  # one in-memory theme repo per store


def test_versions_and_questions_bounds() -> None:
    v = Versions()
    v.record(5, 10)
    v.record(5, 12)
    assert v.superseded == {5, 10} and v.latest == {5: 12}
    items = [update_stored(s, 5, question()) for s in (10, 12)]
    assert ids(v.visible(items)) == [12]
    v.prune(100)  # below 1024 entries: kept
    assert v.latest == {5: 12}
    q = Questions(bound=2)
    for i in (1, 2, 3):
        q.put(i, update_stored(i, i, question()))
    assert sorted(q.items) == [2, 3]
    assert [s.id for s in q.newest(1)] == [3] and q.newest(0) == []
