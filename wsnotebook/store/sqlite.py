"""The SQLite backend (``store="sqlite:///path/to/events.db"``): WAL, group commit, epochs.

Owns :class:`SQLiteStore`: its in-memory state (a cache of the newest events, the id sequence,
the newest id of each facet value), its writer thread and its reads.  Opening the database
(lock, schema, pruning, loading) is :mod:`.sqlite_db`'s.

Writes never block the event loop: a dedicated writer thread commits with **group commit** (every
append waiting while a commit runs is committed together in the next transaction, at most
:data:`SQLITE_GROUP_MAX` appends a transaction).  ``append`` returns only **after the commit**,
so an HTTP 200 means the event is in the database (``synchronous=NORMAL`` in WAL mode: it
survives a process or kernel crash; a power cut may lose the last transactions).  The epoch and
the id sequence persist in the database, so a restart keeps both and clients resume seamlessly.

Bounds: the newest :data:`SQLITE_CACHE_EVENTS` events (at most ``retain``, and at most
``retain_bytes`` bytes of encoded events, the newest one always) are cached in memory
(``initial`` snapshots and short resumes never touch the disk; older replays read the database
from a worker thread, stopping at the reader's byte budget); every commit deletes the rows
beyond the newest ``retain``; facet values no retained row holds are dropped once a field
tracks more than twice what it held after the last compaction (never below
:data:`FACET_COMPACT_MIN` entries).  Appends after ``close()`` began fail with StoreError
("closed"), never hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import os
import queue
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

from ..errors import StoreError
from ..events import now_ms
from .base import (
    DEFAULT_RETAIN_BYTES,
    FACET_FIELDS,
    Appendable,
    Store,
    StoredEvent,
    check_retain,
    check_retain_bytes,
)
from .memory import Ring
from .sqlite_db import decode_rows, discard_late, open_database
from .sqlite_hitl import SQLiteHitlMixin
from .stamping import stamp_all

__all__ = ["FACET_COMPACT_MIN", "SQLITE_CACHE_EVENTS", "SQLITE_GROUP_MAX", "SQLiteStore"]

log = logging.getLogger("wsnotebook")

#: Most events kept in the SQLite store's in-memory cache of recent events.
SQLITE_CACHE_EVENTS = 10_000
#: Most appends (requests) committed in one group-commit transaction.
SQLITE_GROUP_MAX = 1_000

#: The writer thread's stop marker (``close()`` queues it behind the pending appends).
_STOP = object()
#: Facet entries (per field) below which the SQLite store never drops stale values.
FACET_COMPACT_MIN = 4096


class SQLiteStore(SQLiteHitlMixin, Store):
    """SQLite (WAL) store with a writer thread doing group commit; see the module docstring.

    ``retain`` (default 100,000; 1..100,000,000) bounds the table exactly: every commit deletes
    the rows older than the newest ``retain`` ones (in the writer thread, in the same
    transaction), and so does :meth:`open` (a restart with a smaller ``retain`` takes effect at
    once).  So ``len()``, ``first_id``, ``recent``, ``since`` and ``filter_options`` (the
    distinct values among the retained events, as for :class:`MemoryStore`) never see more than
    ``retain`` events.  Epoch and id sequence persist across restarts.

    ``retain_bytes`` (default 256 MiB; 1 KiB..1 TiB) bounds the in-memory cache of recent
    events in bytes (``retained_bytes`` in :meth:`stats`); the table itself is bounded by
    ``retain`` only (it is on disk; reads from it stop at the caller's ``max_bytes``).

    :meth:`open` takes an exclusive lock on ``<path>.lock`` (``flock``; the file is left in
    place) and holds it until :meth:`close` has finished the writer: a second store on the same
    database, in this process or another, fails to open instead of both writing the same ids.
    It also proves the database writable (a write committed at open) and reads the cached
    events back, so a read-only or corrupt database is a :class:`StoreError` naming the path at
    open, not a failure of every later write.  A failed open leaves nothing open.  An instance
    may be opened again after :meth:`close` (it reloads everything from the database).
    """

    kind = "sqlite"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        retain: int = 100_000,
        retain_bytes: int = DEFAULT_RETAIN_BYTES,
    ) -> None:
        self.path = os.fspath(path)
        self.retain = check_retain(retain)
        self.retain_bytes = check_retain_bytes(retain_bytes)
        self._read_lock = threading.Lock()
        self._facet_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._generation = 0
        self._reset()

    def _reset(self) -> None:
        """Forget every piece of in-memory state (open() reloads it from the database)."""
        self.epoch = ""
        self._cache = Ring(
            min(self.retain, SQLITE_CACHE_EVENTS), facets=False, max_bytes=self.retain_bytes
        )
        self._next = 1  # next id to assign
        self._last = 0  # newest committed id
        self._first: int | None = None
        self._count = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._accepting = False  # True from a completed open() until close() begins
        self._why_not = "not open"  # why append() refuses otherwise (close(): "closed")
        # Per facet field: value -> the newest id that holds it.  A value is among the retained
        # events iff that id >= the oldest retained id, whatever ids failed commits skipped.
        # Kept by the writer thread (with _w_first), read under _facet_lock.
        self._facet_seen: list[dict[str, int]] = [{} for _ in FACET_FIELDS]
        self._facet_bound = FACET_COMPACT_MIN  # entries that trigger dropping stale values
        # The table as the writer thread knows it (rows, oldest id): the writer's own state.
        self._w_count = 0
        self._w_first: int | None = None
        self.commits = 0
        self.commit_errors = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def last_id(self) -> int:
        return self._last

    @property
    def first_id(self) -> int | None:
        return self._first

    def __len__(self) -> int:
        return self._count

    @property
    def retained_bytes(self) -> int:
        """Bytes of encoded events in the in-memory cache (the database holds more)."""
        return self._cache.bytes

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def open(self) -> None:
        if self._thread is not None:
            raise StoreError(f"sqlite store {self.path}: already open")
        self._reset()
        self._generation += 1
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(
            None,
            open_database,
            self.path,
            self.retain,
            SQLITE_CACHE_EVENTS,
            self._connect,
            self.retain_bytes,
        )
        try:
            opened = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(discard_late)
            raise
        self._loop = loop
        self.epoch = opened.epoch
        self._last = opened.last
        self._next = opened.last + 1
        self._first = opened.first
        self._count = self._w_count = opened.rows
        self._w_first = opened.first
        self._cache.add(opened.cached)
        self._load_versions(opened.updated)
        with self._facet_lock:
            self._facet_seen = opened.facets
            self._facet_bound = max(FACET_COMPACT_MIN, 2 * max(map(len, opened.facets)))
        thread = threading.Thread(
            target=self._writer,
            args=(opened.write_conn, opened.lock_fd, self._queue, loop, self._generation),
            name=f"wsnotebook-sqlite-{os.path.basename(self.path)}",
            daemon=True,
        )
        try:
            thread.start()
        except BaseException as exc:
            opened.discard()
            self._reset()
            raise StoreError(f"sqlite store {self.path}: cannot start the writer: {exc}") from exc
        self._thread = thread
        self._read_conn = opened.read_conn
        self._accepting = True

    async def close(self) -> None:
        """Refuse new appends, commit those already queued, stop the writer (which releases
        the lock), close the reader.  Appends queued behind the stop fail with StoreError."""
        self._accepting = False
        if self._thread is not None or self._read_conn is not None:
            self._why_not = "closed"
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(thread.join, 30)
            if thread.is_alive():  # pragma: no cover - a commit stuck for 30 s
                log.error("sqlite store %s: the writer did not stop within 30 s", self.path)
            self._thread = None
            self._refuse(self._drain(self._queue))
        if self._read_conn is not None:
            with self._read_lock:
                self._read_conn.close()
            self._read_conn = None

    # ------------------------------------------------------------------ writing
    @staticmethod
    def _drain(q: queue.SimpleQueue[Any]) -> list[Any]:
        """The appends left in ``q`` (stop markers dropped)."""
        left: list[Any] = []
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                return left
            if item is not _STOP:
                left.append(item)

    def _refuse(self, items: list[Any]) -> None:
        """Fail appends that came after close() began (on the loop thread)."""
        for _, fut in items:
            if not fut.done():
                fut.set_exception(StoreError(f"sqlite store {self.path}: closed"))

    def _writer(
        self,
        conn: sqlite3.Connection,
        lock_fd: int,
        q: queue.SimpleQueue[Any],
        loop: asyncio.AbstractEventLoop,
        generation: int,
    ) -> None:
        def to_loop(callback: Callable[..., None], *args: Any) -> None:
            with contextlib.suppress(RuntimeError):  # loop closed at interpreter exit
                loop.call_soon_threadsafe(callback, *args)

        try:
            stop = False
            while not stop:
                item = q.get()
                if item is _STOP:
                    break
                group = [item]
                while len(group) < SQLITE_GROUP_MAX:
                    try:
                        nxt = q.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    group.append(nxt)
                try:
                    outcome = self._commit(conn, group)
                except BaseException as exc:  # pragma: no cover - _commit reports its own
                    outcome = (exc, 0, None)
                to_loop(self._committed, generation, group, *outcome)
            late = self._drain(q)
            if late:  # queued behind the stop marker: never committed, so refused
                to_loop(self._refuse, late)
        finally:
            conn.close()
            os.close(lock_fd)  # releases the lock: the database is free for another store

    def _commit(
        self, conn: sqlite3.Connection, group: list[Any]
    ) -> tuple[BaseException | None, int, int | None]:
        """Commit a group of appends (writer thread): ``(error, rows, first_id)`` after it."""
        rows = [
            (s.id, s.source_app, s.session_id, s.hook_event_type, s.encoded)
            for stored, _ in group
            for s in stored
        ]
        error: BaseException | None = None
        count, first = self._w_count, self._w_first
        try:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
            # appends are queued in id order: the group's last row has its highest id
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_id', ?)", (str(rows[-1][0]),))
            count += len(rows)
            if first is None:
                first = rows[0][0]
            over = count - self.retain
            if over > 0:  # delete the oldest rows beyond retain: the new oldest is after them
                row = conn.execute(
                    "SELECT id FROM events ORDER BY id LIMIT 1 OFFSET ?", (over,)
                ).fetchone()
                if row is None:  # fewer rows than counted (cannot happen while locked)
                    count, first = conn.execute("SELECT COUNT(*), MIN(id) FROM events").fetchone()
                else:
                    first = row[0]
                    count -= conn.execute("DELETE FROM events WHERE id < ?", (first,)).rowcount
            conn.execute("COMMIT")
            self.commits += 1
        except BaseException as exc:  # report to every waiter, keep the thread alive
            error = exc
            self.commit_errors += 1
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            log.error("sqlite store %s: commit failed: %s", self.path, exc)
        else:
            self._committed_rows(rows, count, first)
        return error, count, first

    def _committed_rows(self, rows: list[Any], count: int, first: int | None) -> None:
        """The writer's state after a commit of ``rows``: the table's row count and oldest id,
        and the newest id of each facet value (C-level passes: ``dict.update`` keeps the last,
        highest, id of a value).  Values no retained row holds are dropped now and then, so
        high-cardinality fields (session ids) do not grow memory without bound."""
        ids = [row[0] for row in rows]
        with self._facet_lock:
            self._w_count, self._w_first = count, first
            seen_all = self._facet_seen
            for index, seen in enumerate(seen_all, 1):
                seen.update(zip(map(operator.itemgetter(index), rows), ids))
            if max(map(len, seen_all)) > self._facet_bound and first is not None:
                for seen in seen_all:
                    for value in [v for v, newest in seen.items() if newest < first]:
                        del seen[value]
                self._facet_bound = max(FACET_COMPACT_MIN, 2 * max(map(len, seen_all)))

    def _committed(
        self,
        generation: int,
        group: list[Any],
        error: BaseException | None,
        count: int,
        first: int | None,
    ) -> None:
        if error is None and generation == self._generation:
            add = self._cache.add
            for stored, _ in group:
                add(stored)
            self._last = max(self._last, group[-1][0][-1].id)
            self._count = count
            self._first = first
        for _, fut in group:
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(StoreError(f"sqlite store {self.path}: {error}"))

    async def append(self, events: Appendable) -> list[StoredEvent]:
        if not self._accepting:
            raise StoreError(f"sqlite store {self.path}: {self._why_not}")
        received = now_ms()
        first = self._next
        stored = stamp_all(events, first, received, self.max_event_bytes)
        if not stored:
            return stored
        self._next += len(stored)
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue.put((stored, fut))
        await fut
        return stored

    # ------------------------------------------------------------------ reading
    def _read_events(
        self, sql: str, args: tuple[Any, ...], max_bytes: int | None = None
    ) -> list[StoredEvent]:
        """Rows ``(id, data)`` of ``sql`` as stored events (worker thread); with ``max_bytes``,
        the rows are read one by one and the read stops once they pass the budget
        (:func:`fit_budget`: at least one row), so a read never holds much more than that."""
        with self._read_lock:
            if self._read_conn is None:
                raise StoreError(f"sqlite store {self.path}: closed")
            try:
                cursor = self._read_conn.execute(sql, args)
                if max_bytes is None:
                    rows = cursor.fetchall()
                else:
                    rows, total = [], 0
                    for row in cursor:
                        total += len(row[1]) + 1
                        if total > max_bytes and rows:
                            break
                        rows.append(row)
                    cursor.close()
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: {exc}") from None
        try:
            return decode_rows(rows)
        except Exception as exc:
            raise StoreError(
                f"sqlite store {self.path}: corrupt event row: {type(exc).__name__}: {exc}"
            ) from exc

    async def recent(self, limit: int, max_bytes: int | None = None) -> list[StoredEvent]:
        cache = self._cache
        if (
            limit <= len(cache)
            or len(cache) >= self._count
            # the cached newest events alone pass the budget: what fits is among them
            or (max_bytes is not None and cache.bytes + len(cache) > max_bytes)
        ):
            return self._visible(cache.recent(limit, max_bytes))
        stored = await asyncio.to_thread(
            self._read_events,
            "SELECT id, data FROM events WHERE id <= ? ORDER BY id DESC LIMIT ?",
            (self._last, min(limit, self.retain)),
            max_bytes,
        )
        stored.reverse()
        return self._visible(stored)

    async def since(
        self, after_id: int, limit: int, max_bytes: int | None = None
    ) -> list[StoredEvent]:
        if self._cache.covers(after_id):
            return self._cache.since(after_id, limit, max_bytes)
        return await asyncio.to_thread(
            self._read_events,
            "SELECT id, data FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after_id, self._last, min(limit, self.retain)),
            max_bytes,
        )

    def _facet_values(self) -> dict[str, list[str]]:
        with self._facet_lock:
            first = self._w_first
            items = [list(seen.items()) for seen in self._facet_seen]
        if first is None:
            return {key: [] for _, key in FACET_FIELDS}
        return {
            key: sorted([value for value, newest in pairs if newest >= first])
            for (_, key), pairs in zip(FACET_FIELDS, items)
        }

    async def filter_options(self) -> dict[str, list[str]]:
        """Distinct values among the retained rows (tracked by the writer thread; listed and
        sorted in a worker thread, off the event loop)."""
        return await asyncio.to_thread(self._facet_values)

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(path=self.path, commits=self.commits, commit_errors=self.commit_errors)
        cache = self._cache
        out.update(cached=len(cache), cache_evicted_by_bytes=cache.evicted_by_bytes)
        return out
