"""Questions, updates and themes of the SQLite store (a mixin of :class:`~.sqlite.SQLiteStore`).

Owns what :mod:`.hitl` asks of a durable store: :meth:`append_update` (an update is one more
row, committed by the writer thread in order with the other appends: a 200 means it is in the
database), :meth:`latest` and :meth:`questions` (read through the ``hitl`` table the schema's
trigger keeps, :mod:`.sqlite_db`), the superseded versions left out of ``recent()``, and the
``themes`` table (:class:`~.themes.SQLiteThemes`, the same database file).

Durability: questions, their answers and the order of both survive a restart (the trigger
writes ``hitl`` in the insert's own transaction; ``open`` reads it back).  An event updated
more than once keeps only its newest and its first version out of ``recent()`` after a restart
(the intermediate ones are not recorded; HITL updates an event once).
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from typing import TYPE_CHECKING, Any

from ..errors import StoreError
from ..events import Event
from .base import StoredEvent
from .hitl import Versions, is_question, update_stored
from .sqlite_db import decode_rows
from .themes import SQLiteThemes, ThemeRepo

if TYPE_CHECKING:
    import queue

__all__ = ["SQLiteHitlMixin"]


class SQLiteHitlMixin:
    """HITL and themes for :class:`~.sqlite.SQLiteStore` (which provides these attributes)."""

    path: str
    max_event_bytes: int | None
    _accepting: bool
    _why_not: str
    _next: int
    _loop: asyncio.AbstractEventLoop | None
    _queue: queue.SimpleQueue[Any]
    _read_lock: threading.Lock
    _read_conn: sqlite3.Connection | None
    _first: int | None

    @property
    def _versions(self) -> Versions:
        versions = self.__dict__.get("_versions_state")
        if versions is None:
            versions = self.__dict__["_versions_state"] = Versions()
        return versions

    def _load_versions(self, pairs: list[tuple[int, int]]) -> None:
        """At open: forget the last open's versions, load the database's."""
        self.__dict__["_versions_state"] = versions = Versions()
        versions.load(pairs)

    def _visible(self, items: list[StoredEvent]) -> list[StoredEvent]:
        return self._versions.visible(items)

    async def append_update(self, ident: int, event: Event) -> StoredEvent:
        """Append a new version of event ``ident`` (one row, committed before this returns)."""
        if not self._accepting:
            raise StoreError(f"sqlite store {self.path}: {self._why_not}")
        stored = update_stored(self._next, ident, event, self.max_event_bytes)
        self._next += 1
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(([stored], fut))
        await fut
        self._versions.record(ident, stored.id)
        self._versions.prune(self._first)
        return stored

    def _read(self, sql: str, args: tuple[Any, ...]) -> list[StoredEvent]:
        """Rows ``(id, data)`` of ``sql`` as stored events (worker thread)."""
        with self._read_lock:
            if self._read_conn is None:
                raise StoreError(f"sqlite store {self.path}: closed")
            try:
                rows = self._read_conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: {exc}") from None
        try:
            return decode_rows(rows)
        except Exception as exc:
            raise StoreError(f"sqlite store {self.path}: corrupt event row: {exc}") from exc

    async def latest(self, ident: int) -> Event | None:
        rows = await asyncio.to_thread(
            self._read,
            "SELECT e.id, e.data FROM hitl h JOIN events e ON e.id = h.seq WHERE h.event_id = ?",
            (ident,),
        )
        if not rows:
            rows = await asyncio.to_thread(
                self._read, "SELECT id, data FROM events WHERE id = ?", (ident,)
            )
        for stored in rows:
            event = stored.event
            if event.get("id") == ident:
                return event
        return None

    async def questions(self, limit: int) -> list[Event]:
        rows = await asyncio.to_thread(
            self._read,
            "SELECT e.id, e.data FROM hitl h JOIN events e ON e.id = h.seq"
            " ORDER BY h.event_id DESC LIMIT ?",
            (max(0, limit),),
        )
        events = [s.event for s in reversed(rows)]
        return [e for e in events if is_question(e)]

    @property
    def themes(self) -> ThemeRepo:
        repo = self.__dict__.get("_themes_repo")
        if repo is None:
            repo = self.__dict__["_themes_repo"] = SQLiteThemes(self.path)
        return repo
