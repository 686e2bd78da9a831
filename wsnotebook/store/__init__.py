"""Where a server keeps its events: the Store interface, the in-memory ring and SQLite.

Modules: ``base`` (the :class:`Store` interface, :class:`StoredEvent`, :class:`Encoded`, retain
and retain_bytes bounds) · ``stamping`` (ids, timestamps, encoding once; pure) · ``memory``
(the bounded ring, :class:`MemoryStore`) · ``sqlite_db`` (lock, schema, open) · ``sqlite``
(:class:`SQLiteStore`: writer thread with group commit, cached reads) · ``redis`` (the Redis
Streams store, :class:`RedisStore`: many servers on one stream; ``redis_url``, ``redis_lua``,
``redis_group``, ``redis_conn``: its URL, scripts, group commit and connections;
``redis_local``: a throwaway redis-server for demos and tests) · ``url`` (``serve(store=...)``
values).
Both backends stamp events the same way (:func:`stamp`): ``id`` increasing from 1 in a fresh
store, ``timestamp`` (epoch ms int) when absent, ``server_received`` (epoch ms float); each
stored event is encoded to JSON once and the bytes are reused by every reply, replay and
broadcast.
"""

from __future__ import annotations

from .base import (
    DEFAULT_RETAIN_BYTES,
    FACET_FIELDS,
    MAX_RETAIN,
    MAX_RETAIN_BYTES,
    MIN_RETAIN,
    MIN_RETAIN_BYTES,
    Appendable,
    Encoded,
    Store,
    StoredEvent,
    stored_event,
)
from .memory import MemoryStore
from .redis import RedisOptions, RedisStore
from .sqlite import SQLiteStore
from .stamping import snapshot_events, stamp, stamp_all
from .url import open_store, parse_store_url, safe_store_url

__all__ = [
    "DEFAULT_RETAIN_BYTES",
    "FACET_FIELDS",
    "MAX_RETAIN",
    "MAX_RETAIN_BYTES",
    "MIN_RETAIN",
    "MIN_RETAIN_BYTES",
    "Appendable",
    "Encoded",
    "MemoryStore",
    "RedisOptions",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "StoredEvent",
    "open_store",
    "parse_store_url",
    "safe_store_url",
    "snapshot_events",
    "stamp",
    "stamp_all",
    "stored_event",
]
