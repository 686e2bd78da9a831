"""Where the server keeps events: one small interface, two backends.

* :class:`MemoryStore` (``store="memory"``, the default): a bounded ring of the latest
  ``retain`` events.  Its ``epoch`` is random per instance, so a restarted kernel is a new epoch
  and resuming clients are told (``reset``/gap) instead of silently missing events.
* :class:`SQLiteStore` (``store="sqlite:///path/to/events.db"``): SQLite in WAL mode.  The epoch
  and the id sequence are persisted in the database, so a restart keeps both and clients resume
  seamlessly.  Writes never block the event loop: a dedicated writer thread commits with **group
  commit** (every append waiting while a commit runs is committed together in the next
  transaction).  ``append`` returns only **after the commit**, so an HTTP 200 means the event is
  in the database (``synchronous=NORMAL`` in WAL mode: it survives a process or kernel crash; a
  power cut may lose the last transactions).  The latest events (up to 10,000) are also cached in
  memory so ``initial`` snapshots and short resumes never touch the disk; older replays read the
  database from a worker thread.  ``retain`` bounds the table too: older rows are pruned in the
  writer thread.

Both stamp events the same way (:func:`stamp`): ``id`` (increasing from 1 in a fresh store),
``timestamp`` (epoch ms int) when absent, ``server_received`` (epoch ms float).  Each stored event
is encoded to JSON **once**; the bytes are reused by every reply, replay and broadcast.

A later backend (e.g. Redis Streams) implements :class:`Store`.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import operator
import os
import queue
import secrets
import sqlite3
import sys
import threading
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import attrgetter
from typing import Any, cast

import msgspec
import orjson

from ._protocol import encode_event
from .errors import ConfigError, EventValidationError, LimitExceeded, ProtocolError, StoreError
from .events import Event, decode_json, now_ms

__all__ = [
    "FACET_FIELDS",
    "Encoded",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "StoredEvent",
    "open_store",
    "snapshot_events",
    "stamp",
    "stamp_all",
    "stored_event",
]

log = logging.getLogger("wsnotebook")

#: Fields reported by ``GET /events/filter-options`` (and their reply keys).
FACET_FIELDS: tuple[tuple[str, str], ...] = (
    ("source_app", "source_apps"),
    ("session_id", "session_ids"),
    ("hook_event_type", "hook_event_types"),
)

#: Added plus evicted events a memory ring collects before it folds them into its facet counts.
_FOLD_EVERY = 4096

#: Bounds of the ``retain`` option (events kept by a store).
MIN_RETAIN = 1
MAX_RETAIN = 100_000_000


class StoredEvent(msgspec.Struct, gc=False, frozen=True):
    """One stored event: its ``id``, its JSON ``encoded`` once (exact-size ``bytes``), and the
    three facet fields (interned strings).  Build one with :func:`stored_event`.

    The event dict is *not* retained: a retained hook event costs its JSON bytes plus ~100 B
    here, instead of ~6 KB for the dict tree plus orjson's over-allocated output buffer (orjson
    returns ``bytes`` with up to ~4 KiB of slack, so ``stamp`` copies them to exact size).
    ``.event`` decodes a fresh dict on demand.

    Not tracked by the cyclic garbage collector (``gc=False``: it holds only an int, bytes and
    strings, so it can never be part of a cycle).  A memory store retains 100,000 of these by
    default; as tracked objects they made every full collection in a kernel walk them all
    (~85 ms with the GIL held, about every 3 s at 10k ev/s) and, promoted by the thousands a
    second, they were what triggered those collections.
    """

    id: int
    encoded: bytes
    source_app: str
    session_id: str
    hook_event_type: str

    @property
    def event(self) -> Event:
        """A fresh dict decoded from ``encoded``."""
        return cast(Event, orjson.loads(self.encoded))

    def __repr__(self) -> str:
        return f"StoredEvent(id={self.id})"


def _facets(event: Event) -> tuple[str, str, str]:
    """The event's three facet fields, interned."""
    app, session, hook = event["source_app"], event["session_id"], event["hook_event_type"]
    try:
        return sys.intern(app), sys.intern(session), sys.intern(hook)
    except TypeError:  # a str subclass (a str-valued Enum, say): intern takes exact str only
        # ``[:]`` of a str subclass is an exact str of the same characters (``str()`` would call
        # ``__str__``, which an Enum overrides); orjson encodes such values the same way.
        return sys.intern(app[:]), sys.intern(session[:]), sys.intern(hook[:])


def stored_event(ident: int, event: Event, encoded: bytes) -> StoredEvent:
    """The :class:`StoredEvent` of a validated ``event`` whose JSON is ``encoded``."""
    return StoredEvent(ident, encoded, *_facets(event))


class Encoded(msgspec.Struct, gc=False, frozen=True):
    """A validated event encoded ahead of ingest (:func:`snapshot_events`): its JSON without the
    server's fields, its facets, and whether the server fills ``timestamp``.  Stores stamp it by
    splicing ``id`` (and ``timestamp``) and ``server_received`` into the JSON: the same fields
    and values :func:`stamp` gives the event (they end the object instead of keeping a
    client-sent ``id``'s place)."""

    encoded: bytes
    source_app: str
    session_id: str
    hook_event_type: str
    fill_timestamp: bool


def stamp(event: Event, ident: int, received_ms: float) -> StoredEvent:
    """Return the stored form of a validated ``event``: ``id`` set, ``timestamp`` filled (int
    epoch ms) when absent or null, ``server_received`` set; unknown fields kept.  The caller's
    dict is not modified."""
    out = dict(event)
    out["id"] = ident
    if out.get("timestamp") is None:
        out["timestamp"] = int(received_ms)
    out["server_received"] = received_ms
    # bytes(memoryview(...)) copies into an exact-size object, dropping orjson's slack.
    return stored_event(ident, out, bytes(memoryview(encode_event(out))))


#: What a store appends: validated event dicts, or events encoded ahead (:class:`Encoded`).
Appendable = Sequence[Event] | Sequence[Encoded]

#: Bytes the server's own fields (``id``, ``timestamp``, ``server_received``) may add to an
#: event: a stored event may exceed the ``max_event_bytes`` its sender was held to by this much.
STAMP_SLACK = 128


def stamp_all(
    events: Appendable,
    first: int,
    received_ms: float,
    max_bytes: int | None = None,
) -> list[StoredEvent]:
    """:func:`stamp` every event (ids ``first``, ``first + 1``, ...), all or nothing.  A list
    of :class:`Encoded` items (already checked) is stamped by splicing, with no re-encoding.

    An event that validated but cannot be encoded (a ``Decimal``, nesting deeper than orjson
    writes (254), a lone surrogate, an int beyond 64 bits ...) raises
    :class:`~wsnotebook.errors.EventValidationError` naming it and its field; one whose JSON is
    over ``max_bytes`` (+ :data:`STAMP_SLACK`) raises :class:`~wsnotebook.errors.LimitExceeded`
    (``limit="max_event_bytes"``).  Either way nothing is stamped: no id is used up.
    """
    if events and type(events[0]) is Encoded:
        return _stamp_encoded(cast(Sequence[Encoded], events), first, received_ms)
    events = cast(Sequence[Event], events)
    try:
        stored = [stamp(ev, first + i, received_ms) for i, ev in enumerate(events)]
    except ProtocolError:
        raise _unencodable(events) from None
    if max_bytes is not None and stored:
        sizes = [len(s.encoded) for s in stored]
        biggest = max(sizes)
        if biggest > max_bytes + STAMP_SLACK:
            i = sizes.index(biggest)
            where = f"events[{i}]" if len(events) > 1 else "event"
            raise LimitExceeded(
                f"{where}: {biggest} bytes as JSON exceeds the limit of {max_bytes}",
                limit="max_event_bytes",
                value=biggest,
                bound=max_bytes,
            )
    return stored


#: Fields the server sets: a snapshot leaves them out of its JSON and splices them in at ingest.
_SERVER_FIELDS = frozenset(("id", "server_received"))
_FACET_GETTERS = tuple(
    operator.itemgetter(name) for name in ("source_app", "session_id", "hook_event_type")
)


def snapshot_events(events: Sequence[Event], max_bytes: int | None = None) -> list[Encoded]:
    """Validated ``events`` encoded now, as they will be stored (:class:`Encoded`).

    For events handed over to be stored later (``Server.publish_nowait``): whatever the caller
    does to its dicts afterwards, what is stored is what was checked, and an event that cannot
    be stored is refused at once (the checks of :func:`stamp_all`: EventValidationError when
    JSON cannot encode it, LimitExceeded over ``max_bytes``) instead of failing the later ingest
    it would share with other callers' events.  Costs one encode per event here (~0.7 us) and
    saves the store its dict copy and encode (it splices the stamps into these bytes).
    """
    if not events:
        return []
    timestamps = list(map(dict.get, events, repeat("timestamp")))
    if not _SERVER_FIELDS.isdisjoint(set().union(*events)) or (
        None in timestamps and any(map(operator.contains, events, repeat("timestamp")))
    ):
        # Rare: drop what the server replaces (a null timestamp is filled like an absent one).
        events = list(map(_without_server_fields, events))
    try:
        encoded = list(map(encode_event, events))
    except ProtocolError:
        raise _unencodable(events) from None
    try:
        facets = [list(map(sys.intern, map(get, events))) for get in _FACET_GETTERS]
    except TypeError:  # a str subclass somewhere: the careful way
        facets = [list(col) for col in zip(*map(_facets, events))]
    fill = [t is None for t in timestamps]
    items = list(map(Encoded, encoded, *facets, fill))
    if max_bytes is not None and items:
        sizes = [len(item.encoded) for item in items]
        biggest = max(sizes)
        if biggest > max_bytes:
            i = sizes.index(biggest)
            where = f"events[{i}]" if len(items) > 1 else "event"
            raise LimitExceeded(
                f"{where}: {biggest} bytes as JSON exceeds the limit of {max_bytes}",
                limit="max_event_bytes",
                value=biggest,
                bound=max_bytes,
            )
    return items


def _without_server_fields(event: Event) -> Event:
    out = {k: v for k, v in event.items() if k not in _SERVER_FIELDS}
    if "timestamp" in out and out["timestamp"] is None:
        del out["timestamp"]
    return out


def _stamp_encoded(items: Sequence[Encoded], first: int, received_ms: float) -> list[StoredEvent]:
    """:func:`stamp_all` for :class:`Encoded` items: one bytes formatting per event."""
    received = orjson.dumps(received_ms)
    tail = b',"server_received":' + received + b"}"
    filled = b',"timestamp":%d' % int(received_ms) + tail
    return [
        StoredEvent(
            first + i,
            b'%b,"id":%d%b' % (it.encoded[:-1], first + i, filled if it.fill_timestamp else tail),
            it.source_app,
            it.session_id,
            it.hook_event_type,
        )
        for i, it in enumerate(items)
    ]


def _unencodable(events: Sequence[Event]) -> EventValidationError:
    """The error for the first event of ``events`` that JSON cannot encode (error path only)."""
    for i, ev in enumerate(events):
        try:
            encode_event(ev)
        except ProtocolError as exc:
            prefix = f"events[{i}]." if len(events) > 1 else ""
            for field, value in ev.items():
                try:
                    encode_event({"v": value})
                except ProtocolError as inner:
                    return EventValidationError(f"{prefix}{field}: {inner}", field=str(field))
            return EventValidationError(f"{prefix.rstrip('.') or 'event'}: {exc}", field="")
    return EventValidationError("event: cannot encode as JSON", field="")  # pragma: no cover


class Store(ABC):
    """The store interface the server uses (all methods run on the server's event loop).

    Ids are assigned by the store, increasing; ``last_id`` is the id of the newest durable event
    (0 when empty) and ``first_id`` the oldest retained one (``None`` when empty).
    """

    kind: str = "abstract"
    epoch: str = ""
    retain: int = 0
    #: Largest event (JSON bytes, before the server's own fields) ``append`` accepts; None: no
    #: limit.  The server sets its ``max_event_bytes`` here, so every ingest path (POST bodies
    #: of one event or many, WebSocket ``publish``, ``Server.publish``) is held to it.
    max_event_bytes: int | None = None

    @property
    @abstractmethod
    def last_id(self) -> int: ...

    @property
    @abstractmethod
    def first_id(self) -> int | None: ...

    @abstractmethod
    def __len__(self) -> int: ...

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Open resources (raise :class:`StoreError` when unusable)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources; pending appends complete first."""

    @abstractmethod
    async def append(self, events: Appendable) -> list[StoredEvent]:
        """Stamp and store validated events; return them once stored (durably, when the
        backend is durable).  Raises :class:`StoreError` on failure, and before storing
        anything EventValidationError / LimitExceeded as :func:`stamp_all` does."""

    @abstractmethod
    async def recent(self, limit: int) -> list[StoredEvent]:
        """The latest ``limit`` events, oldest first."""

    @abstractmethod
    async def since(self, after_id: int, limit: int) -> list[StoredEvent]:
        """Up to ``limit`` retained events with ``id > after_id``, in id order."""

    @abstractmethod
    async def filter_options(self) -> dict[str, list[str]]:
        """Distinct values of ``source_app``, ``session_id``, ``hook_event_type`` (sorted)."""

    def stats(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "epoch": self.epoch,
            "retained": len(self),
            "first_id": self.first_id,
            "last_id": self.last_id,
            "retain": self.retain,
        }


def _check_retain(retain: int) -> int:
    if isinstance(retain, bool) or not isinstance(retain, int):
        raise ConfigError(f"retain: expected integer, got {type(retain).__name__}")
    if not MIN_RETAIN <= retain <= MAX_RETAIN:
        raise ConfigError(f"retain must be in {MIN_RETAIN}..{MAX_RETAIN}, got {retain}")
    return retain


class _Ring:
    """Bounded ring of :class:`StoredEvent` with contiguous-id lookup and facet counts.

    Facet counts are folded in lazily: added and evicted events wait in two lists (at most
    ``_FOLD_EVERY`` together) and are counted with C-level passes (``Counter.update``, then the
    evicted ones subtracted per distinct value) when the lists fill up or the counts are read.
    Counting per event and field in Python cost ~2 us per event."""

    def __init__(self, size: int, *, facets: bool) -> None:
        self.size = size
        self.items: deque[StoredEvent] = deque()
        self._facets: list[tuple[Callable[[StoredEvent], str], Counter[str]]] | None = (
            [(attrgetter(name), Counter()) for name, _ in FACET_FIELDS] if facets else None
        )
        self._added: list[StoredEvent] = []
        self._evicted: list[StoredEvent] = []

    def __len__(self) -> int:
        return len(self.items)

    def add(self, stored: Sequence[StoredEvent]) -> None:
        items = self.items
        items.extend(stored)
        over = len(items) - self.size
        if self._facets is None:
            for _ in range(over):
                items.popleft()
            return
        added, evicted = self._added, self._evicted
        added.extend(stored)
        if over > 0:
            evicted.extend([items.popleft() for _ in range(over)])
        if len(added) + len(evicted) >= _FOLD_EVERY:
            self._fold()

    def _fold(self) -> None:
        assert self._facets is not None
        added, evicted = self._added, self._evicted
        self._added, self._evicted = [], []
        for get, counts in self._facets:
            counts.update(map(get, added))
            for value, n in Counter(map(get, evicted)).items():
                left = counts[value] - n
                if left:
                    counts[value] = left
                else:
                    del counts[value]

    def recent(self, limit: int) -> list[StoredEvent]:
        n = len(self.items)
        if limit >= n:
            return list(self.items)
        return list(itertools.islice(self.items, n - max(limit, 0), n))

    def covers(self, after_id: int) -> bool:
        """True when every retained event with ``id > after_id`` that exists is in the ring."""
        return bool(self.items) and after_id + 1 >= self.items[0].id

    def since(self, after_id: int, limit: int) -> list[StoredEvent]:
        items = self.items
        if not items or after_id >= items[-1].id:
            return []
        first = items[0].id
        # ids in a ring are increasing; they are contiguous unless a commit failed (SQLite),
        # so start from the contiguous guess and correct forwards/backwards.
        start = max(0, min(len(items) - 1, after_id + 1 - first))
        while start > 0 and items[start - 1].id > after_id:
            start -= 1
        while start < len(items) and items[start].id <= after_id:
            start += 1
        return list(itertools.islice(items, start, start + limit))

    def facet_values(self) -> dict[str, list[str]]:
        assert self._facets is not None
        self._fold()
        return {key: sorted(counts) for (_, key), (_, counts) in zip(FACET_FIELDS, self._facets)}


class MemoryStore(Store):
    """Bounded in-memory ring of the latest ``retain`` events (default 100,000; bounds
    1..100,000,000).  Oldest events are evicted first.  Epoch: random per instance."""

    kind = "memory"

    def __init__(self, *, retain: int = 100_000) -> None:
        self.retain = _check_retain(retain)
        self.epoch = secrets.token_hex(8)
        self._ring = _Ring(self.retain, facets=True)
        self._last = 0

    @property
    def last_id(self) -> int:
        return self._last

    @property
    def first_id(self) -> int | None:
        return self._ring.items[0].id if self._ring.items else None

    def __len__(self) -> int:
        return len(self._ring)

    def append_now(self, events: Appendable) -> list[StoredEvent]:
        """Synchronous append (the memory store never waits)."""
        received = now_ms()
        first = self._last + 1
        stored = stamp_all(events, first, received, self.max_event_bytes)
        self._last += len(stored)
        self._ring.add(stored)
        return stored

    async def append(self, events: Appendable) -> list[StoredEvent]:
        return self.append_now(events)

    async def recent(self, limit: int) -> list[StoredEvent]:
        return self._ring.recent(limit)

    async def since(self, after_id: int, limit: int) -> list[StoredEvent]:
        return self._ring.since(after_id, limit)

    async def filter_options(self) -> dict[str, list[str]]:
        return self._ring.facet_values()


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    source_app TEXT NOT NULL,
    session_id TEXT NOT NULL,
    hook_event_type TEXT NOT NULL,
    data BLOB NOT NULL
);
"""
_SCHEMA_VERSION = "1"
#: Most events kept in the SQLite store's in-memory cache of recent events.
SQLITE_CACHE_EVENTS = 10_000
#: Most appends (requests) committed in one group-commit transaction.
SQLITE_GROUP_MAX = 1_000

_STOP = object()


def parse_store_url(store: str) -> tuple[str, str]:
    """``"memory"`` -> ``("memory", "")``; ``"sqlite:///rel.db"`` -> ``("sqlite", "rel.db")``;
    ``"sqlite:////abs.db"`` -> ``("sqlite", "/abs.db")``.  Anything else: ConfigError."""
    if store == "memory":
        return "memory", ""
    if isinstance(store, str) and store.startswith("sqlite:///"):
        path = store[len("sqlite:///") :]
        if not path:
            raise ConfigError("store: sqlite URL needs a path, e.g. sqlite:///events.db")
        return "sqlite", path
    raise ConfigError(f"store: expected 'memory' or 'sqlite:///path/to/file.db', got {store!r}")


def open_store(store: str | Store, *, retain: int) -> Store:
    """Build a store from a ``serve(store=...)`` value (a URL string or a :class:`Store`)."""
    if isinstance(store, Store):
        return store
    kind, path = parse_store_url(store)
    if kind == "memory":
        return MemoryStore(retain=retain)
    return SQLiteStore(path, retain=retain)


class SQLiteStore(Store):
    """SQLite (WAL) store with a writer thread doing group commit; see the module docstring.

    ``retain`` (default 100,000; 1..100,000,000) bounds the table: the writer thread prunes rows
    older than the newest ``retain`` ones.  Epoch and id sequence persist across restarts.
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, retain: int = 100_000) -> None:
        self.path = os.fspath(path)
        self.retain = _check_retain(retain)
        self.epoch = ""
        self._cache = _Ring(min(self.retain, SQLITE_CACHE_EVENTS), facets=False)
        self._facets: dict[str, set[str]] = {name: set() for name, _ in FACET_FIELDS}
        self._next = 1  # next id to assign
        self._last = 0  # newest committed id
        self._first: int | None = None
        self._count = 0
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._read_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
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

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _open_sync(self) -> list[StoredEvent]:
        try:
            directory = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(directory):
                raise StoreError(f"sqlite store {self.path}: directory {directory} does not exist")
            conn = self._connect()
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise StoreError(f"sqlite store {self.path}: cannot enable WAL mode ({mode})")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.executescript(_SCHEMA)
                row = conn.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
                if row is None:
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('epoch', ?), ('schema', ?)",
                        (secrets.token_hex(8), _SCHEMA_VERSION),
                    )
                    conn.execute("COMMIT")
                    row = conn.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
                self.epoch = str(row[0])
                lo, hi, count = conn.execute(
                    "SELECT MIN(id), MAX(id), COUNT(*) FROM events"
                ).fetchone()
                seq = conn.execute("SELECT value FROM meta WHERE key='last_id'").fetchone()
                self._last = max(int(hi or 0), int(seq[0]) if seq else 0)
                self._next = self._last + 1
                self._first = int(lo) if lo is not None else None
                self._count = int(count)
                for name, _ in FACET_FIELDS:
                    self._facets[name] = {
                        r[0] for r in conn.execute(f"SELECT DISTINCT {name} FROM events")
                    }
                rows = conn.execute(
                    "SELECT id, data FROM events ORDER BY id DESC LIMIT ?", (self._cache.size,)
                ).fetchall()
            except BaseException:
                conn.close()
                raise
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {exc}") from None
        self._write_conn = conn
        self._read_conn = self._connect()
        return [stored_event(int(i), decode_json(d), bytes(d)) for i, d in reversed(rows)]

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        cached = await asyncio.to_thread(self._open_sync)
        self._cache.add(cached)
        self._thread = threading.Thread(
            target=self._writer,
            name=f"wsnotebook-sqlite-{os.path.basename(self.path)}",
            daemon=True,
        )
        self._thread.start()

    async def close(self) -> None:
        thread = self._thread
        if thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(thread.join, 30)
            self._thread = None
        if self._read_conn is not None:
            with self._read_lock:
                self._read_conn.close()
            self._read_conn = None

    # ------------------------------------------------------------------ writing
    def _writer(self) -> None:
        conn = self._write_conn
        stop = False
        try:
            while not stop:
                item = self._queue.get()
                if item is _STOP:
                    break
                group = [item]
                while len(group) < SQLITE_GROUP_MAX:
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stop = True
                        break
                    group.append(nxt)
                self._commit(conn, group)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, group: list[Any]) -> None:
        rows = [
            (
                s.id,
                s.source_app,
                s.session_id,
                s.hook_event_type,
                s.encoded,
            )
            for stored, _ in group
            for s in stored
        ]
        top = max(s.id for stored, _ in group for s in stored)
        error: BaseException | None = None
        pruned_first: int | None = None
        try:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_id', ?)", (str(top),))
            if self._count + len(rows) > self.retain + max(1, self.retain // 10):
                conn.execute("DELETE FROM events WHERE id <= ?", (top - self.retain,))
                pruned_first = conn.execute("SELECT MIN(id) FROM events").fetchone()[0]
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
        loop = self._loop
        assert loop is not None
        try:
            loop.call_soon_threadsafe(self._committed, group, error, len(rows), pruned_first)
        except RuntimeError:  # loop closed at interpreter exit
            pass

    def _committed(
        self, group: list[Any], error: BaseException | None, n: int, pruned_first: int | None
    ) -> None:
        if error is None:
            for stored, _ in group:
                self._cache.add(stored)
                ev_last = stored[-1].id
                if ev_last > self._last:
                    self._last = ev_last
                if self._first is None:
                    self._first = stored[0].id
                for name, values in self._facets.items():
                    values.update(map(attrgetter(name), stored))
            self._count += n
            if pruned_first is not None:
                self._count = self._last - int(pruned_first) + 1 if self._last else 0
                self._first = int(pruned_first)
        for _, fut in group:
            if fut.done():
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(StoreError(f"sqlite store {self.path}: {error}"))

    async def append(self, events: Appendable) -> list[StoredEvent]:
        if self._thread is None:
            raise StoreError(f"sqlite store {self.path}: not open")
        received = now_ms()
        first = self._next
        stored = stamp_all(events, first, received, self.max_event_bytes)
        self._next += len(stored)
        assert self._loop is not None
        fut: asyncio.Future[None] = self._loop.create_future()
        self._queue.put((stored, fut))
        await fut
        return stored

    # ------------------------------------------------------------------ reading
    def _read(self, sql: str, args: tuple[Any, ...]) -> list[Any]:
        with self._read_lock:
            if self._read_conn is None:
                raise StoreError(f"sqlite store {self.path}: closed")
            try:
                return self._read_conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: {exc}") from None

    async def recent(self, limit: int) -> list[StoredEvent]:
        if limit <= len(self._cache) or len(self._cache) >= self._count:
            return self._cache.recent(limit)
        rows = await asyncio.to_thread(
            self._read,
            "SELECT id, data FROM events WHERE id <= ? ORDER BY id DESC LIMIT ?",
            (self._last, limit),
        )
        return [stored_event(int(i), decode_json(d), bytes(d)) for i, d in reversed(rows)]

    async def since(self, after_id: int, limit: int) -> list[StoredEvent]:
        if self._cache.covers(after_id):
            return self._cache.since(after_id, limit)
        rows = await asyncio.to_thread(
            self._read,
            "SELECT id, data FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after_id, self._last, limit),
        )
        return [stored_event(int(i), decode_json(d), bytes(d)) for i, d in rows]

    async def filter_options(self) -> dict[str, list[str]]:
        return {key: sorted(self._facets[name]) for name, key in FACET_FIELDS}

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(path=self.path, commits=self.commits, commit_errors=self.commit_errors)
        return out
