"""Human-in-the-loop (HITL) bookkeeping shared by the stores: questions and event updates.

A *question* is an event whose top-level ``humanInTheLoop`` is an object (the seed dashboard's
contract: ``{question, responseWebSocketUrl, type, choices?, timeout?, requiresResponse?}``).
Its state lives in ``humanInTheLoopStatus`` (``pending``, ``responded``, ``timeout``,
``error``).

An *update* of an event already stored (an answer, a timeout) is appended to the log as a new
entry: it gets the next sequence number (what ``?since=`` and ``last_id`` count) while its JSON
keeps the event's ``id`` and carries ``"update_seq": <its sequence number>``
(:func:`update_stored`).  So a client resuming after the update gets it again, and a seed
client sees the same id with the new status.  The entry it replaces is *superseded*
(:class:`Versions`): ``recent()`` (``initial``, ``GET /events/recent``) leaves superseded
entries out, so each event appears once there, in its latest state; a ``since`` replay keeps
them (the older version, then the update, in log order).

Owns: :func:`is_question`, :func:`update_stored`, :class:`Versions` (which entries are
superseded) and :class:`Questions` (the memory store's index of questions by event id).

Bounds and drop policies: :class:`Questions` keeps the newest :data:`MAX_QUESTIONS` questions
(the oldest asked is forgotten first: it can no longer be answered through this store);
:class:`Versions` forgets entries older than the store's oldest retained id when it prunes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..errors import LimitExceeded
from ..events import Event, encode_json
from ..events.hitl import HITL_FIELD, STATUS_FIELD, UPDATE_FIELD, is_question
from .base import StoredEvent, event_facets

__all__ = [
    "HITL_FIELD",
    "MAX_QUESTIONS",
    "QUESTION_MARK",
    "UPDATE_SLACK",
    "STATUS_FIELD",
    "UPDATE_FIELD",
    "Questions",
    "Versions",
    "is_question",
    "update_stored",
]

#: Bytes every question's JSON contains (a cheap pre-check before decoding).
QUESTION_MARK = b'"humanInTheLoop"'
#: Bytes an update's JSON may pass ``max_event_bytes`` by (the server's stamp room).
UPDATE_SLACK = 128
#: Questions a memory store indexes (newest kept).
MAX_QUESTIONS = 10_000


def update_stored(
    seq: int, ident: int, event: Event, max_event_bytes: int | None = None
) -> StoredEvent:
    """The log entry of an update of event ``ident``: sequence ``seq``, JSON = ``event`` with
    ``"id": ident`` and ``"update_seq": seq`` (exact-size bytes).  Over ``max_event_bytes``
    plus :data:`UPDATE_SLACK` (what stamping may add to an event): LimitExceeded."""
    out = dict(event)
    out["id"] = ident
    out[UPDATE_FIELD] = seq
    encoded = bytes(memoryview(encode_json(out)))
    if max_event_bytes is not None and len(encoded) > max_event_bytes + UPDATE_SLACK:
        bound = max_event_bytes + UPDATE_SLACK
        raise LimitExceeded(
            f"update of event {ident}: {len(encoded)} bytes exceeds the limit of {bound}",
            limit="max_event_bytes",
            value=len(encoded),
            bound=bound,
        )
    return StoredEvent(seq, encoded, *event_facets(out))


class Versions:
    """Which log entries an update superseded (see the module docstring).

    ``latest`` maps an updated event's id to the sequence number of its newest version;
    ``superseded`` holds the sequence numbers of the versions it replaced."""

    def __init__(self) -> None:
        self.latest: dict[int, int] = {}
        self.superseded: set[int] = set()

    def record(self, ident: int, seq: int) -> None:
        """Event ``ident`` has a new version at ``seq`` (its previous one is superseded)."""
        self.superseded.add(self.latest.get(ident, ident))
        self.latest[ident] = seq

    def load(self, pairs: Iterable[tuple[int, int]]) -> None:
        """``(event id, newest seq)`` pairs read back from a database at open."""
        for ident, seq in pairs:
            if seq != ident:
                self.record(ident, seq)

    def visible(self, items: list[StoredEvent]) -> list[StoredEvent]:
        """``items`` without superseded entries (the list itself when none is)."""
        gone = self.superseded
        if not gone:
            return items
        return [s for s in items if s.id not in gone]

    def prune(self, first_id: int | None) -> None:
        """Forget entries older than ``first_id`` (no longer retained)."""
        if first_id is None or len(self.superseded) < 1024:
            return
        self.superseded = {s for s in self.superseded if s >= first_id}
        self.latest = {i: s for i, s in self.latest.items() if s >= first_id}


class Questions:
    """The memory store's questions: event id -> newest stored version (at most ``bound``)."""

    def __init__(self, bound: int = MAX_QUESTIONS) -> None:
        self.bound = bound
        self.items: dict[int, StoredEvent] = {}

    def note(self, stored: Sequence[StoredEvent]) -> None:
        """Index the questions among newly stored events (a cheap byte check first)."""
        for s in stored:
            if QUESTION_MARK in s.encoded:
                event = s.event
                if is_question(event) and event.get("id") == s.id:
                    self.put(s.id, s)

    def put(self, ident: int, stored: StoredEvent) -> None:
        items = self.items
        items.pop(ident, None)
        items[ident] = stored
        while len(items) > self.bound:
            del items[next(iter(items))]

    def get(self, ident: int) -> StoredEvent | None:
        return self.items.get(ident)

    def newest(self, limit: int) -> list[StoredEvent]:
        """Up to ``limit`` questions, oldest asked first."""
        if limit <= 0:
            return []
        return [s for _, s in sorted(self.items.items())][-limit:]
