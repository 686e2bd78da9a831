"""Store URLs: what ``serve(store=...)`` accepts, and the store it builds.

``"memory"`` is a :class:`~.memory.MemoryStore`; ``"sqlite:///path"`` a
:class:`~.sqlite.SQLiteStore` (three slashes then a relative path, four for an absolute one);
``"redis://host:port/db?stream=NAME"`` (or ``rediss://`` for TLS) a :class:`~.redis.RedisStore`
(:mod:`.redis_url` has the parameters); a :class:`~.base.Store` instance is used as given.
Anything else is a ConfigError naming the accepted forms.  Pure apart from building the store
(which opens nothing: ``open()`` does).  :func:`safe_store_url` is the text to show or log (a
Redis password replaced by ``***``).
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import DEFAULT_RETAIN_BYTES, Store
from .memory import MemoryStore
from .redis import RedisStore
from .redis_url import is_redis_url, parse_redis_url, redact_url
from .sqlite import SQLiteStore

__all__ = ["open_store", "parse_store_url", "safe_store_url"]

_FORMS = "'memory', 'sqlite:///path/to/file.db' or 'redis://host:port/db?stream=name'"


def parse_store_url(store: str) -> tuple[str, str]:
    """``"memory"`` -> ``("memory", "")``; ``"sqlite:///rel.db"`` -> ``("sqlite", "rel.db")``;
    ``"sqlite:////abs.db"`` -> ``("sqlite", "/abs.db")``; ``"redis://..."`` -> ``("redis",
    url)`` (checked by :func:`~.redis_url.parse_redis_url`).  Anything else: ConfigError."""
    if store == "memory":
        return "memory", ""
    if isinstance(store, str) and store.startswith("sqlite:///"):
        path = store[len("sqlite:///") :]
        if not path:
            raise ConfigError("store: sqlite URL needs a path, e.g. sqlite:///events.db")
        return "sqlite", path
    if is_redis_url(store):
        parse_redis_url(store)
        return "redis", store
    shown = redact_url(store) if isinstance(store, str) else store
    raise ConfigError(f"store: expected {_FORMS}, got {shown!r}")


def safe_store_url(store: str | Store) -> str:
    """What to show of a store value: the URL with any password replaced by ``***`` (a store
    instance: its kind)."""
    if isinstance(store, Store):
        return f"<{store.kind} store>"
    return redact_url(store)


def open_store(
    store: str | Store, *, retain: int, retain_bytes: int = DEFAULT_RETAIN_BYTES
) -> Store:
    """Build a store from a ``serve(store=...)`` value (a URL string or a :class:`Store`, used
    as given: its own ``retain`` and ``retain_bytes`` apply)."""
    if isinstance(store, Store):
        return store
    kind, path = parse_store_url(store)
    if kind == "memory":
        return MemoryStore(retain=retain, retain_bytes=retain_bytes)
    if kind == "redis":
        return RedisStore(path, retain=retain, retain_bytes=retain_bytes)
    return SQLiteStore(path, retain=retain, retain_bytes=retain_bytes)
