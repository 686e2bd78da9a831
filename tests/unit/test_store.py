"""Stores: stamping, ids, eviction, resume reads, facets, SQLite durability and errors."""

from __future__ import annotations

import asyncio
import decimal
import enum
import sqlite3
from typing import Any

import orjson
import pytest

from wsnotebook._store import (
    STAMP_SLACK,
    MemoryStore,
    SQLiteStore,
    open_store,
    parse_store_url,
    snapshot_events,
    stamp,
    stamp_all,
)
from wsnotebook.errors import ConfigError, EventValidationError, LimitExceeded, StoreError


def ev(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source_app": "app",
        "session_id": "s1",
        "hook_event_type": "PreToolUse",
        "payload": {},
    }
    base.update(fields)
    return base


def ids(stored: list[Any]) -> list[int]:
    return [s.id for s in stored]


def test_stamp_sets_id_fills_timestamp_and_keeps_unknown_fields() -> None:
    original = ev(extra={"a": 1}, id=99)
    s = stamp(original, 7, 1000.5)
    assert s.id == 7 and s.event["id"] == 7
    assert s.event["timestamp"] == 1000 and s.event["server_received"] == 1000.5
    assert s.event["extra"] == {"a": 1}
    assert orjson.loads(s.encoded) == s.event
    assert original["id"] == 99  # the input is not mutated
    assert stamp(ev(timestamp=5), 1, 2.0).event["timestamp"] == 5


def test_stamp_all_refuses_an_unencodable_event_naming_it_and_its_field() -> None:
    with pytest.raises(EventValidationError) as info:
        stamp_all([ev(), ev(payload={"d": decimal.Decimal(1)})], 1, 1.0)
    assert str(info.value).startswith("events[1].payload: cannot encode as JSON: ")
    assert info.value.field == "payload"
    with pytest.raises(EventValidationError, match=r"^extra: cannot encode as JSON"):
        stamp_all([ev(extra={1, 2})], 1, 1.0)  # one event: no index


def test_stamp_all_holds_every_event_to_max_bytes_plus_the_stamps_room() -> None:
    fits = ev(payload={"b": "x" * 900})
    size = len(orjson.dumps(fits))
    assert stamp_all([fits], 1, 1.0, max_bytes=size)  # our own fields fit in STAMP_SLACK
    assert len(stamp_all([fits], 1, 1.0)[0].encoded) <= size + STAMP_SLACK
    with pytest.raises(LimitExceeded) as info:
        stamp_all([ev(), fits], 1, 1.0, max_bytes=size - STAMP_SLACK)
    assert str(info.value).startswith("events[1]: ")
    assert (info.value.limit, info.value.bound) == ("max_event_bytes", size - STAMP_SLACK)


def test_a_refused_append_uses_no_id() -> None:
    async def main() -> None:
        store = MemoryStore(retain=5)
        store.max_event_bytes = 1024
        with pytest.raises(LimitExceeded):
            await store.append([ev(), ev(payload={"b": "x" * 2000})])
        with pytest.raises(EventValidationError):
            await store.append([ev(payload={"d": decimal.Decimal(1)})])
        assert ids(await store.append([ev()])) == [1]

    asyncio.run(main())


def test_stored_facets_of_str_subclasses_are_their_text() -> None:
    class App(str, enum.Enum):
        WEB = "web"

    s = stamp(ev(source_app=App.WEB), 1, 1.0)
    assert type(s.source_app) is str and s.source_app == "web"
    assert s.event["source_app"] == "web"


def test_snapshots_store_what_was_handed_over_and_are_checked_like_stamp_all() -> None:
    original = ev(payload={"tool": {"n": 1}})
    items = snapshot_events([original])
    original["payload"]["tool"]["n"] = 2  # the caller changes its dict afterwards
    (stored,) = stamp_all(items, 7, 1000.5)
    assert stored.event == {**ev(payload={"tool": {"n": 1}}), "id": 7, "timestamp": 1000,
                            "server_received": 1000.5}  # fmt: skip
    with pytest.raises(EventValidationError, match=r"^events\[0\]\.payload: "):
        snapshot_events([ev(payload={"d": decimal.Decimal(1)}), ev()])
    with pytest.raises(LimitExceeded, match=r"^event: \d+ bytes as JSON exceeds the limit of 100"):
        snapshot_events([ev(payload={"b": "x" * 200})], 100)


@pytest.mark.parametrize(
    "event",
    [
        ev(),
        ev(timestamp=5),
        ev(timestamp=5.5, extra=[1, {"a": None}]),
        ev(timestamp=None),
        ev(id=99, server_received=1.0, timestamp=3),
        ev(id="not even an int", summary="s", chat=[]),
        ev(source_app="é✓", payload={"k": '\u2028 "quoted"'}),
    ],
)
def test_a_snapshot_is_stored_with_exactly_the_fields_and_values_of_the_dict_path(
    event: dict[str, Any],
) -> None:
    (spliced,) = stamp_all(snapshot_events([event]), 3, 1795736432259.8413)
    (direct,) = stamp_all([event], 3, 1795736432259.8413)
    assert spliced.event == direct.event  # key order may differ: a replaced id moves last
    assert orjson.loads(spliced.encoded) == orjson.loads(direct.encoded)
    assert (spliced.id, spliced.source_app, spliced.session_id, spliced.hook_event_type) == (
        direct.id, direct.source_app, direct.session_id, direct.hook_event_type,
    )  # fmt: skip


def test_memory_store_assigns_increasing_ids_and_evicts_oldest() -> None:
    async def main() -> None:
        store = MemoryStore(retain=5)
        assert (store.last_id, store.first_id, len(store)) == (0, None, 0)
        assert ids(await store.append([ev() for _ in range(3)])) == [1, 2, 3]
        assert ids(await store.append([ev() for _ in range(4)])) == [4, 5, 6, 7]
        assert (store.last_id, store.first_id, len(store)) == (7, 3, 5)
        assert ids(await store.recent(2)) == [6, 7]
        assert ids(await store.recent(100)) == [3, 4, 5, 6, 7]
        assert ids(await store.since(4, 10)) == [5, 6, 7]
        assert ids(await store.since(0, 2)) == [3, 4]
        assert ids(await store.since(7, 10)) == []

    asyncio.run(main())


def test_memory_store_facets_follow_eviction() -> None:
    async def main() -> None:
        store = MemoryStore(retain=2)
        await store.append([ev(source_app="old", session_id="x")])
        await store.append([ev(source_app="b"), ev(source_app="a", hook_event_type="Stop")])
        assert await store.filter_options() == {
            "source_apps": ["a", "b"],
            "session_ids": ["s1"],
            "hook_event_types": ["PreToolUse", "Stop"],
        }

    asyncio.run(main())


def test_memory_store_facets_match_the_retained_events_across_folds() -> None:
    """Facet counts are folded in lazily, in C-level passes; whenever they are read they equal
    the distinct values of the events still retained, including across evictions of values."""
    from wsnotebook import _store

    async def main() -> None:
        store = MemoryStore(retain=300)
        for batch in range(2 * _store._FOLD_EVERY // 10):
            await store.append(
                [
                    ev(
                        source_app=f"app{batch // 40}",
                        session_id=f"s{(batch * 10 + i) // 7}",
                        hook_event_type=f"h{i % 3}" if batch % 50 else "rare",
                    )
                    for i in range(10)
                ]
            )
            if batch % 97 == 0 or batch % 100 == 99:
                kept = await store.recent(1000)
                assert await store.filter_options() == {
                    "source_apps": sorted({s.source_app for s in kept}),
                    "session_ids": sorted({s.session_id for s in kept}),
                    "hook_event_types": sorted({s.hook_event_type for s in kept}),
                }
        assert len(store) == 300

    asyncio.run(main())


def test_retained_events_are_not_tracked_by_the_cyclic_gc() -> None:
    """A kernel's full collections walk every tracked object with the GIL held; a store
    retaining 100,000 tracked events made them ~85 ms long.  Retained events must add none."""
    import gc

    async def main() -> None:
        store = MemoryStore(retain=5000)
        gc.collect()
        before = len(gc.get_objects())
        for start in range(0, 5000, 100):
            await store.append([ev(n=start + i) for i in range(100)])
        gc.collect()
        assert len(store) == 5000
        assert not any(gc.is_tracked(s) for s in await store.recent(5000))
        assert len(gc.get_objects()) - before < 100

    asyncio.run(main())


def test_memory_stores_have_distinct_epochs() -> None:
    assert MemoryStore().epoch != MemoryStore().epoch


def test_store_urls_and_bounds() -> None:
    assert parse_store_url("memory") == ("memory", "")
    assert parse_store_url("sqlite:///rel.db") == ("sqlite", "rel.db")
    assert parse_store_url("sqlite:////abs/e.db") == ("sqlite", "/abs/e.db")
    for bad in ("sqlite:///", "redis://x", "", "sqlite://x.db"):
        with pytest.raises(ConfigError):
            parse_store_url(bad)
    with pytest.raises(ConfigError, match="retain"):
        MemoryStore(retain=0)
    custom = MemoryStore(retain=3)
    assert open_store(custom, retain=10) is custom


def test_sqlite_store_persists_events_epoch_and_sequence(tmp_path: Any) -> None:
    path = tmp_path / "e.db"

    async def first() -> str:
        store = SQLiteStore(path)
        await store.open()
        out = await asyncio.gather(*(store.append([ev(n=i)]) for i in range(20)))
        assert sorted(s.id for batch in out for s in batch) == list(range(1, 21))
        assert store.commits < 20  # concurrent appends were group-committed
        await store.close()
        return store.epoch

    epoch = asyncio.run(first())
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 20

    async def second() -> None:
        store = SQLiteStore(path)
        await store.open()
        assert store.epoch == epoch and store.last_id == 20 and store.first_id == 1
        assert ids(await store.since(17, 10)) == [18, 19, 20]
        assert ids(await store.append([ev()])) == [21]
        assert ids(await store.recent(2)) == [20, 21]
        assert (await store.recent(2))[0].event["n"] == 19
        await store.close()

    asyncio.run(second())


def test_sqlite_store_prunes_to_retain_and_reads_old_rows_from_disk(tmp_path: Any) -> None:
    async def main() -> None:
        store = SQLiteStore(tmp_path / "e.db", retain=50)
        await store.open()
        for _ in range(10):
            await store.append([ev() for _ in range(10)])
        assert store.last_id == 100
        first = store.first_id
        assert first is not None and 45 <= first <= 51
        assert len(store) == 100 - first + 1
        replay = await store.since(0, 1000)
        assert ids(replay) == list(range(first, 101))
        await store.close()

    asyncio.run(main())


def test_sqlite_store_reads_beyond_its_cache_from_the_database(
    tmp_path: Any, monkeypatch: Any
) -> None:
    import wsnotebook._store as mod

    monkeypatch.setattr(mod, "SQLITE_CACHE_EVENTS", 5)

    async def main() -> None:
        store = SQLiteStore(tmp_path / "e.db")
        await store.open()
        await store.append([ev(n=i) for i in range(12)])
        assert len(store._cache) == 5
        assert ids(await store.since(2, 4)) == [3, 4, 5, 6]
        assert [s.event["n"] for s in await store.recent(8)] == list(range(4, 12))
        await store.close()

    asyncio.run(main())


def test_sqlite_store_errors_are_store_errors(tmp_path: Any) -> None:
    async def open_(path: Any) -> None:
        store = SQLiteStore(path)
        await store.open()
        await store.close()

    corrupt = tmp_path / "bad.db"
    corrupt.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(StoreError, match=r"bad\.db"):
        asyncio.run(open_(corrupt))
    with pytest.raises(StoreError, match="does not exist"):
        asyncio.run(open_(tmp_path / "nope" / "e.db"))

    async def closed() -> None:
        store = SQLiteStore(tmp_path / "ok.db")
        await store.append([ev()])

    with pytest.raises(StoreError, match="not open"):
        asyncio.run(closed())
