"""Sans-I/O core of the wire protocol: messages, batching, reconnect policy, admission.

Nothing here touches a socket or reads the clock by itself: clocks and random number generators
are injected, so every policy is unit-tested exhaustively and fast.  The server and the client
are thin asyncio shells around these classes.  The wire protocol is documented in
``docs/protocol.md``.

* ``messages``  -- message types, encoders and parsers, close codes, size fitting
* ``batching``  -- :class:`Batcher` (size / interval / bytes, injected clock)
* ``reconnect`` -- :class:`Backoff` (exponential + full jitter), :class:`ResumeState`, :class:`Gap`
* ``admission`` -- :class:`RateLimiter` (per-key token buckets, bounded key count)
* ``endpoints`` -- :func:`events_endpoint` (the ``POST /events`` URL of any server URL)
"""

from __future__ import annotations

from .admission import RateLimiter
from .batching import Batcher
from .endpoints import events_endpoint
from .messages import (
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL,
    CLOSE_NORMAL,
    CLOSE_POLICY,
    CLOSE_RESTART,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN,
    ENVELOPE_BYTES,
    MAX_ERROR_CHARS,
    MESSAGE_TYPES_FROM_CLIENT,
    MESSAGE_TYPES_FROM_SERVER,
    PROTOCOL_VERSION,
    RETRYABLE_CLOSE_CODES,
    WSNOTEBOOK_HEADER,
    ClientMessage,
    ServerMessage,
    batch_message,
    encode_event,
    error_message,
    event_message,
    event_room,
    fit_newest,
    fit_oldest,
    gap_message,
    heartbeat_message,
    initial_message,
    parse_client_message,
    parse_server_message,
)
from .reconnect import Backoff, Gap, ResumeState

__all__ = [
    "events_endpoint",
    "CLOSE_GOING_AWAY",
    "CLOSE_INTERNAL",
    "CLOSE_NORMAL",
    "CLOSE_POLICY",
    "CLOSE_RESTART",
    "CLOSE_TOO_BIG",
    "CLOSE_TRY_AGAIN",
    "ENVELOPE_BYTES",
    "MAX_ERROR_CHARS",
    "MESSAGE_TYPES_FROM_CLIENT",
    "MESSAGE_TYPES_FROM_SERVER",
    "PROTOCOL_VERSION",
    "RETRYABLE_CLOSE_CODES",
    "WSNOTEBOOK_HEADER",
    "Backoff",
    "Batcher",
    "ClientMessage",
    "Gap",
    "RateLimiter",
    "ResumeState",
    "ServerMessage",
    "batch_message",
    "encode_event",
    "error_message",
    "event_message",
    "event_room",
    "fit_newest",
    "fit_oldest",
    "gap_message",
    "heartbeat_message",
    "initial_message",
    "parse_client_message",
    "parse_server_message",
]
