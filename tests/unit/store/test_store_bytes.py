"""Stores bounded in bytes as well as count (issue 23, finding 2): ``retain_bytes`` for the
memory ring and the SQLite store's cache, the byte accounting (add, evict, reopen), reads that
stop at ``max_bytes``, and the option's bounds."""

from __future__ import annotations

import asyncio
import sqlite3
import tracemalloc
from typing import Any

import pytest
from _store_helpers import ev, ids

from wsnotebook.errors import ConfigError
from wsnotebook.server.options import ServerOptions
from wsnotebook.store import (
    DEFAULT_RETAIN_BYTES,
    MAX_RETAIN_BYTES,
    MIN_RETAIN_BYTES,
    MemoryStore,
    SQLiteStore,
    open_store,
)
from wsnotebook.store.base import fit_budget
from wsnotebook.store.memory import FOLD_BYTES

KB = "x" * 1000  # a payload that makes an event ~1.1 KB of JSON


def big(i: int, app: str = "app") -> dict[str, Any]:
    return ev(n=i, source_app=app, payload={"blob": KB})


def held(stored: list[Any]) -> int:
    return sum(len(s.encoded) for s in stored)


def test_fit_budget_counts_a_separator_per_event_and_keeps_at_least_one() -> None:
    assert fit_budget([], 10) == 0
    assert fit_budget([4, 4, 4], 10) == 2  # 5 + 5 fit, the third would make 15
    assert fit_budget([4, 4], 10) == 2
    assert fit_budget([50, 1], 10) == 1  # a single event is never held back
    assert fit_budget(iter([3] * 1000), 40) == 10  # stops early on an iterator


def test_memory_store_evicts_the_oldest_until_under_retain_bytes() -> None:
    async def run() -> None:
        store = MemoryStore(retain=1000, retain_bytes=10_000)
        out = []
        for i in range(30):
            out += await store.append([big(i)])
        size = len(out[0].encoded)
        assert 1000 < size < 1200
        assert store.retained_bytes <= 10_000
        kept = await store.recent(1000)
        assert store.retained_bytes == held(kept)  # the counter is exact
        assert len(store) == len(kept) < 30
        # as many as fit: the next older one would have passed the budget
        assert store.retained_bytes + len(out[-len(kept) - 1].encoded) > 10_000
        assert ids(kept) == list(range(31 - len(kept), 31))  # the newest, oldest first
        assert store.first_id == kept[0].id  # eviction recorded as for count: first_id moved
        assert store.last_id == 30
        stats = store.stats()
        assert stats["retained_bytes"] == store.retained_bytes
        assert stats["retain_bytes"] == 10_000
        assert stats["evicted_by_bytes"] == 30 - len(kept)
        # a batch larger than the budget keeps its newest events only
        await store.append([big(i) for i in range(100, 120)])
        assert store.retained_bytes <= 10_000
        assert ids(await store.recent(1000))[-1] == 50

    asyncio.run(run())


def test_memory_store_byte_count_follows_count_eviction_too() -> None:
    async def run() -> None:
        store = MemoryStore(retain=5, retain_bytes=DEFAULT_RETAIN_BYTES)
        for i in range(12):
            await store.append([ev(n=i, payload={"pad": "y" * i})])
        kept = await store.recent(100)
        assert ids(kept) == [8, 9, 10, 11, 12]
        assert store.retained_bytes == held(kept)
        assert store.stats()["evicted_by_bytes"] == 0

    asyncio.run(run())


def test_memory_store_keeps_the_newest_event_even_when_it_alone_passes_the_budget() -> None:
    async def run() -> None:
        store = MemoryStore(retain_bytes=MIN_RETAIN_BYTES)
        await store.append([ev(n=1)])
        await store.append([big(2)])  # ~1.1 KB > 1 KiB budget
        assert ids(await store.recent(10)) == [2]
        assert store.first_id == 2
        await store.append([ev(n=3)])  # the big one goes once a newer event arrives
        assert ids(await store.recent(10)) == [3]
        assert store.retained_bytes == held(await store.recent(10)) <= MIN_RETAIN_BYTES

    asyncio.run(run())


def test_memory_store_frees_evicted_big_events_before_the_facet_fold() -> None:
    """Evicted events used to wait for the facet fold (every 4096 events): 4096 events of
    1 MB each stayed alive past the budget (RSS grew ~1 MB per POST whatever retain_bytes)."""
    mb = "z" * (1 << 20)

    async def run() -> int:
        store = MemoryStore(retain_bytes=4 * (1 << 20))
        tracemalloc.start()
        try:
            for i in range(60):
                await store.append([ev(n=i, payload={"blob": mb})])
            current, _ = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert store.retained_bytes <= 4 * (1 << 20)
        return current

    held_now = asyncio.run(run())
    assert held_now < 4 * (1 << 20) + FOLD_BYTES + 4 * (1 << 20)  # was ~60 MiB


def test_memory_store_facets_forget_values_evicted_for_bytes() -> None:
    async def run() -> None:
        store = MemoryStore(retain_bytes=5_000)
        await store.append([big(0, app="gone")])
        await store.append([big(i, app="kept") for i in range(1, 10)])
        assert (await store.filter_options())["source_apps"] == ["kept"]

    asyncio.run(run())


def test_memory_reads_stop_at_max_bytes() -> None:
    async def run() -> None:
        store = MemoryStore()
        stored = await store.append([big(i) for i in range(10)])
        cost = [len(s.encoded) + 1 for s in stored]  # stamps vary a little in length
        recent = await store.recent(10, max_bytes=sum(cost[7:]))
        assert ids(recent) == [8, 9, 10]  # the newest that fit, oldest first
        assert ids(await store.recent(10, max_bytes=sum(cost[7:]) - 1)) == [9, 10]
        assert ids(await store.recent(2, max_bytes=sum(cost[7:]))) == [9, 10]  # limit applies
        assert ids(await store.recent(10, max_bytes=1)) == [10]  # at least one
        assert ids(await store.since(2, 100, max_bytes=sum(cost[2:4]))) == [3, 4]  # the oldest
        assert ids(await store.since(9, 100, max_bytes=1)) == [10]
        assert await store.since(10, 100, max_bytes=1) == []
        assert await store.recent(0, max_bytes=10**9) == []

    asyncio.run(run())


def test_sqlite_cache_is_bounded_in_bytes_and_the_table_by_count(tmp_path: Any) -> None:
    path = tmp_path / "e.db"

    async def run() -> None:
        store = SQLiteStore(path, retain=100, retain_bytes=10_000)
        await store.open()
        try:
            stored = []
            for i in range(40):
                stored += await store.append([big(i)])
            cost = [len(s.encoded) + 1 for s in stored]
            size = max(cost) - 1
            assert store.retained_bytes <= 10_000
            stats = store.stats()
            assert stats["retained_bytes"] == store.retained_bytes
            assert stats["retained_bytes"] == sum(cost[-stats["cached"] :]) - stats["cached"]
            assert 10_000 // size <= stats["cached"] < 40
            assert stats["cache_evicted_by_bytes"] == 40 - stats["cached"]
            assert len(store) == 40 and store.first_id == 1  # the database keeps them all
            # a read past the cache goes to the database and stops at its budget
            assert ids(await store.since(0, 1000, max_bytes=sum(cost[:3]))) == [1, 2, 3]
            assert ids(await store.recent(40, max_bytes=sum(cost[15:]))) == list(range(16, 41))
            assert ids(await store.recent(40, max_bytes=sum(cost[15:]) - 1))[0] == 17
            assert len(await store.recent(40)) == 40  # no budget: everything asked for
            assert ids(await store.recent(40, max_bytes=sum(cost[38:]))) == [39, 40]
        finally:
            await store.close()
        # reopen: the cache is loaded newest first, within the budget, and counted again
        again = SQLiteStore(path, retain=100, retain_bytes=5_000)
        await again.open()
        try:
            cached = again.stats()["cached"]
            assert 5_000 // size <= cached < 40
            assert again.retained_bytes == sum(cost[-cached:]) - cached <= 5_000
            assert ids(await again.recent(cached)) == list(range(41 - cached, 41))
        finally:
            await again.close()

    asyncio.run(run())
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 40


@pytest.mark.parametrize("bad", [0, MIN_RETAIN_BYTES - 1, MAX_RETAIN_BYTES + 1, True, 1.5, None])
def test_retain_bytes_out_of_bounds_is_a_config_error_naming_it(bad: Any) -> None:
    with pytest.raises(ConfigError, match="retain_bytes"):
        MemoryStore(retain_bytes=bad)
    with pytest.raises(ConfigError, match="retain_bytes"):
        SQLiteStore("unused.db", retain_bytes=bad)
    with pytest.raises(ConfigError, match="retain_bytes"):
        ServerOptions.validate(retain_bytes=bad)


def test_store_urls_take_retain_bytes() -> None:
    assert ServerOptions().retain_bytes == DEFAULT_RETAIN_BYTES == 256 << 20
    assert open_store("memory", retain=10, retain_bytes=4096).retain_bytes == 4096
    sqlite = open_store("sqlite:///x.db", retain=10, retain_bytes=8192)
    assert sqlite.retain_bytes == 8192
    mine = MemoryStore(retain_bytes=2048)
    assert open_store(mine, retain=10, retain_bytes=4096) is mine  # used as given
