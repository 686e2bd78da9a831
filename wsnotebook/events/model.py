"""The event model: seed-compatible hook events, validated with precise errors.

An event is a plain ``dict`` (JSON object).  Required fields (the seed dashboard's contract):

============== =========================================================
field           type
============== =========================================================
source_app      string, non-empty
session_id      string, non-empty
hook_event_type string, non-empty
payload         object
============== =========================================================

Optional fields: ``timestamp`` (epoch **milliseconds**, number), ``chat`` (array or null),
``summary`` (string or null), ``model_name`` (string or null).  Fields the server adds: ``id``
(integer, increasing) and ``server_received`` (epoch ms, float).  The client adds
``client_received``.  **Unknown top-level fields are kept**, never dropped.

JSON goes through :mod:`orjson`: it decodes hook events ~3x faster than the standard library here,
is well kept, rejects NaN/Infinity (so hostile input fails loudly instead of producing values
other systems cannot read), refuses to *encode* integers beyond 64 bits (it *decodes* them as
floats, so an oversized ``id`` fails validation), and limits nesting depth.  We decode to
``dict`` rather than typed ``msgspec`` structs because unknown fields must survive untouched;
the client's batch fast path (:mod:`.columns`) uses msgspec only for batches without
unknown fields and falls back to these dicts otherwise.  Batches of dicts are validated by
``msgspec.convert`` into a schema struct (:func:`all_valid`), the same checks in C, with
:func:`validate_event` as the reference that words every error.
"""

from __future__ import annotations

import math
import operator
import sys
import time
from collections.abc import Iterable
from itertools import repeat
from typing import Annotated, Any

import msgspec
import orjson

from ..errors import EventValidationError, LimitExceeded, ProtocolError

__all__ = [
    "REQUIRED_FIELDS",
    "OPTIONAL_FIELDS",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_BATCH_EVENTS",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Event",
    "validate_event",
    "validate_events",
    "decode_json",
    "encode_json",
    "decode_events",
    "json_type",
    "now_ms",
]

Event = dict[str, Any]

REQUIRED_FIELDS: tuple[str, ...] = ("source_app", "session_id", "hook_event_type", "payload")
OPTIONAL_FIELDS: tuple[str, ...] = ("timestamp", "chat", "summary", "model_name")

#: Largest accepted single event (a ``POST /events`` body holding one event), in bytes: 1 MiB.
DEFAULT_MAX_EVENT_BYTES = 1 << 20
#: Most events accepted in one batch (a JSON array body or one ``publish`` message).
DEFAULT_MAX_BATCH_EVENTS = 10_000
#: Largest accepted message of any kind (batch bodies, WebSocket frames), in bytes: 16 MiB.
DEFAULT_MAX_MESSAGE_BYTES = 16 << 20

_STR_FIELDS = ("source_app", "session_id", "hook_event_type")
_NULLABLE_STR_FIELDS = ("summary", "model_name")


def now_ms() -> float:
    """Wall-clock time in epoch milliseconds (float, sub-millisecond resolution)."""
    return time.time() * 1000.0


def json_type(value: Any) -> str:
    """The JSON name of a Python value's type (for error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return type(value).__name__


def _fail(prefix: str, field: str, message: str) -> EventValidationError:
    return EventValidationError(f"{prefix}{field}: {message}", field=field)


#: Largest ``int`` timestamp the fast path of :func:`validate_event` accepts: ``math.isfinite``
#: of any int below it is True (beyond ~2**1024 it raises OverflowError: the reference decides).
_INT_TS_MAX = 1 << 1023
_FLOAT_MAX = sys.float_info.max


def validate_event(event: Any, *, where: str = "", require_id: bool = False) -> Event:
    """Check one event and return it (the same object, not a copy).

    Raises :class:`~wsnotebook.errors.EventValidationError` whose message names the field and the
    problem, e.g. ``"payload: expected object, got string"``.  ``where`` prefixes the message
    (``"events[3]."``) when the event sits inside a batch.  ``require_id`` demands an integer
    ``id`` (events coming *from* a server).

    The common event (a dict of exact types: ``str``, ``dict``, ``list``, ``int``/``float``) is
    accepted by one expression of type tests (~0.4 against ~1.1 us here: the per-event
    ``POST /events`` and ``publish`` paths); anything else, valid or not, is decided by the
    reference checks (:func:`_validate_event_reference`), which word every error.
    """
    if type(event) is dict:
        get = event.get
        app = get("source_app")
        session = get("session_id")
        hook = get("hook_event_type")
        ts = get("timestamp")
        summary = get("summary")
        model = get("model_name")
        chat = get("chat")
        if (
            type(app) is str
            and app
            and type(session) is str
            and session
            and type(hook) is str
            and hook
            and type(get("payload")) is dict
            and (
                ts is None
                or (type(ts) is float and 0.0 <= ts <= _FLOAT_MAX)
                or (type(ts) is int and 0 <= ts < _INT_TS_MAX)
            )
            and (summary is None or type(summary) is str)
            and (model is None or type(model) is str)
            and (chat is None or type(chat) is list)
            and ((not require_id and "id" not in event) or type(get("id")) is int)
        ):
            return event
    return _validate_event_reference(event, where=where, require_id=require_id)


def _validate_event_reference(event: Any, *, where: str = "", require_id: bool = False) -> Event:
    """:func:`validate_event`'s every check, one by one, with the error wording."""
    if not isinstance(event, dict):
        raise EventValidationError(
            f"{where.rstrip('.') or 'event'}: expected object, got {json_type(event)}", field=""
        )
    for field in _STR_FIELDS:
        if field not in event:
            raise _fail(where, field, "missing required field")
        value = event[field]
        if not isinstance(value, str):
            raise _fail(where, field, f"expected string, got {json_type(value)}")
        if not value:
            raise _fail(where, field, "must not be empty")
    if "payload" not in event:
        raise _fail(where, "payload", "missing required field")
    if not isinstance(event["payload"], dict):
        raise _fail(where, "payload", f"expected object, got {json_type(event['payload'])}")
    ts = event.get("timestamp")
    if ts is not None:
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise _fail(where, "timestamp", f"expected number (epoch ms), got {json_type(ts)}")
        try:
            finite = math.isfinite(ts)
        except OverflowError:  # an int beyond the float range (too long to quote)
            raise _fail(
                where, "timestamp", "expected a non-negative epoch in ms, got a number beyond 1e308"
            ) from None
        if not finite or ts < 0:
            raise _fail(where, "timestamp", f"expected a non-negative epoch in ms, got {ts!r}")
    for field in _NULLABLE_STR_FIELDS:
        value = event.get(field)
        if value is not None and not isinstance(value, str):
            raise _fail(where, field, f"expected string or null, got {json_type(value)}")
    chat = event.get("chat")
    if chat is not None and not isinstance(chat, list):
        raise _fail(where, "chat", f"expected array or null, got {json_type(chat)}")
    if require_id or "id" in event:
        ident = event.get("id")
        if isinstance(ident, bool) or not isinstance(ident, int):
            raise _fail(where, "id", f"expected integer, got {json_type(ident)}")
    return event


_GET_PAYLOAD = operator.itemgetter("payload")
_NONE = type(None)
_LIST_OR_NONE = frozenset({list, _NONE})
_NUMBER_OR_NONE = frozenset({int, float, _NONE})

_NonEmptyStr = Annotated[str, msgspec.Meta(min_length=1)]
# ``le`` the largest float: rejects inf (and NaN fails every bound), as validate_event does.
_Epoch = Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max)]


class _Checked(msgspec.Struct, gc=False, kw_only=True):
    """The schema of :func:`validate_event` for :func:`all_valid`, checked in C by
    ``msgspec.convert``.  Unknown fields are ignored (kept by the caller, who never sees these
    instances).  ``payload`` and ``chat`` are ``Any`` here (convert would copy a typed dict and
    accepts a tuple for a list) and convert reads a ``Decimal`` as a float: those three fields'
    exact types are checked by C-level passes of their own."""

    source_app: _NonEmptyStr
    session_id: _NonEmptyStr
    hook_event_type: _NonEmptyStr
    payload: Any
    timestamp: _Epoch | None = None
    summary: str | None = None
    model_name: str | None = None
    chat: Any = None
    id: int = 0  # present: an int (never bool or None); absent: allowed


class _CheckedWithId(_Checked, gc=False, kw_only=True):
    id: int  # required


# Batches are converted as one field of a struct: msgspec caches a struct's type information,
# while a bare ``list[_Checked]`` is re-analysed on every call (~3 us, more than ten events).
class _Batch(msgspec.Struct, gc=False):
    events: list[_Checked]


class _BatchWithId(msgspec.Struct, gc=False):
    events: list[_CheckedWithId]


#: Smallest batch for which :func:`all_valid` (one ``msgspec.convert`` call plus four C-level
#: passes) is cheaper than one :func:`validate_event` call per event (even at ~5 here; at 10
#: it is ~1.5x cheaper, from 100 on ~2.3x).
FUSED_MIN = 6


def all_valid(items: list[Any], *, require_id: bool = False) -> bool:
    """True only if every item passes ``validate_event(item, require_id=require_id)``: the same
    checks in C (``msgspec.convert`` into a schema struct; from ``FUSED_MIN`` events on,
    cheaper than one call per event).  False means "not sure": the caller then checks event by event
    with :func:`validate_event`, which also words the error.  Values outside msgspec's exact
    types that the reference still accepts (a ``float`` subclass timestamp, say) get False."""
    try:
        # Exact dicts only: convert would also read other mappings, which the reference refuses.
        if set(map(type, items)) != {dict}:
            return False
        msgspec.convert({"events": items}, _BatchWithId if require_id else _Batch)
        return (
            set(map(type, map(_GET_PAYLOAD, items))) == {dict}
            and set(map(type, map(dict.get, items, repeat("chat")))) <= _LIST_OR_NONE
            # convert reads a Decimal as a float; the reference refuses it.
            and set(map(type, map(dict.get, items, repeat("timestamp")))) <= _NUMBER_OR_NONE
        )
    except (msgspec.ValidationError, TypeError, ValueError, OverflowError):
        return False


def validate_events(
    obj: Any, *, max_batch: int = DEFAULT_MAX_BATCH_EVENTS, require_id: bool = False
) -> list[Event]:
    """Validate one event (an object) or a batch (an array of objects); return a list.

    A batch larger than ``max_batch`` raises :class:`~wsnotebook.errors.LimitExceeded`; an
    empty batch raises :class:`~wsnotebook.errors.EventValidationError`.  Validation is
    all-or-nothing: one bad event rejects the batch, and the message says which index.
    """
    if isinstance(obj, dict):
        return [validate_event(obj, require_id=require_id)]
    if isinstance(obj, list):
        if not obj:
            raise EventValidationError("events: empty batch", field="")
        if len(obj) > max_batch:
            raise LimitExceeded(
                f"events: batch of {len(obj)} events exceeds the limit of {max_batch}",
                limit="max_batch_events",
                value=len(obj),
                bound=max_batch,
            )
        if len(obj) >= FUSED_MIN and all_valid(obj, require_id=require_id):
            return obj
        for i, ev in enumerate(obj):
            validate_event(ev, where=f"events[{i}].", require_id=require_id)
        return obj
    raise EventValidationError(
        f"event: expected object or array of objects, got {json_type(obj)}", field=""
    )


def decode_json(data: bytes | bytearray | memoryview | str) -> Any:
    """Decode JSON text; raise :class:`~wsnotebook.errors.ProtocolError` naming the problem."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON: {exc}") from None


def encode_json(obj: Any) -> bytes:
    """Encode to compact UTF-8 JSON bytes (orjson; non-string dict keys are stringified)."""
    try:
        # Without OPT_NON_STR_KEYS first: ~40% faster for a hook event (0.65 vs 1.05 us here),
        # and JSON-born dicts only have string keys.  orjson raises TypeError otherwise.
        return orjson.dumps(obj)
    except TypeError:
        pass
    try:
        return orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise ProtocolError(f"cannot encode as JSON: {exc}") from None


def decode_events(
    data: bytes | bytearray | memoryview | str,
    *,
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    max_batch: int = DEFAULT_MAX_BATCH_EVENTS,
) -> list[Event]:
    """Decode and validate a body holding one event (object) or a batch (array).

    Limits: a single-event body may be at most ``max_event_bytes``; any body at most
    ``max_message_bytes``; a batch at most ``max_batch`` events.  Violations raise
    :class:`~wsnotebook.errors.LimitExceeded`; bad JSON :class:`~wsnotebook.errors.ProtocolError`;
    bad events :class:`~wsnotebook.errors.EventValidationError`.
    """
    # "surrogatepass": a str holding lone surrogates must reach orjson (-> ProtocolError) instead
    # of escaping here as a UnicodeEncodeError.
    if isinstance(data, str):
        size = len(data.encode("utf-8", "surrogatepass"))
    elif isinstance(data, memoryview):
        size = data.nbytes  # len() counts items, not bytes, for a memoryview of wider items
    else:
        size = len(data)
    if size > max_message_bytes:
        raise LimitExceeded(
            f"body: {size} bytes exceeds the limit of {max_message_bytes}",
            limit="max_message_bytes",
            value=size,
            bound=max_message_bytes,
        )
    obj = decode_json(data)
    if isinstance(obj, dict) and size > max_event_bytes:
        raise LimitExceeded(
            f"event: {size} bytes exceeds the limit of {max_event_bytes}",
            limit="max_event_bytes",
            value=size,
            bound=max_event_bytes,
        )
    return validate_events(obj, max_batch=max_batch)


def iter_ids(events: Iterable[Event]) -> list[int]:
    """The integer ids of events that have one (helper for replay and dedupe checks)."""
    return [e["id"] for e in events if isinstance(e.get("id"), int)]
