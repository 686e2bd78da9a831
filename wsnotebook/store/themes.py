"""Where the theme API (``/api/themes``, the seed dashboard's) keeps its themes.

Owns :class:`ThemeRepo` (the interface: plain, synchronous, thread-safe; the server calls it
from a worker thread), :class:`MemoryThemes` (a dict; the default of every store) and
:class:`SQLiteThemes` (a ``themes`` table in the SQLite store's own database file, with the
seed's columns; one short-lived connection per call, so it needs no lifecycle).  Searching,
sorting and paging are done here once for both (:func:`search`), with the seed's semantics.

A theme is a dict with the seed's fields: ``id``, ``name``, ``displayName``, ``description``,
``colors`` (object), ``isPublic``, ``authorId``, ``authorName``, ``createdAt``, ``updatedAt``
(epoch ms), ``tags`` (list), ``downloadCount``, ``rating``, ``ratingCount``.  Validation is the
server's (:mod:`wsnotebook.server.theme_rules`); a repo stores what it is given.

Bounds: at most :data:`MAX_THEMES` themes per store (an insert beyond it raises
:class:`~wsnotebook.errors.StoreError`); ``search`` returns at most ``limit`` (default: all).
"""

from __future__ import annotations

import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import orjson

from ..errors import StoreError

__all__ = ["MAX_THEMES", "SORT_COLUMNS", "MemoryThemes", "SQLiteThemes", "ThemeRepo", "search"]

Theme = dict[str, Any]

#: Themes one store keeps at most.
MAX_THEMES = 10_000
#: ``sortBy`` values and the field each sorts on (anything else: ``createdAt``).
SORT_COLUMNS = {
    "name": "name",
    "created": "createdAt",
    "updated": "updatedAt",
    "downloads": "downloadCount",
    "rating": "rating",
}
#: Fields ``update`` may change (the seed's ``allowedFields``).
UPDATABLE = ("displayName", "description", "colors", "isPublic", "updatedAt", "tags")


def search(themes: list[Theme], query: Mapping[str, Any]) -> list[Theme]:
    """The seed's ``getThemes``: filter by ``isPublic``, ``authorId`` and ``query`` (substring
    of name, displayName or description, case-insensitive), sort by ``sortBy``/``sortOrder``
    (default created, desc), then ``offset``/``limit``."""
    out = themes
    if query.get("isPublic") is not None:
        want = bool(query["isPublic"])
        out = [t for t in out if bool(t.get("isPublic")) == want]
    if query.get("authorId"):
        out = [t for t in out if t.get("authorId") == query["authorId"]]
    text = query.get("query")
    if text:
        needle = str(text).lower()
        out = [
            t
            for t in out
            if any(
                needle in str(t.get(k) or "").lower()
                for k in ("name", "displayName", "description")
            )
        ]
    key = SORT_COLUMNS.get(str(query.get("sortBy") or "created"), "createdAt")
    reverse = str(query.get("sortOrder") or "desc").lower() != "asc"
    out = sorted(out, key=lambda t: (t.get(key) is None, t.get(key) or 0), reverse=reverse)
    limit = query.get("limit")
    if limit:
        offset = query.get("offset") or 0
        out = out[offset : offset + limit]
    return out


class ThemeRepo(ABC):
    """The theme storage interface (thread-safe, synchronous)."""

    @abstractmethod
    def insert(self, theme: Theme) -> Theme: ...

    @abstractmethod
    def get(self, ident: str) -> Theme | None: ...

    @abstractmethod
    def all(self) -> list[Theme]: ...

    @abstractmethod
    def update(self, ident: str, fields: Mapping[str, Any]) -> bool:
        """Set the :data:`UPDATABLE` ones of ``fields``; False when none or no such theme."""

    @abstractmethod
    def delete(self, ident: str) -> bool: ...

    @abstractmethod
    def count_download(self, ident: str) -> None: ...

    def search(self, query: Mapping[str, Any]) -> list[Theme]:
        return search(self.all(), query)


class MemoryThemes(ThemeRepo):
    """Themes in a dict (lost with the process), under a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._themes: dict[str, Theme] = {}

    def insert(self, theme: Theme) -> Theme:
        with self._lock:
            if len(self._themes) >= MAX_THEMES:
                raise StoreError(f"theme limit reached ({MAX_THEMES})")
            self._themes[theme["id"]] = dict(theme)
        return theme

    def get(self, ident: str) -> Theme | None:
        with self._lock:
            theme = self._themes.get(ident)
            return None if theme is None else dict(theme)

    def all(self) -> list[Theme]:
        with self._lock:
            return [dict(t) for t in self._themes.values()]

    def update(self, ident: str, fields: Mapping[str, Any]) -> bool:
        changes = {k: v for k, v in fields.items() if k in UPDATABLE}
        with self._lock:
            theme = self._themes.get(ident)
            if theme is None or not changes:
                return False
            theme.update(changes)
            return True

    def delete(self, ident: str) -> bool:
        with self._lock:
            return self._themes.pop(ident, None) is not None

    def count_download(self, ident: str) -> None:
        with self._lock:
            theme = self._themes.get(ident)
            if theme is not None:
                theme["downloadCount"] = int(theme.get("downloadCount") or 0) + 1


_TABLE = """
CREATE TABLE IF NOT EXISTS themes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    displayName TEXT NOT NULL,
    description TEXT,
    colors TEXT NOT NULL,
    isPublic INTEGER NOT NULL DEFAULT 0,
    authorId TEXT,
    authorName TEXT,
    createdAt INTEGER NOT NULL,
    updatedAt INTEGER NOT NULL,
    tags TEXT,
    downloadCount INTEGER DEFAULT 0,
    rating REAL DEFAULT 0,
    ratingCount INTEGER DEFAULT 0
)
"""
_COLUMNS = (
    "id",
    "name",
    "displayName",
    "description",
    "colors",
    "isPublic",
    "authorId",
    "authorName",
    "createdAt",
    "updatedAt",
    "tags",
    "downloadCount",
    "rating",
    "ratingCount",
)


def _row_theme(row: tuple[Any, ...]) -> Theme:
    theme = dict(zip(_COLUMNS, row))
    theme["colors"] = orjson.loads(theme["colors"])
    theme["tags"] = orjson.loads(theme["tags"] or "[]")
    theme["isPublic"] = bool(theme["isPublic"])
    return theme


def _db_value(key: str, value: Any) -> Any:
    if key in ("colors", "tags"):
        return orjson.dumps(value).decode()
    if key == "isPublic":
        return 1 if value else 0
    return value


class _Result:
    """Rows and the change count of one statement (the connection is closed already)."""

    def __init__(self, rows: list[Any], changes: int) -> None:
        self.rows = rows
        self.changes = changes

    def fetchall(self) -> list[Any]:
        return self.rows


class SQLiteThemes(ThemeRepo):
    """The seed's ``themes`` table in the database at ``path`` (created on first use)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._created = False

    def _run(self, sql: str, args: tuple[Any, ...] = ()) -> _Result:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: themes: {exc}") from None
        try:
            if not self._created:
                conn.execute(_TABLE)
                self._created = True
            cursor = conn.execute(sql, args)
            rows = cursor.fetchall()
            changes = conn.total_changes
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: themes: {exc}") from None
        finally:
            conn.close()
        return _Result(rows, changes)

    def insert(self, theme: Theme) -> Theme:
        (count,) = self._run("SELECT COUNT(*) FROM themes").fetchall()[0]
        if count >= MAX_THEMES:
            raise StoreError(f"theme limit reached ({MAX_THEMES})")
        values = tuple(_db_value(k, theme.get(k)) for k in _COLUMNS)
        self._run(f"INSERT INTO themes VALUES ({', '.join('?' * len(_COLUMNS))})", values)
        return theme

    def get(self, ident: str) -> Theme | None:
        rows = self._run("SELECT * FROM themes WHERE id = ?", (ident,)).fetchall()
        return _row_theme(rows[0]) if rows else None

    def all(self) -> list[Theme]:
        return [_row_theme(r) for r in self._run("SELECT * FROM themes").fetchall()]

    def update(self, ident: str, fields: Mapping[str, Any]) -> bool:
        keys = [k for k in fields if k in UPDATABLE]
        if not keys:
            return False
        sets = ", ".join(f"{k} = ?" for k in keys)
        args = (*(_db_value(k, fields[k]) for k in keys), ident)
        return self._run(f"UPDATE themes SET {sets} WHERE id = ?", args).changes > 0

    def delete(self, ident: str) -> bool:
        return self._run("DELETE FROM themes WHERE id = ?", (ident,)).changes > 0

    def count_download(self, ident: str) -> None:
        self._run("UPDATE themes SET downloadCount = downloadCount + 1 WHERE id = ?", (ident,))
