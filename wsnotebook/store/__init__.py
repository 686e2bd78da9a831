"""Where a server keeps its events: the Store interface, the in-memory ring and SQLite."""

from __future__ import annotations

from .store import (
    FACET_FIELDS,
    MAX_RETAIN,
    MIN_RETAIN,
    Appendable,
    Encoded,
    MemoryStore,
    SQLiteStore,
    Store,
    StoredEvent,
    open_store,
    parse_store_url,
    snapshot_events,
    stamp,
    stamp_all,
    stored_event,
)

__all__ = [
    "FACET_FIELDS",
    "MAX_RETAIN",
    "MIN_RETAIN",
    "Appendable",
    "Encoded",
    "MemoryStore",
    "SQLiteStore",
    "Store",
    "StoredEvent",
    "open_store",
    "parse_store_url",
    "snapshot_events",
    "stamp",
    "stamp_all",
    "stored_event",
]
