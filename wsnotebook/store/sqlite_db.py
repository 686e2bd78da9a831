"""The SQLite store's database: schema, lock, and opening (runs in a worker thread).

Owns what happens between a path and a usable database: the exclusive lock on
``<path>.lock`` (:func:`lock_database`), WAL mode and the schema, the one write transaction
that creates the epoch, reads the id sequence and prunes to ``retain``
(:func:`prepare_database`), and loading what the store keeps in memory: the newest
``cache_events`` rows and the newest id of every facet value (:func:`open_database`).

Invariants: a failed open leaves nothing open (connections closed, lock released) and raises
:class:`~wsnotebook.errors.StoreError` naming the path; a successful one has committed a write
(the database is writable) and holds the lock until the writer thread closes ``lock_fd``.
Connections come from the caller's ``connect`` (so a store subclass can configure them).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import secrets
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, NamedTuple

from ..errors import StoreError
from ..events import decode_json
from .base import FACET_FIELDS, StoredEvent, stored_event

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "SQLITE_READONLY",
    "Opened",
    "decode_rows",
    "discard_late",
    "lock_database",
    "open_database",
    "prepare_database",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    source_app TEXT NOT NULL,
    session_id TEXT NOT NULL,
    hook_event_type TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS hitl (event_id INTEGER PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS hitl_track AFTER INSERT ON events
WHEN instr(CAST(NEW.data AS TEXT), '"humanInTheLoop"') > 0
    AND json_type(CAST(NEW.data AS TEXT), '$.humanInTheLoop') = 'object'
BEGIN
    INSERT OR REPLACE INTO hitl VALUES (json_extract(CAST(NEW.data AS TEXT), '$.id'), NEW.id);
END;
"""
#: ``hitl`` maps a question's event id to the row of its newest version (store/hitl.py); the
#: trigger keeps it in the transaction of every insert, so it is exactly as durable as the
#: events.  Rows whose version was pruned are ignored by readers (and dropped at open).  Cost:
#: ~1 us per inserted row on the writer thread (SQLite runs without the GIL), measured 5.0 ->
#: 6.1 us/row for ~700-byte events, 100 rows per transaction.
SCHEMA_VERSION = "1"
#: SQLite's primary result code for a write to a read-only database.
SQLITE_READONLY = 8


class Opened(NamedTuple):
    """What :func:`open_database` hands to ``SQLiteStore.open``."""

    lock_fd: int
    write_conn: sqlite3.Connection
    read_conn: sqlite3.Connection
    epoch: str
    last: int
    first: int | None
    rows: int
    cached: list[StoredEvent]
    facets: list[dict[str, int]]
    #: ``(event id, newest version's row id)`` of every question (``hitl`` table)
    updated: list[tuple[int, int]]

    def discard(self) -> None:
        """Close what was opened (an open that cannot complete)."""
        for conn in (self.read_conn, self.write_conn):
            with contextlib.suppress(Exception):
                conn.close()
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)


def discard_late(fut: asyncio.Future[Opened]) -> None:
    """Done-callback of an open whose caller was cancelled: close what it opened."""
    if not fut.cancelled() and fut.exception() is None:
        fut.result().discard()


def decode_rows(rows: list[Any]) -> list[StoredEvent]:
    """``(id, data)`` rows as stored events (raises on rows that are not event JSON)."""
    return [stored_event(int(i), decode_json(d), bytes(d)) for i, d in rows]


def lock_database(path: str) -> int:
    """Take the store's exclusive lock: ``<path>.lock`` (symlinks resolved), ``flock``.

    A sidecar file, not the database: SQLite locks the database with POSIX ``fcntl``
    locks, which a process loses on *every* descriptor of the file when it closes any one
    of them, so a descriptor of our own on the database could drop SQLite's locks."""
    lock_path = os.path.realpath(path) + ".lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise StoreError(
            f"sqlite store {path}: cannot open the lock file {lock_path}: {exc.strerror or exc}"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise StoreError(
                f"sqlite store {path}: is in use by another wsnotebook server "
                f"(it holds {lock_path})"
            ) from None
        raise StoreError(
            f"sqlite store {path}: cannot lock {lock_path}: {exc.strerror or exc}"
        ) from None
    return fd


def open_database(
    path: str,
    retain: int,
    cache_events: int,
    connect: Callable[[], sqlite3.Connection],
    cache_bytes: int | None = None,
) -> Opened:
    """Lock, open, check and load the database (worker thread).  On any failure closes
    everything it opened and raises StoreError naming the path.  The cache loaded is the
    newest ``cache_events`` rows, read newest first and stopped once their data passes
    ``cache_bytes`` (the newest row always)."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StoreError(f"sqlite store {path}: directory {directory} does not exist")
    lock_fd = lock_database(path)
    conns: list[sqlite3.Connection] = []
    try:
        conn = connect()
        conns.append(conn)
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"sqlite store {path}: cannot enable WAL mode ({mode})")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript(SCHEMA)
        epoch, last, first, count = prepare_database(conn, path, retain)
        facets: list[dict[str, int]] = [{} for _ in FACET_FIELDS]
        for *values, newest in conn.execute(
            "SELECT source_app, session_id, hook_event_type, MAX(id) FROM events"
            " GROUP BY source_app, session_id, hook_event_type"
        ):
            for seen, value in zip(facets, values):
                value = sys.intern(str(value))
                seen[value] = max(seen.get(value, 0), newest)
        rows: list[Any] = []
        total = 0
        cursor = conn.execute(
            "SELECT id, data FROM events ORDER BY id DESC LIMIT ?",
            (min(retain, cache_events),),
        )
        for row in cursor:
            total += len(row[1])
            if cache_bytes is not None and total > cache_bytes and rows:
                break
            rows.append(row)
        cursor.close()  # a statement left running would hold a read snapshot
        rows.reverse()
        cached = decode_rows(rows)
        updated = [(int(i), int(q)) for i, q in conn.execute("SELECT event_id, seq FROM hitl")]
        read_conn = connect()
        conns.append(read_conn)
    except BaseException as exc:
        for c in conns:
            with contextlib.suppress(Exception):
                c.close()
        os.close(lock_fd)
        if isinstance(exc, StoreError) or not isinstance(exc, Exception):
            raise
        if not isinstance(exc, sqlite3.Error):
            reason = f"{type(exc).__name__}: {exc}"
        elif getattr(exc, "sqlite_errorcode", 0) & 0xFF == SQLITE_READONLY:
            reason = f"cannot write: {exc}"
        else:
            reason = str(exc)
        raise StoreError(f"sqlite store {path}: {reason}") from exc
    return Opened(lock_fd, conn, read_conn, epoch, last, first, count, cached, facets, updated)


def prepare_database(
    conn: sqlite3.Connection, path: str, retain: int
) -> tuple[str, int, int | None, int]:
    """In one write transaction: create the epoch if missing, read the sequence, prune to
    ``retain`` and rewrite ``last_id`` (a committed write: proves the database writable).
    Returns ``(epoch, last_id, first_id, count)``."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(f"sqlite store {path}: cannot write: {exc}") from exc
    try:
        row = conn.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
        if row is None:
            row = (secrets.token_hex(8),)
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('epoch', ?), ('schema', ?)",
                (row[0], SCHEMA_VERSION),
            )
        epoch = str(row[0])
        hi, count = conn.execute("SELECT MAX(id), COUNT(*) FROM events").fetchone()
        seq = conn.execute("SELECT value FROM meta WHERE key='last_id'").fetchone()
        try:
            last = max(int(hi or 0), int(seq[0]) if seq else 0)
        except (TypeError, ValueError):
            raise StoreError(
                f"sqlite store {path}: corrupt sequence (meta last_id {seq[0]!r})"
            ) from None
        if count > retain:
            conn.execute(
                "DELETE FROM events WHERE id <= "
                "(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (retain,),
            )
            count = retain
        (lo,) = conn.execute("SELECT MIN(id) FROM events").fetchone()
        conn.execute("DELETE FROM hitl WHERE seq < ?", (lo or 0,))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_id', ?)", (str(last),))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {path}: cannot write: {exc}") from exc
    except BaseException:
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise
    return epoch, last, int(lo) if lo is not None else None, int(count)
