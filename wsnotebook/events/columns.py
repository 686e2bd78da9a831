"""Sans-I/O fast path: a server ``batch`` message decoded straight into columns.

The client's hot path at high rates is a ``{"type":"batch","data":[...]}`` message of up to
thousands of events.  Decoding it into dicts (``orjson.loads``) and then re-encoding every
``payload`` into the frame's JSON text costs ~3 us per event here; no pure-Python append can
reach 1M ev/s that way.  :func:`decode_batch_columns` instead decodes with :mod:`msgspec` into
typed structs whose ``payload`` is a :class:`msgspec.Raw` (the payload's JSON text, never
turned into objects) and returns plain column lists that :class:`~wsnotebook.frame.EventFrame`
copies into its chunks as they are.

Why msgspec: it decodes a known schema in C with validation (types, ``min_length``, ranges),
keeps chosen values as raw JSON text, and is well kept.  Its typed structs cannot keep unknown
fields, so the structs *forbid* them: a batch holding any event with an unknown top-level field
(or any other mismatch) returns ``None`` and the caller takes the dict path
(:func:`wsnotebook.protocol.parse_server_message`), which keeps unknown fields and reports
invalid events one by one.  The fast path therefore accepts a subset of what the dict path
accepts, and stores the same values, with one exception: payload text is checked to be UTF-8
and an object, not parsed, so a number beyond the float range inside a payload (which our
server never writes; only a foreign server sending the ``X-Wsnotebook`` header could) is
stored as text where the dict path would refuse the event.  The frame then shows that one
payload as its text (``frame._decode_rows``); finding it here would cost a parse per byte.

Acceptance, event by event (the rules of ``validate_event(event, require_id=True)``):
``id`` an integer within int64; ``source_app``, ``session_id``, ``hook_event_type`` non-empty
strings; ``payload`` an object in valid UTF-8 (its text is kept byte for byte as received, e.g.
with the sender's whitespace); ``timestamp`` a non-negative number or null; ``summary`` and
``model_name`` strings or null; ``chat`` an array or null; ``server_received`` and
``client_received`` numbers or null.  No other field.  Bounds: none beyond the caller's
message-size limit; a batch of any length is decoded in one call.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import repeat
from operator import getitem
from typing import Annotated, Any, cast

import msgspec
import numpy as np
from msgspec.structs import astuple

__all__ = [
    "BATCH_PREFIX",
    "COLUMNS_PREFIX",
    "EVENT_PREFIX",
    "PAYLOAD_SEP",
    "EventColumns",
    "EventRecord",
    "columns_from_records",
    "columns_message",
    "columns_message_batch",
    "decode_batch_columns",
    "decode_columns_message",
    "decode_event_burst",
    "decode_event_message",
]

#: How our server (and :func:`wsnotebook.protocol.batch_message`) starts a batch message.  Other
#: key orders are valid too; they simply take the dict path.
BATCH_PREFIX = b'{"type":"batch","data":['
#: How our server starts a per-event message (``{"type":"event","data":{...}}``).
EVENT_PREFIX = b'{"type":"event","data":{'
#: How a ``columns`` message starts (``?format=columns``; see :func:`columns_message`).
COLUMNS_PREFIX = b'{"type":"columns","n":'
#: Separator of payload texts in a joined blob (the frame's storage format: ``b"[" + blob +
#: b"]"`` is a JSON array; JSON text never holds a bare newline inside a string).
PAYLOAD_SEP = b"\n,\n"

_NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
_Int64 = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
_Stamp = Annotated[float, msgspec.Meta(ge=0)]
_OPEN_BRACE = ord("{")
_SEP_BRACE = PAYLOAD_SEP + b"{"
_GATHER_MIN = 50
_NAN = float("nan")


def stamp_array(values: Sequence[float | None]) -> array[float]:
    """Decoded stamps (``float`` or ``None``) as an ``array('d')`` with NaN for ``None``.

    ``array.array`` rather than numpy on purpose: the client's paced messages are small
    (10-100 events, ~40 a second) and run with cold caches, where one numpy call costs
    ~10-25 us (``np.array`` of 27 floats: 13.6 us against 9.1 for ``array('d')``; ``np.full``
    26 us against 6.9 for ``array * n``, measured after a 16 MB sweep); the frame copies an
    ``array('d')`` with one ``extend`` (a memcpy) and numpy can view it without a copy."""
    try:
        return array("d", cast(Sequence[float], values))
    except TypeError:  # some None (missing): NaN
        return array("d", [_NAN if v is None else v for v in values])


class EventRecord(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One event as the fast paths decode it (payload kept as its JSON text)."""

    id: _Int64
    source_app: _NonEmpty
    session_id: _NonEmpty
    hook_event_type: _NonEmpty
    payload: msgspec.Raw
    timestamp: _Stamp | None = None
    summary: str | None = None
    chat: list[Any] | None = None
    model_name: str | None = None
    server_received: float | None = None
    client_received: float | None = None


class _Batch(msgspec.Struct, gc=False):
    type: str
    data: list[EventRecord]


class _EventMessage(msgspec.Struct, gc=False):
    type: str
    data: EventRecord


class _ColumnsMessage(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """A ``columns`` message: one list per field of :class:`EventRecord`, each of length
    ``n``, with the record's rules per value (``client_received`` only when some event has it)."""

    type: str
    n: int
    id: list[_Int64]
    source_app: list[_NonEmpty]
    session_id: list[_NonEmpty]
    hook_event_type: list[_NonEmpty]
    payload: list[msgspec.Raw]
    timestamp: list[_Stamp | None]
    summary: list[str | None]
    chat: list[list[Any] | None]
    model_name: list[str | None]
    server_received: list[float | None]
    client_received: list[float | None] | None = None


_DECODER = msgspec.json.Decoder(_Batch)
_COLUMNS_DECODER = msgspec.json.Decoder(_ColumnsMessage)
_RECORDS_DECODER = msgspec.json.Decoder(list[EventRecord])
_ENCODER = msgspec.json.Encoder()
#: The wire fields of a ``columns`` message, in order (and ``client_received`` when some event
#: has one: the client stamps its own).
_WIRE_FIELDS = tuple(f for f in EventRecord.__struct_fields__ if f != "client_received")
_EVENT_DECODER = msgspec.json.Decoder(_EventMessage)
#: The event's text inside a per-event message as our server writes it (see
#: :func:`decode_event_burst`).
_EVENT_TEXT = slice(len(EVENT_PREFIX) - 1, -1)
_slice = cast(Callable[[bytes, slice], bytes], getitem)
_FIELDS = EventRecord.__struct_fields__


class EventColumns:
    """One batch of valid events as columns (sequences of equal length ``n``, in field order
    of the wire schema above).

    ``payload``: the payloads' JSON text (``bytes``-like, each an object); ``chat``: decoded
    arrays or ``None``; ``timestamp`` and ``server_received``: ``array('d')`` (NaN: missing;
    :func:`stamp_array`); ``client_received``: ``float``/``None`` values, or an ``array('d')``
    once the client stamps arrival; ``payload_len``: ``array('q')``.
    No shared state; the frame copies what it keeps.
    """

    __slots__ = (
        "n",
        "payload_blob",
        "payload_len",
        "id",
        "source_app",
        "session_id",
        "hook_event_type",
        "payload",
        "timestamp",
        "summary",
        "chat",
        "model_name",
        "server_received",
        "client_received",
    )

    n: int
    payload_blob: bytes | None  # the payloads joined with PAYLOAD_SEP (None after ``take``)
    payload_len: array[int]  # byte length of each payload (array('q'))
    id: Sequence[int]
    source_app: Sequence[str]
    session_id: Sequence[str]
    hook_event_type: Sequence[str]
    payload: Sequence[Any]
    timestamp: array[float]
    summary: Sequence[str | None]
    chat: Sequence[list[Any] | None]
    model_name: Sequence[str | None]
    server_received: array[float]
    client_received: Sequence[float | None] | array[float]

    def take(self, rows: list[int]) -> EventColumns:
        """A new instance holding only ``rows`` (indices, in the given order)."""
        out = EventColumns.__new__(EventColumns)
        out.n = len(rows)
        out.payload_blob = None
        lens = self.payload_len
        out.payload_len = array("q", [lens[i] for i in rows])
        for name in _FIELDS:
            col = getattr(self, name)
            picked = [col[i] for i in rows]
            setattr(out, name, array("d", picked) if isinstance(col, array) else picked)
        return out


def _join_object_payloads(
    parts: Sequence[Any], nl_free: bool = False
) -> tuple[bytes, array[int]] | None:
    """``parts`` joined with :data:`PAYLOAD_SEP` and their lengths, or ``None`` unless every
    payload's JSON text starts with ``{``.  ``nl_free``: the caller found no newline in the
    text the parts were decoded from (so none is in a part)."""
    k = len(parts)
    lens = array("q", map(len, parts))
    blob = PAYLOAD_SEP.join(parts)
    # The only newlines must be the separators' (JSON strings cannot hold one, only a
    # pretty-printing sender's whitespace can, and a payload holding "\n,\n" would split into
    # two rows): one C-level count, at any batch size, unless the caller's ``find`` over the
    # whole message (memchr: ~0.01 against ~0.2 us per 740-byte event for the count) saw none,
    # which is what our server's compact output always gives.  Then every payload must start
    # with "{": for small batches each separator is followed by "{" (a second scan); from ~50
    # payloads on, gathering each payload's first byte is cheaper (63 vs 160 us for 1000 here).
    if not nl_free and blob.count(b"\n") != 2 * (k - 1):
        return None
    # msgspec.Raw skips the payload without checking its UTF-8 (the dict path refuses invalid
    # UTF-8, which would make every later decode of the chunk fail): one C pass, only when
    # some payload text is not ASCII.
    if not blob.isascii():
        try:
            blob.decode("utf-8")
        except UnicodeDecodeError:
            return None
    if k < _GATHER_MIN:
        return (blob, lens) if blob[:1] == b"{" and blob.count(_SEP_BRACE) == k - 1 else None
    starts = np.zeros(k, dtype=np.int64)
    np.cumsum(np.frombuffer(lens, dtype=np.int64)[:-1] + len(PAYLOAD_SEP), out=starts[1:])
    if not (np.frombuffer(blob, dtype=np.uint8)[starts] == _OPEN_BRACE).all():
        return None
    return blob, lens


def decode_batch_columns(raw: bytes | bytearray | memoryview | str) -> EventColumns | None:
    """``raw`` (a ``batch`` message) as columns, or ``None`` when the fast path does not apply.

    ``None`` means "take the dict path": invalid JSON, another message type, any event that
    the dict path would reject or that carries a field the columns cannot hold.  Never raises.
    """
    try:
        msg = _DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        # RecursionError: msgspec gives up ~1000 levels deep (less with a deeper caller stack)
        # where orjson goes to 1024; UnicodeError: a str holding a lone surrogate.
        return None
    events = msg.data
    if msg.type != "batch" or not events:
        return None
    return _columns(events, _nl_free(raw))


def decode_event_message(raw: bytes | bytearray | memoryview | str) -> EventRecord | None:
    """One ``event`` message's event as a record, or ``None`` (take the dict path).

    The client's per-event path: each message is decoded on arrival (one msgspec call, no
    dict), the records of messages that arrived together go to :func:`columns_from_records`
    and the frame in one append.  ``None`` under the rules of :func:`decode_batch_columns`
    (checked per event: the payload's object-ness and UTF-8 are checked by
    :func:`columns_from_records`, for the whole group), also when the message is not an
    ``event``.  Never raises.
    """
    try:
        msg = _EVENT_DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    return msg.data if msg.type == "event" else None


def decode_event_burst(raws: Sequence[bytes]) -> EventColumns | None:
    """Several ``event`` messages (``raws``, non-empty, each starting with
    :data:`EVENT_PREFIX`) as one batch of columns, decoded in one msgspec call; ``None`` when
    any of them is not exactly ``{"type":"event","data":EVENT}`` (as our server writes them)
    with ``EVENT`` under :func:`decode_event_message`'s rules, or some payload is not an object
    in UTF-8: the caller then takes them one by one.  Never raises.

    Each message's ``EVENT`` is its text between the prefix and the last byte, so the decoder
    sees ``[EVENT,EVENT,...]`` (no wrapper struct per message: ~0.3 us less per event here).
    A message with anything else around its event (another key, a second value) makes that
    text invalid, or splits it into more elements than messages: both refused (whitespace
    after the event is valid JSON either way).  Malformed messages that combine into valid
    events could pass; only a server sending the ``X-Wsnotebook`` header reaches this path."""
    texts: Iterable[bytes] = map(_slice, raws, repeat(_EVENT_TEXT))  # C-level, per message
    text = b"[" + b",".join(texts) + b"]"
    try:
        events = _RECORDS_DECODER.decode(text)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    if len(events) != len(raws) or not events:
        return None
    return _columns(events, text.find(b"\n") < 0)


def columns_from_records(records: list[EventRecord]) -> EventColumns | None:
    """``records`` (from :func:`decode_event_message`, non-empty) as one batch of columns, or
    ``None`` when some payload is not a JSON object in UTF-8 (take the dict path)."""
    return _columns(records) if records else None


def _nl_free(raw: bytes | bytearray | memoryview | str) -> bool:
    """Is there surely no newline in ``raw``?  (One memchr for ``bytes``; other types: no.)"""
    return type(raw) is bytes and raw.find(b"\n") < 0


def _columns(events: list[EventRecord], nl_free: bool = False) -> EventColumns | None:
    cols = EventColumns.__new__(EventColumns)
    cols.n = len(events)
    # One C-level transpose (astuple + zip) instead of one attribute pass per field: ~10x less.
    for name, column in zip(_FIELDS, zip(*map(astuple, events))):
        setattr(cols, name, column)
    # Stamps as array('d') (None -> NaN): the frame copies them with one memcpy.
    cols.timestamp = stamp_array(cols.timestamp)
    cols.server_received = stamp_array(cols.server_received)
    joined = _join_object_payloads(cols.payload, nl_free)
    if joined is None:
        return None
    cols.payload_blob, cols.payload_len = joined
    return cols


def columns_message(encoded: Sequence[bytes]) -> bytes | None:
    """The ``columns`` message of ``encoded`` (events as our server stores them: compact JSON
    objects with ``id``), or ``None`` when one of them has a field the columns cannot hold (an
    unknown top-level field, e.g. a human-in-the-loop question) or breaks a rule of
    :class:`EventRecord`: the caller then sends a ``batch``.

    ``{"type":"columns","n":N,"id":[...],"source_app":[...],...,"server_received":[...]}``:
    one JSON array per field in :class:`EventRecord` order (``client_received`` left out), each
    of length ``N``; ``payload`` holds the events' payload objects as they were stored (text
    copied, never re-encoded).  Valid JSON, sent as a text message.  Never raises.
    """
    try:
        records = _RECORDS_DECODER.decode(b"[" + b",".join(encoded) + b"]")
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    if not records:
        return None
    body = dict(zip(_FIELDS, zip(*map(astuple, records))))
    if body["client_received"].count(None) == len(records):
        del body["client_received"]
    return COLUMNS_PREFIX + _ENCODER.encode(len(records)) + b"," + _ENCODER.encode(body)[1:]


def decode_columns_message(raw: bytes | bytearray | memoryview | str) -> EventColumns | None:
    """A ``columns`` message (:func:`columns_message`) as :class:`EventColumns`, or ``None``
    (invalid JSON, columns of unequal length, a value breaking a rule of :class:`EventRecord`,
    a payload that is not an object in UTF-8): the caller then takes
    :func:`columns_message_batch`'s dict path.  No per-row Python work.  Never raises."""
    try:
        msg = _COLUMNS_DECODER.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    n = msg.n
    if msg.type != "columns" or n <= 0:
        return None
    cols = EventColumns.__new__(EventColumns)
    cols.n = n
    for name in _WIRE_FIELDS:
        column = getattr(msg, name)
        if len(column) != n:
            return None
        setattr(cols, name, column)
    received = msg.client_received
    if received is not None and len(received) != n:
        return None
    cols.client_received = [None] * n if received is None else received
    cols.timestamp = stamp_array(msg.timestamp)
    cols.server_received = stamp_array(msg.server_received)
    joined = _join_object_payloads(msg.payload, _nl_free(raw))
    if joined is None:
        return None
    cols.payload_blob, cols.payload_len = joined
    return cols


def columns_message_batch(raw: bytes | bytearray | memoryview | str) -> bytes | None:
    """A ``columns`` message rewritten as the equivalent ``batch`` message (rows as JSON
    objects, ``null`` values left out), for the dict path, which validates and reports each
    event; ``None`` when ``raw`` is not a well-formed ``columns`` message.  Never raises."""
    try:
        msg = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError, UnicodeError):
        return None
    if not isinstance(msg, dict) or msg.get("type") != "columns":
        return None
    n = msg.get("n")
    names = [*_WIRE_FIELDS, *(["client_received"] if "client_received" in msg else [])]
    cols = [msg.get(name) for name in names]
    if not isinstance(n, int) or not all(isinstance(c, list) and len(c) == n for c in cols):
        return None
    rows = [{k: v for k, v in zip(names, values) if v is not None} for values in zip(*cols)]
    return BATCH_PREFIX + _ENCODER.encode(rows)[1:] + b"}"
