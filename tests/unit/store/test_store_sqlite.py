"""The SQLite store: durability, epochs, retain, group commit, close, open errors, locking,
facets."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from _store_helpers import ev, ids

from wsnotebook.errors import StoreError
from wsnotebook.store import MemoryStore, SQLiteStore, stamp_all


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
        assert (store.last_id, store.first_id, len(store)) == (100, 51, 50)
        replay = await store.since(0, 1000)
        assert ids(replay) == list(range(51, 101))
        await store.close()

    asyncio.run(main())


def test_sqlite_store_reads_beyond_its_cache_from_the_database(
    tmp_path: Any, monkeypatch: Any
) -> None:
    import wsnotebook.store.sqlite as mod

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


# ---------------------------------------------------------------------- SQLite store lifecycle


def db_rows(path: Any) -> tuple[int, int | None, int | None]:
    """``(COUNT(*), MIN(id), MAX(id))`` of the events table, read by a connection of its own."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        count, lo, hi = conn.execute("SELECT COUNT(*), MIN(id), MAX(id) FROM events").fetchone()
    return count, lo, hi


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def make_db(path: Any, n: int, **kw: Any) -> None:
    async def main() -> None:
        store = SQLiteStore(path, **kw)
        await store.open()
        await store.append([ev(n=i, session_id=f"s{i}") for i in range(n)])
        await store.close()

    asyncio.run(main())


def test_a_reopened_sqlite_store_instance_holds_each_event_once(tmp_path: Path) -> None:
    """``serve(store=instance)`` again (or ``restart=True``) opens the same instance again: it
    must reload its state from the database, not add the rows to what it still had."""
    store = SQLiteStore(tmp_path / "e.db", retain=100)

    async def first() -> None:
        await store.open()
        await store.append([ev(session_id="a"), ev(session_id="b"), ev(session_id="c")])
        await store.close()

    async def again() -> None:
        await store.open()
        assert (store.last_id, store.first_id, len(store)) == (3, 1, 3)
        assert ids(await store.recent(100)) == [1, 2, 3]
        assert ids(await store.since(0, 100)) == [1, 2, 3]
        assert ids(await store.since(2, 100)) == [3]
        assert (await store.filter_options())["session_ids"] == ["a", "b", "c"]
        assert (store.commits, store.commit_errors) == (0, 0)
        await store.close()

    asyncio.run(first())
    asyncio.run(again())  # another event loop, as a restarted server may have

    async def third() -> None:
        await again()
        await store.open()
        assert ids(await store.append([ev()])) == [4]
        assert ids(await store.recent(100)) == [1, 2, 3, 4]
        await store.close()

    asyncio.run(third())


def test_appends_after_close_began_fail_as_closed_and_nothing_acknowledged_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An append that runs once close() has queued the writer's stop marker used to wait
    forever (the server's blocking publish() timed out after 30 s)."""
    path = tmp_path / "e.db"

    async def main() -> None:
        store = SQLiteStore(path)
        await store.open()
        gate = threading.Event()
        commit = store._commit

        def held(*args: Any) -> Any:  # the writer waits inside its commit until the gate opens
            gate.wait(10)
            return commit(*args)

        monkeypatch.setattr(store, "_commit", held)
        in_flight = asyncio.ensure_future(store.append([ev(n=1)]))
        await asyncio.sleep(0)
        for _ in range(1000):  # until the writer has taken it
            if store._queue.empty():
                break
            await asyncio.sleep(0.005)
        closing = asyncio.ensure_future(store.close())
        await asyncio.sleep(0)  # close() has begun: its stop marker is queued
        with pytest.raises(StoreError, match=r"^sqlite store .*e\.db: closed$"):
            await asyncio.wait_for(store.append([ev(n=2)]), 2)
        # one queued behind the stop marker all the same (an append from another thread, say)
        late: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        store._queue.put((stamp_all([ev(n=3)], 99, 1.0), late))
        gate.set()
        await asyncio.wait_for(closing, 10)
        assert ids(await asyncio.wait_for(in_flight, 10)) == [1]  # acknowledged: committed
        with pytest.raises(StoreError, match=r"^sqlite store .*e\.db: closed$"):
            await asyncio.wait_for(late, 2)
        with pytest.raises(StoreError, match=r": closed$"):
            await store.append([ev()])
        await store.open()
        assert (store.last_id, ids(await store.since(0, 10))) == (1, [1])
        await store.close()

    asyncio.run(main())


class ReadOnlyConnections(SQLiteStore):
    """A store whose connections are read-only (the database cannot be written)."""

    def _connect(self) -> sqlite3.Connection:
        uri = f"file:{self.path}?mode=ro"
        return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)


def test_a_database_that_cannot_be_written_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    make_db(path, 3)
    before = open_fds()
    with pytest.raises(StoreError) as info:
        asyncio.run(ReadOnlyConnections(path).open())
    assert str(info.value).startswith(f"sqlite store {path}: ")
    assert "readonly" in str(info.value) or "cannot write" in str(info.value)
    assert open_fds() == before


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("chattr") is None,
    reason="chattr +i needs root",
)
def test_an_immutable_database_file_is_refused_at_open_naming_it(tmp_path: Path) -> None:
    """Root ignores file modes; an immutable file is what an unwritable database is to it."""
    path = tmp_path / "e.db"
    make_db(path, 3)
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("this filesystem has no immutable flag")
    try:
        before = open_fds()
        with pytest.raises(StoreError) as info:
            asyncio.run(SQLiteStore(path).open())
        assert str(info.value) == (
            f"sqlite store {path}: cannot write: attempt to write a readonly database"
        )
        assert open_fds() == before
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    make_db(path, 1)  # writable again, and not left locked


FULL_EVENT = '{"source_app":"a","session_id":"s","hook_event_type":"t","payload":{}}'


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        pytest.param(
            "UPDATE events SET data = x'7b6e6f74206a736f6e' WHERE id = 2",
            "ProtocolError: invalid JSON",
            id="row-with-invalid-json",
        ),
        pytest.param(
            f"UPDATE events SET data = '{FULL_EVENT}' WHERE id = 3",
            "TypeError",
            id="row-stored-as-text",
        ),
        pytest.param(
            "UPDATE events SET data = x'7b7d' WHERE id = 1",
            "KeyError: 'source_app'",
            id="row-without-facets",
        ),
        pytest.param(
            "UPDATE meta SET value = 'abc' WHERE key = 'last_id'",
            "corrupt sequence",
            id="non-numeric-last-id",
        ),
    ],
)
def test_corrupt_database_contents_are_a_store_error_at_open_that_leaks_nothing(
    tmp_path: Path, damage: str, reason: str
) -> None:
    path = tmp_path / "e.db"
    make_db(path, 3)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute(damage)
        conn.commit()
    before = open_fds()
    with pytest.raises(StoreError) as info:
        asyncio.run(SQLiteStore(path).open())
    assert str(info.value).startswith(f"sqlite store {path}: ")
    assert reason in str(info.value)
    assert open_fds() == before  # no connection, thread or lock left behind
    with contextlib.closing(sqlite3.connect(path)) as conn:  # repaired: opens (not locked)
        conn.execute("DELETE FROM events")
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'last_id'")
        conn.commit()
    make_db(path, 1)
    assert db_rows(path) == (1, 4, 4)


def test_a_database_is_used_by_one_store_at_a_time(tmp_path: Path) -> None:
    """Two stores on one file both wrote the same ids (every write of the second failed)."""
    path = tmp_path / "e.db"
    (tmp_path / "link.db").symlink_to(path)

    async def main() -> None:
        first = SQLiteStore(path)
        await first.open()
        for other in (path, tmp_path / "link.db", os.path.relpath(path)):
            before = open_fds()
            with pytest.raises(StoreError) as info:
                await SQLiteStore(other).open()
            assert str(info.value).startswith(
                f"sqlite store {other}: is in use by another wsnotebook server"
            )
            assert open_fds() == before
        assert ids(await first.append([ev()])) == [1]
        await first.close()
        second = SQLiteStore(tmp_path / "link.db")  # released on close
        await second.open()
        assert ids(await second.append([ev()])) == [2]
        await second.close()

    asyncio.run(main())


CHILD = """
import asyncio, sys
from wsnotebook.store import SQLiteStore
async def main():
    store = SQLiteStore(sys.argv[1])
    await store.open()
    print("open", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await store.close()
asyncio.run(main())
"""


def test_a_database_open_in_another_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    root = str(Path(__file__).resolve().parents[3])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline() == "open\n"
        with pytest.raises(StoreError, match="is in use by another wsnotebook server"):
            asyncio.run(SQLiteStore(path).open())
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(20) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    make_db(path, 1)  # the child's close released it


def test_sqlite_filter_options_are_the_values_of_the_retained_events(tmp_path: Path) -> None:
    """The same answer as the memory store, also after a restart (with a smaller retain)."""
    path = tmp_path / "e.db"

    async def expected(store: Any) -> dict[str, list[str]]:
        kept = await store.since(0, 1000)
        assert len(kept) == len(store)
        return {
            "source_apps": sorted({s.source_app for s in kept}),
            "session_ids": sorted({s.session_id for s in kept}),
            "hook_event_types": sorted({s.hook_event_type for s in kept}),
        }

    def batch(i: int, n: int = 1) -> list[dict[str, Any]]:
        return [
            ev(source_app=f"app{(i + k) // 7}", session_id=f"s{i + k}", hook_event_type=f"h{k}")
            for k in range(n)
        ]

    async def main() -> None:
        memory, store = MemoryStore(retain=10), SQLiteStore(path, retain=10)
        await store.open()
        for i in range(40):
            for s in (memory, store):
                await s.append(batch(i, 1 + i % 3))
            assert await store.filter_options() == await memory.filter_options()
        for s in (memory, store):
            await s.append(batch(100, 25))  # a batch bigger than retain
        assert await store.filter_options() == await memory.filter_options()
        assert len((await store.filter_options())["session_ids"]) == 10
        await store.close()
        for retain in (10, 3):
            store = SQLiteStore(path, retain=retain)
            await store.open()
            assert await store.filter_options() == await expected(store)
            await store.append(batch(200, 2))
            assert await store.filter_options() == await expected(store)
            await store.close()

    asyncio.run(main())


def test_sqlite_retained_count_is_the_rows_in_the_table_after_failed_commits(
    tmp_path: Path,
) -> None:
    """Failed commits leave id holes; the count must not assume ids are contiguous."""
    path = tmp_path / "e.db"

    async def main() -> None:
        store = SQLiteStore(path, retain=20)
        await store.open()
        for i in range(15):
            await store.append([ev(n=i)])
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute(
                "CREATE TRIGGER refuse BEFORE INSERT ON events"
                " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
            conn.commit()
        for _ in range(4):
            with pytest.raises(StoreError, match="injected failure"):
                await store.append([ev()])
        with contextlib.closing(sqlite3.connect(path)) as conn:
            conn.execute("DROP TRIGGER refuse")
            conn.commit()
        for i in range(8):
            await store.append([ev(n=i)])
        assert (len(store), store.first_id, store.last_id) == db_rows(path) == (20, 4, 27)
        assert store.stats()["retained"] == 20
        kept = [*range(4, 16), *range(20, 28)]
        assert ids(await store.recent(100)) == ids(await store.since(0, 100)) == kept
        await store.close()

    asyncio.run(main())


def test_a_sqlite_store_never_holds_or_reports_more_than_retain_events(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wsnotebook.store.sqlite as mod

    monkeypatch.setattr(mod, "SQLITE_CACHE_EVENTS", 4)  # reads beyond the cache hit the table
    path = tmp_path / "e.db"

    async def main() -> None:
        store = SQLiteStore(path, retain=10)
        await store.open()
        for i in range(11):
            await store.append([ev(n=i)])
            assert db_rows(path)[0] == len(store) == min(i + 1, 10)
        assert (len(store), store.first_id, store.last_id) == (10, 2, 11)
        assert ids(await store.recent(100)) == list(range(2, 12))
        assert ids(await store.since(0, 100)) == list(range(2, 12))
        await store.close()
        # restarted with a smaller retain: pruned at open, before any write
        smaller = SQLiteStore(path, retain=3)
        await smaller.open()
        assert db_rows(path) == (3, 9, 11)
        assert (len(smaller), smaller.first_id, smaller.last_id) == (3, 9, 11)
        assert ids(await smaller.recent(100)) == [9, 10, 11]
        assert ids(await smaller.since(0, 100)) == [9, 10, 11]
        assert ids(await smaller.append([ev()])) == [12]
        assert db_rows(path) == (3, 10, 12)
        await smaller.close()

    asyncio.run(main())


def test_sqlite_facet_values_of_pruned_events_do_not_accumulate_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A high-cardinality field (a new session id per event) must not grow the store's memory
    without bound: values no retained event holds are forgotten."""
    import wsnotebook.store.sqlite as mod

    monkeypatch.setattr(mod, "FACET_COMPACT_MIN", 16)

    async def main() -> None:
        store = SQLiteStore(tmp_path / "e.db", retain=10)
        await store.open()
        tracked = []
        for i in range(500):
            await store.append([ev(session_id=f"s{i}")])
            tracked.append(len(getattr(store, "_facet_seen", [[]] * 3)[1]))
        options = await store.filter_options()
        assert options["session_ids"] == sorted(f"s{i}" for i in range(490, 500))
        assert max(tracked) <= 2 * 16 + 1  # session ids held in memory stay bounded
        await store.close()

    asyncio.run(main())
