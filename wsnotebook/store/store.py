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
  database from a worker thread.  ``retain`` bounds the table exactly: each commit deletes the
  rows beyond the newest ``retain`` (in the writer thread), and so does ``open``.  One store at a
  time may have a database open (an exclusive lock on ``<path>.lock``).

Both stamp events the same way (:func:`stamp`): ``id`` (increasing from 1 in a fresh store),
``timestamp`` (epoch ms int) when absent, ``server_received`` (epoch ms float).  Each stored event
is encoded to JSON **once**; the bytes are reused by every reply, replay and broadcast.

A later backend (e.g. Redis Streams) implements :class:`Store`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
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
from typing import Any, NamedTuple, cast

import msgspec
import orjson

from ..errors import ConfigError, EventValidationError, LimitExceeded, ProtocolError, StoreError
from ..events import Event, decode_json, now_ms
from ..protocol import encode_event

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
    :class:`~wsnotebook.errors.EventValidationError` naming it and its field; one whose JSON
    *without the server's fields* is over ``max_bytes`` raises
    :class:`~wsnotebook.errors.LimitExceeded` (``limit="max_event_bytes"``): the rule of
    :func:`snapshot_events`, so every ingest path accepts the same events.  Either way nothing
    is stamped: no id is used up.
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
        if max(sizes) > max_bytes:
            # Rare: a stamped event over the limit.  Its JSON without our fields (shorter than
            # the stamped JSON, which holds the same keys and values plus ours) decides.
            over = {
                i: len(encode_event(_without_server_fields(events[i])))
                for i, size in enumerate(sizes)
                if size > max_bytes
            }
            i = max(over, key=over.__getitem__)
            if over[i] > max_bytes:
                raise _too_large(i, len(events), over[i], max_bytes)
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
            raise _too_large(sizes.index(biggest), len(items), biggest, max_bytes)
    return items


def _too_large(i: int, n: int, size: int, max_bytes: int) -> LimitExceeded:
    """The error for event ``i`` of ``n`` whose JSON is ``size`` bytes, over ``max_bytes``."""
    where = f"events[{i}]" if n > 1 else "event"
    return LimitExceeded(
        f"{where}: {size} bytes as JSON exceeds the limit of {max_bytes}",
        limit="max_event_bytes",
        value=size,
        bound=max_bytes,
    )


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
        """Release resources; appends already pending complete first, later ones raise
        :class:`StoreError`."""

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
        """Distinct values of ``source_app``, ``session_id``, ``hook_event_type`` among the
        retained events (sorted)."""

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
#: Facet entries (per field) below which the SQLite store never drops stale values.
_FACET_COMPACT_MIN = 4096
#: SQLite's primary result code for a write to a read-only database.
_SQLITE_READONLY = 8


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


class _Opened(NamedTuple):
    """What :meth:`SQLiteStore._open_sync` hands to :meth:`SQLiteStore.open`."""

    lock_fd: int
    write_conn: sqlite3.Connection
    read_conn: sqlite3.Connection
    epoch: str
    last: int
    first: int | None
    rows: int
    cached: list[StoredEvent]
    facets: list[dict[str, int]]

    def discard(self) -> None:
        """Close what was opened (an open that cannot complete)."""
        for conn in (self.read_conn, self.write_conn):
            with contextlib.suppress(Exception):
                conn.close()
        with contextlib.suppress(OSError):
            os.close(self.lock_fd)


def _discard_late(fut: asyncio.Future[_Opened]) -> None:
    """Done-callback of an open whose caller was cancelled: close what it opened."""
    if not fut.cancelled() and fut.exception() is None:
        fut.result().discard()


def _decode_rows(rows: list[Any]) -> list[StoredEvent]:
    """``(id, data)`` rows as stored events (raises on rows that are not event JSON)."""
    return [stored_event(int(i), decode_json(d), bytes(d)) for i, d in rows]


class SQLiteStore(Store):
    """SQLite (WAL) store with a writer thread doing group commit; see the module docstring.

    ``retain`` (default 100,000; 1..100,000,000) bounds the table exactly: every commit deletes
    the rows older than the newest ``retain`` ones (in the writer thread, in the same
    transaction), and so does :meth:`open` (a restart with a smaller ``retain`` takes effect at
    once).  So ``len()``, ``first_id``, ``recent``, ``since`` and ``filter_options`` (the
    distinct values among the retained events, as for :class:`MemoryStore`) never see more than
    ``retain`` events.  Epoch and id sequence persist across restarts.

    :meth:`open` takes an exclusive lock on ``<path>.lock`` (``flock``; the file is left in
    place) and holds it until :meth:`close` has finished the writer: a second store on the same
    database, in this process or another, fails to open instead of both writing the same ids.
    It also proves the database writable (a write committed at open) and reads the cached
    events back, so a read-only or corrupt database is a :class:`StoreError` naming the path at
    open, not a failure of every later write.  A failed open leaves nothing open.  An instance
    may be opened again after :meth:`close` (it reloads everything from the database).
    """

    kind = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, retain: int = 100_000) -> None:
        self.path = os.fspath(path)
        self.retain = _check_retain(retain)
        self._read_lock = threading.Lock()
        self._facet_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._read_conn: sqlite3.Connection | None = None
        self._generation = 0
        self._reset()

    def _reset(self) -> None:
        """Forget every piece of in-memory state (open() reloads it from the database)."""
        self.epoch = ""
        self._cache = _Ring(min(self.retain, SQLITE_CACHE_EVENTS), facets=False)
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
        self._facet_bound = _FACET_COMPACT_MIN  # entries that trigger dropping stale values
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

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    def _lock(self) -> int:
        """Take the store's exclusive lock: ``<path>.lock`` (symlinks resolved), ``flock``.

        A sidecar file, not the database: SQLite locks the database with POSIX ``fcntl``
        locks, which a process loses on *every* descriptor of the file when it closes any one
        of them, so a descriptor of our own on the database could drop SQLite's locks."""
        lock_path = os.path.realpath(self.path) + ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(
                f"sqlite store {self.path}: cannot open the lock file {lock_path}: "
                f"{exc.strerror or exc}"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreError(
                    f"sqlite store {self.path}: is in use by another wsnotebook server "
                    f"(it holds {lock_path})"
                ) from None
            raise StoreError(
                f"sqlite store {self.path}: cannot lock {lock_path}: {exc.strerror or exc}"
            ) from None
        return fd

    def _open_sync(self) -> _Opened:
        """Lock, open, check and load the database (worker thread).  On any failure closes
        everything it opened and raises StoreError naming the path."""
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise StoreError(f"sqlite store {self.path}: directory {directory} does not exist")
        lock_fd = self._lock()
        conns: list[sqlite3.Connection] = []
        try:
            conn = self._connect()
            conns.append(conn)
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"sqlite store {self.path}: cannot enable WAL mode ({mode})")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            epoch, last, first, count = self._prepare(conn)
            facets: list[dict[str, int]] = [{} for _ in FACET_FIELDS]
            for *values, newest in conn.execute(
                "SELECT source_app, session_id, hook_event_type, MAX(id) FROM events"
                " GROUP BY source_app, session_id, hook_event_type"
            ):
                for seen, value in zip(facets, values):
                    value = sys.intern(str(value))
                    seen[value] = max(seen.get(value, 0), newest)
            rows = conn.execute(
                "SELECT id, data FROM events ORDER BY id DESC LIMIT ?",
                (min(self.retain, SQLITE_CACHE_EVENTS),),
            ).fetchall()
            rows.reverse()
            cached = _decode_rows(rows)
            read_conn = self._connect()
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
            elif getattr(exc, "sqlite_errorcode", 0) & 0xFF == _SQLITE_READONLY:
                reason = f"cannot write: {exc}"
            else:
                reason = str(exc)
            raise StoreError(f"sqlite store {self.path}: {reason}") from exc
        return _Opened(lock_fd, conn, read_conn, epoch, last, first, count, cached, facets)

    def _prepare(self, conn: sqlite3.Connection) -> tuple[str, int, int | None, int]:
        """In one write transaction: create the epoch if missing, read the sequence, prune to
        ``retain`` and rewrite ``last_id`` (a committed write: proves the database writable).
        Returns ``(epoch, last_id, first_id, count)``."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: cannot write: {exc}") from exc
        try:
            row = conn.execute("SELECT value FROM meta WHERE key='epoch'").fetchone()
            if row is None:
                row = (secrets.token_hex(8),)
                conn.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('epoch', ?), ('schema', ?)",
                    (row[0], _SCHEMA_VERSION),
                )
            epoch = str(row[0])
            hi, count = conn.execute("SELECT MAX(id), COUNT(*) FROM events").fetchone()
            seq = conn.execute("SELECT value FROM meta WHERE key='last_id'").fetchone()
            try:
                last = max(int(hi or 0), int(seq[0]) if seq else 0)
            except (TypeError, ValueError):
                raise StoreError(
                    f"sqlite store {self.path}: corrupt sequence (meta last_id {seq[0]!r})"
                ) from None
            if count > self.retain:
                conn.execute(
                    "DELETE FROM events WHERE id <= "
                    "(SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (self.retain,),
                )
                count = self.retain
            (lo,) = conn.execute("SELECT MIN(id) FROM events").fetchone()
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('last_id', ?)", (str(last),))
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: cannot write: {exc}") from exc
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return epoch, last, int(lo) if lo is not None else None, int(count)

    async def open(self) -> None:
        if self._thread is not None:
            raise StoreError(f"sqlite store {self.path}: already open")
        self._reset()
        self._generation += 1
        loop = asyncio.get_running_loop()
        task = loop.run_in_executor(None, self._open_sync)
        try:
            opened = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_discard_late)
            raise
        self._loop = loop
        self.epoch = opened.epoch
        self._last = opened.last
        self._next = opened.last + 1
        self._first = opened.first
        self._count = self._w_count = opened.rows
        self._w_first = opened.first
        self._cache.add(opened.cached)
        with self._facet_lock:
            self._facet_seen = opened.facets
            self._facet_bound = max(_FACET_COMPACT_MIN, 2 * max(map(len, opened.facets)))
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
                self._facet_bound = max(_FACET_COMPACT_MIN, 2 * max(map(len, seen_all)))

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
    def _read_events(self, sql: str, args: tuple[Any, ...]) -> list[StoredEvent]:
        """Rows ``(id, data)`` of ``sql`` as stored events (worker thread)."""
        with self._read_lock:
            if self._read_conn is None:
                raise StoreError(f"sqlite store {self.path}: closed")
            try:
                rows = self._read_conn.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"sqlite store {self.path}: {exc}") from None
        try:
            return _decode_rows(rows)
        except Exception as exc:
            raise StoreError(
                f"sqlite store {self.path}: corrupt event row: {type(exc).__name__}: {exc}"
            ) from exc

    async def recent(self, limit: int) -> list[StoredEvent]:
        if limit <= len(self._cache) or len(self._cache) >= self._count:
            return self._cache.recent(limit)
        stored = await asyncio.to_thread(
            self._read_events,
            "SELECT id, data FROM events WHERE id <= ? ORDER BY id DESC LIMIT ?",
            (self._last, min(limit, self.retain)),
        )
        stored.reverse()
        return stored

    async def since(self, after_id: int, limit: int) -> list[StoredEvent]:
        if self._cache.covers(after_id):
            return self._cache.since(after_id, limit)
        return await asyncio.to_thread(
            self._read_events,
            "SELECT id, data FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
            (after_id, self._last, min(limit, self.retain)),
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
        return out
