"""The store interface and the stored-event types every backend shares.

Owns: :class:`Store` (the interface the server uses; all methods run on the server's event
loop), :class:`StoredEvent` (an event as stored: its id, its JSON encoded once, its three facet
fields interned), :class:`Encoded` (an event encoded ahead of ingest), the facet fields
(:data:`FACET_FIELDS`), the bounds of ``retain`` (:data:`MIN_RETAIN`..:data:`MAX_RETAIN`,
checked by :func:`check_retain`) and of ``retain_bytes`` (:data:`MIN_RETAIN_BYTES`..
:data:`MAX_RETAIN_BYTES`, default :data:`DEFAULT_RETAIN_BYTES`, checked by
:func:`check_retain_bytes`), and :func:`fit_budget` (how many events of a read fit a byte budget).

Invariants: ids are assigned by the store and increase; ``last_id`` is the newest durable id (0
when empty), ``first_id`` the oldest retained one (``None`` when empty); a store never reports
more than ``retain`` events.  Reads given ``max_bytes`` never return more than that many bytes of
encoded events (each counted with one separator byte), except that they return at least one
event when any matches.  Stored events are immutable and hold no event dict (``.event``
decodes a fresh one).
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import msgspec
import orjson

from .._validate import integer
from ..events import Event
from .themes import MemoryThemes, ThemeRepo

__all__ = [
    "FACET_FIELDS",
    "DEFAULT_RETAIN_BYTES",
    "MAX_RETAIN",
    "MAX_RETAIN_BYTES",
    "MIN_RETAIN",
    "MIN_RETAIN_BYTES",
    "Appendable",
    "Encoded",
    "Store",
    "StoredEvent",
    "check_retain",
    "check_retain_bytes",
    "event_facets",
    "fit_budget",
    "stored_event",
]

#: Fields reported by ``GET /events/filter-options`` (and their reply keys).
FACET_FIELDS: tuple[tuple[str, str], ...] = (
    ("source_app", "source_apps"),
    ("session_id", "session_ids"),
    ("hook_event_type", "hook_event_types"),
)


#: Bounds of the ``retain`` option (events kept by a store).
MIN_RETAIN = 1
MAX_RETAIN = 100_000_000

#: Default and bounds of the ``retain_bytes`` option: bytes of encoded events (their JSON, as
#: stored and sent) a memory store retains, and the SQLite store caches in memory.  256 MiB
#: suits a laptop kernel; the per-event overhead (~150 B) is bounded by ``retain`` instead.
DEFAULT_RETAIN_BYTES = 256 << 20
MIN_RETAIN_BYTES = 1 << 10
MAX_RETAIN_BYTES = 1 << 40


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


def event_facets(event: Event) -> tuple[str, str, str]:
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
    return StoredEvent(ident, encoded, *event_facets(event))


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


#: What a store appends: validated event dicts, or events encoded ahead (:class:`Encoded`).
Appendable = Sequence[Event] | Sequence[Encoded]


class Store(ABC):
    """The store interface the server uses (all methods run on the server's event loop).

    Ids are assigned by the store, increasing; ``last_id`` is the id of the newest durable event
    (0 when empty) and ``first_id`` the oldest retained one (``None`` when empty).
    """

    kind: str = "abstract"
    epoch: str = ""
    retain: int = 0
    #: Bytes of encoded events held in memory (a memory store's ring, the SQLite store's cache)
    #: is kept at most this (0: no byte bound, e.g. a custom store).
    retain_bytes: int = 0
    #: Largest event (JSON bytes, before the server's own fields) ``append`` accepts; None: no
    #: limit.  The server sets its ``max_event_bytes`` here, so every ingest path (POST bodies
    #: of one event or many, WebSocket ``publish``, ``Server.publish``) is held to it.
    max_event_bytes: int | None = None
    #: True when the store itself hands every stored event, its own appends and those of other
    #: servers sharing it (Redis), to the feed given to :meth:`set_feed`, in the store's order:
    #: the server then broadcasts what the feed delivers, never ``append()``'s result.
    feeds: bool = False

    def set_feed(  # noqa: B027 - optional hook
        self,
        deliver: Callable[[list[StoredEvent]], None],
        reset: Callable[[], None],
    ) -> None:
        """Where a feeding store (``feeds``) hands new events (``deliver``, on the loop) and
        says that its epoch changed under it (``reset``: clients must resume).  Others ignore it."""

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
    async def recent(self, limit: int, max_bytes: int | None = None) -> list[StoredEvent]:
        """The latest ``limit`` events, oldest first; with ``max_bytes``, only the newest of
        them that fit (:func:`fit_budget`: at least one)."""

    @abstractmethod
    async def since(
        self, after_id: int, limit: int, max_bytes: int | None = None
    ) -> list[StoredEvent]:
        """Up to ``limit`` retained events with ``id > after_id``, in id order; with
        ``max_bytes``, only the oldest of them that fit (:func:`fit_budget`: at least one)."""

    @abstractmethod
    async def filter_options(self) -> dict[str, list[str]]:
        """Distinct values of ``source_app``, ``session_id``, ``hook_event_type`` among the
        retained events (sorted)."""

    @property
    def retained_bytes(self) -> int:
        """Bytes of encoded events this store holds in memory (0 unless it tracks them)."""
        return 0

    # -- human-in-the-loop and updates (store/hitl.py).  Defaults fit a store without them:
    # a new backend works unchanged, and implements these to support answers and updates.
    def note_questions(self, stored: Sequence[StoredEvent]) -> None:  # noqa: B027
        """Newly stored events among which are questions (``humanInTheLoop``); default: none
        indexed (:meth:`questions` then lists nothing)."""

    async def append_update(self, ident: int, event: Event) -> StoredEvent:
        """Append a new version of stored event ``ident`` as a new log entry (the next id as
        its sequence number; its JSON keeps ``"id": ident`` and adds ``"update_seq"``).  A
        store shared by several servers (Redis) refuses, with AnswerError 409, an update of a
        question no longer pending (recorded once across them).  The default raises
        :class:`StoreError` (updates not supported by this store)."""
        from ..errors import StoreError

        raise StoreError(f"{self.kind} store: updates of stored events are not supported")

    async def latest(self, ident: int) -> Event | None:
        """The newest version of event ``ident``, or None when not retained.  Default: the
        entry with that id (a store without updates has no other version)."""
        found = await self.since(ident - 1, 1)
        if found and found[0].id == ident:
            event = found[0].event
            if event.get("id") == ident:
                return event
        return None

    async def questions(self, limit: int) -> list[Event]:
        """Up to ``limit`` questions (newest version each), oldest asked first.  Default:
        none."""
        return []

    @property
    def themes(self) -> ThemeRepo:
        """Where the theme API keeps its themes (default: in memory, per store instance)."""
        repo = self.__dict__.get("_themes_repo")
        if repo is None:
            repo = self.__dict__["_themes_repo"] = MemoryThemes()
        return cast(ThemeRepo, repo)

    def stats(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "epoch": self.epoch,
            "retained": len(self),
            "first_id": self.first_id,
            "last_id": self.last_id,
            "retain": self.retain,
            "retained_bytes": self.retained_bytes,
            "retain_bytes": self.retain_bytes,
        }


def check_retain(retain: int) -> int:
    """``retain`` checked: an integer in ``MIN_RETAIN..MAX_RETAIN`` (else ConfigError)."""
    return integer("retain", retain, MIN_RETAIN, MAX_RETAIN)


def check_retain_bytes(retain_bytes: int) -> int:
    """``retain_bytes`` checked: an integer in ``MIN_RETAIN_BYTES..MAX_RETAIN_BYTES`` (else
    ConfigError)."""
    return integer("retain_bytes", retain_bytes, MIN_RETAIN_BYTES, MAX_RETAIN_BYTES)


def fit_budget(sizes: Iterable[int], max_bytes: int) -> int:
    """How many of ``sizes`` (encoded event sizes, in the order they are to be kept) fit in
    ``max_bytes``, each counted with one separator byte.  At least one when ``sizes`` has any
    (a single event's size was bounded at ingest): the rule of the replay's ``fit_oldest``."""
    total = 0
    kept = 0
    for size in sizes:
        total += size + 1
        if total > max_bytes:
            return max(kept, 1)
        kept += 1
    return kept
