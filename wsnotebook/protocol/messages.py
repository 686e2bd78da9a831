"""Wire messages (sans-I/O): types, encoders, parsers, close codes, size fitting.

Message types (server -> client): ``initial``, ``event``, ``batch``, ``heartbeat``, ``gap``,
``error``.  Client -> server: ``publish``, ``heartbeat``.  The format is documented in
``docs/protocol.md``; seed clients see only ``initial``/``event`` unless they opt in.

Invariants: encoders take events already encoded as JSON bytes and never re-encode them; an
``error`` text is cut at :data:`MAX_ERROR_CHARS`; ``fit_newest``/``fit_oldest`` never return a
count whose message would exceed ``max_bytes`` (an eighth of small limits, at most
:data:`ENVELOPE_BYTES`, is kept for the envelope); parsers raise only
:class:`~wsnotebook.errors.ProtocolError` (and the event validation errors it wraps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ProtocolError
from ..events import (
    FUSED_MIN,
    Event,
    all_valid,
    decode_json,
    encode_json,
    json_type,
    validate_event,
)

# --------------------------------------------------------------------------- message encoding

MESSAGE_TYPES_FROM_SERVER = ("initial", "event", "batch", "heartbeat", "gap", "error")
MESSAGE_TYPES_FROM_CLIENT = ("publish", "heartbeat")

#: Close codes used by the server (documented in docs/protocol.md).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008  # bad token / origin, or a client that keeps sending invalid messages
CLOSE_TOO_BIG = 1009  # message larger than max_message_bytes
CLOSE_INTERNAL = 1011
CLOSE_RESTART = 1012
CLOSE_TRY_AGAIN = 1013  # slow consumer: its send queue overflowed; resume with ?since=
RETRYABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})


#: Handshake response header by which a wsnotebook server names itself (value: the wire
#: protocol version).  A wsnotebook client takes its columnar fast path for ``batch`` messages
#: only from such a server: its events are compact orjson output (see ``events/columns.py``).
WSNOTEBOOK_HEADER = "X-Wsnotebook"
PROTOCOL_VERSION = "1"


def encode_event(event: Event) -> bytes:
    """Encode one stored event once; the result is reused for every client."""
    return encode_json(event)


def event_message(encoded_event: bytes) -> bytes:
    """``{"type":"event","data":<event>}`` from an already-encoded event (no re-encoding)."""
    return b'{"type":"event","data":' + encoded_event + b"}"


def batch_message(encoded_events: Sequence[bytes]) -> bytes:
    """``{"type":"batch","data":[...]}`` from already-encoded events."""
    return b'{"type":"batch","data":[' + b",".join(encoded_events) + b"]}"


def initial_message(
    encoded_events: Sequence[bytes],
    *,
    seq: int | None = None,
    epoch: str | None = None,
    reset: bool = False,
    extended: bool = False,
) -> bytes:
    """The ``initial`` snapshot.  Seed clients get exactly ``{"type","data"}``; clients that
    used an extension (``extended``) also get ``seq`` (last id), ``epoch`` and ``reset``."""
    head = b'{"type":"initial","data":[' + b",".join(encoded_events) + b"]"
    if extended:
        extra = {"seq": seq if seq is not None else 0, "epoch": epoch, "reset": reset}
        head += b"," + encode_json(extra)[1:-1]
    return head + b"}"


#: Room left in a message for its envelope (type, seq, epoch, ... and the separators); for
#: small limits an eighth of the limit (>= 128 bytes: the largest envelope we write is ~120).
ENVELOPE_BYTES = 4096


def event_room(max_bytes: int) -> int:
    """Bytes of encoded events (with their separators) one message of at most ``max_bytes``
    can carry beside its envelope."""
    return max_bytes - min(ENVELOPE_BYTES, max(128, max_bytes // 8))


def fit_newest(encoded_events: Sequence[bytes], max_bytes: int) -> int:
    """How many of the *newest* (last) ``encoded_events`` fit in one message of at most
    ``max_bytes`` (envelope included): an ``initial`` snapshot keeps the latest events that fit.
    At least one, so a single event is never held back (its size was bounded at ingest)."""
    budget = event_room(max_bytes)
    total = 0
    for k, size in enumerate(map(len, reversed(encoded_events))):
        total += size + 1
        if total > budget:
            return max(k, 1)
    return len(encoded_events)


def fit_oldest(encoded_events: Sequence[bytes], max_bytes: int) -> int:
    """How many of the *oldest* (first) ``encoded_events`` fit in one message of at most
    ``max_bytes``: a replay page sends those and continues after them.  At least one."""
    budget = event_room(max_bytes)
    total = 0
    for k, size in enumerate(map(len, encoded_events)):
        total += size + 1
        if total > budget:
            return max(k, 1)
    return len(encoded_events)


def heartbeat_message(timestamp_ms: float) -> bytes:
    return encode_json({"type": "heartbeat", "timestamp": int(timestamp_ms)})


def gap_message(from_id: int, to_id: int, reason: str, *, epoch: str | None = None) -> bytes:
    """Events ``from_id..to_id`` (inclusive) cannot be replayed (evicted or new epoch)."""
    return encode_json(
        {
            "type": "gap",
            "data": {"from_id": from_id, "to_id": to_id, "reason": reason, "epoch": epoch},
        }
    )


#: Longest ``error`` message text (characters): an error that quotes what a client sent (an
#: unknown ``type``, say) must not make the reply bigger than the message it answers.
MAX_ERROR_CHARS = 300


def error_message(message: str, code: str) -> bytes:
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return encode_json({"type": "error", "data": {"message": message, "code": code}})


@dataclass(slots=True)
class ClientMessage:
    """A decoded client -> server message."""

    type: str
    data: Any = None


def parse_client_message(raw: bytes | str) -> ClientMessage:
    """Decode a client message; raise :class:`ProtocolError` with a precise reason."""
    obj = decode_json(raw)
    if not isinstance(obj, dict):
        raise ProtocolError(f"message: expected object, got {json_type(obj)}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"type: expected string, got {json_type(kind)}")
    if kind not in MESSAGE_TYPES_FROM_CLIENT:
        raise ProtocolError(f"type: unknown message type {kind!r} (expected publish or heartbeat)")
    if kind == "publish" and "data" not in obj:
        raise ProtocolError("data: missing required field")
    return ClientMessage(kind, obj.get("data"))


@dataclass(slots=True)
class ServerMessage:
    """A decoded server -> client message (client side)."""

    type: str
    events: list[Event] = field(default_factory=list)
    seq: int | None = None
    epoch: str | None = None
    reset: bool = False
    data: Any = None
    invalid: int = 0  # events dropped because they failed validation


def _server_events(items: list[Any]) -> tuple[list[Event], int]:
    """The valid events of ``items`` (a server's ``data``) and how many were dropped."""
    if len(items) >= FUSED_MIN and all_valid(items, require_id=True):
        return items, 0
    good: list[Event] = []
    for ev in items:
        try:
            good.append(validate_event(ev, require_id=True))
        except (ValueError, OverflowError):  # OverflowError: an int timestamp beyond floats
            pass
    return good, len(items) - len(good)


def parse_server_message(raw: bytes | str) -> ServerMessage:
    """Decode a server message for the client (its hot path).

    Unknown message types are returned with ``type`` set and no events (the caller counts and
    ignores them).  Events failing validation are dropped and counted in ``invalid``; they never
    raise.  Undecodable JSON, a non-object message, a non-string ``type`` or an ``initial`` or
    ``batch`` whose ``data`` is not an array raise :class:`ProtocolError`.
    Events are validated as by ``validate_event(event, require_id=True)``; batches of
    ``FUSED_MIN`` (6) or more go through a fused check first (:func:`wsnotebook.events.all_valid`),
    ~1.5-2.3x cheaper.
    """
    obj = decode_json(raw)
    if not isinstance(obj, dict):
        raise ProtocolError(f"message: expected object, got {json_type(obj)}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"type: expected string, got {json_type(kind)}")
    msg = ServerMessage(kind, data=obj.get("data"))
    if kind in ("initial", "batch", "event"):
        data = obj.get("data")
        items = [data] if kind == "event" else data
        if not isinstance(items, list):
            raise ProtocolError(f"data: expected array, got {json_type(items)}")
        msg.events, msg.invalid = _server_events(items)
        if kind == "initial":
            seq = obj.get("seq")
            msg.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
            epoch = obj.get("epoch")
            msg.epoch = epoch if isinstance(epoch, str) else None
            msg.reset = obj.get("reset") is True
    return msg
