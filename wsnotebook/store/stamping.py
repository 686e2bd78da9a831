"""Stamping: how a store turns validated events into :class:`~.base.StoredEvent` (pure logic).

Owns :func:`stamp` / :func:`stamp_all` (set ``id``, fill ``timestamp`` when absent or null, set
``server_received``; encode the JSON once) and :func:`snapshot_events` (encode ahead of ingest,
so what is stored is what was checked).

Invariants: all or nothing (an event that cannot be encoded, or whose JSON *without the
server's fields* is over ``max_bytes``, fails the whole call before any id is used);
every ingest path applies the same size rule; the caller's dicts are never modified; the
stored bytes are exact-size copies (orjson's slack dropped).
"""

from __future__ import annotations

import operator
import sys
from collections.abc import Sequence
from itertools import repeat
from typing import cast

import orjson

from ..errors import EventValidationError, LimitExceeded, ProtocolError
from ..events import Event
from ..protocol import encode_event
from .base import Appendable, Encoded, StoredEvent, event_facets, stored_event

__all__ = ["snapshot_events", "stamp", "stamp_all", "stamp_one"]


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


def stamp_one(
    event: Event, ident: int, received_ms: float, max_bytes: int | None = None
) -> StoredEvent:
    """``stamp_all([event], ident, received_ms, max_bytes)[0]`` for one validated dict, without
    the batch scaffolding (the per-event ``publish`` / ``POST`` hot path): the same stored
    bytes, the same errors, nothing stamped on an error.

    The common event (no ``id`` or ``server_received`` of its own, ``timestamp`` not null) is
    encoded as it is and the server's fields are spliced before its closing brace: the bytes
    the dict path writes (a copy with those keys appended, encoded), ~0.25 us less per event
    and already exact-size; anything else takes the dict path (:func:`stamp`).
    """
    ts = event.get("timestamp", _ABSENT)
    if ts is not None and "id" not in event and "server_received" not in event:
        try:
            head = orjson.dumps(event)
        except TypeError:  # non-string keys, an unencodable value: the careful path below
            pass
        else:
            if max_bytes is not None and len(head) > max_bytes:
                raise _too_large(0, 1, len(head), max_bytes)
            received = orjson.dumps(received_ms)
            if ts is _ABSENT:
                tail = b',"timestamp":%d,"server_received":%b}' % (int(received_ms), received)
            else:
                tail = b',"server_received":%b}' % received
            get = event.__getitem__
            try:
                app = sys.intern(get("source_app"))
                session = sys.intern(get("session_id"))
                hook = sys.intern(get("hook_event_type"))
            except TypeError:  # a str subclass: the careful way
                app, session, hook = event_facets(event)
            spliced = b'%b,"id":%d%b' % (head[:-1], ident, tail)
            return StoredEvent(ident, spliced, app, session, hook)
    return stamp_all([event], ident, received_ms, max_bytes)[0]


_ABSENT = object()


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
        stored = _stamp_dicts(events, first, received_ms)
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


def _stamp_dicts(events: Sequence[Event], first: int, received_ms: float) -> list[StoredEvent]:
    """:func:`stamp` of every event (ids ``first``, ...; no size check), by :func:`stamp_one`'s
    splice for the common event: the bytes of :func:`stamp` without its dict copy and second
    exact-size copy (~1.0 against ~1.6 us a demo event warm, ~3 against ~5 us right after a
    timer sleep).  Raises ProtocolError (from :func:`stamp`) for an event JSON cannot encode."""
    received = orjson.dumps(received_ms)
    tail = b',"server_received":%b}' % received
    filled = b',"timestamp":%d%b' % (int(received_ms), tail)
    dumps = orjson.dumps
    intern = sys.intern
    stored: list[StoredEvent] = []
    append = stored.append
    for ident, event in enumerate(events, first):
        ts = event.get("timestamp", _ABSENT)
        if ts is None or "id" in event or "server_received" in event:
            append(stamp(event, ident, received_ms))
            continue
        try:
            head = dumps(event)
        except TypeError:  # non-string keys, an unencodable value: the careful path
            append(stamp(event, ident, received_ms))
            continue
        try:
            app = intern(event["source_app"])
            session = intern(event["session_id"])
            hook = intern(event["hook_event_type"])
        except TypeError:  # a str subclass: the careful way
            app, session, hook = event_facets(event)
        spliced = b'%b,"id":%d%b' % (head[:-1], ident, filled if ts is _ABSENT else tail)
        append(StoredEvent(ident, spliced, app, session, hook))
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
        facets = [list(col) for col in zip(*map(event_facets, events))]
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
