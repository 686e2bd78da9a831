"""The event model (``model``) and the columnar batch decode of the client's hot path (``columns``).

Bottom layer above :mod:`wsnotebook.errors`: nothing here imports another part of the package.
"""

from __future__ import annotations

from .columns import (
    BATCH_PREFIX,
    COLUMNS_PREFIX,
    EVENT_PREFIX,
    PAYLOAD_SEP,
    EventColumns,
    EventRecord,
    columns_from_records,
    columns_message,
    columns_message_batch,
    decode_batch_columns,
    decode_columns_message,
    decode_event_burst,
    decode_event_message,
)
from .model import (
    DEFAULT_MAX_BATCH_EVENTS,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_MESSAGE_BYTES,
    FUSED_MIN,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    Event,
    all_valid,
    decode_events,
    decode_json,
    encode_json,
    iter_ids,
    json_type,
    now_ms,
    validate_event,
    validate_events,
)

__all__ = [
    "BATCH_PREFIX",
    "COLUMNS_PREFIX",
    "EVENT_PREFIX",
    "DEFAULT_MAX_BATCH_EVENTS",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "FUSED_MIN",
    "OPTIONAL_FIELDS",
    "PAYLOAD_SEP",
    "REQUIRED_FIELDS",
    "Event",
    "EventColumns",
    "all_valid",
    "EventRecord",
    "columns_from_records",
    "columns_message",
    "columns_message_batch",
    "decode_batch_columns",
    "decode_columns_message",
    "decode_event_burst",
    "decode_event_message",
    "decode_events",
    "decode_json",
    "encode_json",
    "iter_ids",
    "json_type",
    "now_ms",
    "validate_event",
    "validate_events",
]
