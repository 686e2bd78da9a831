"""Store URLs: what ``serve(store=...)`` accepts, and the store it builds.

``"memory"`` is a :class:`~.memory.MemoryStore`; ``"sqlite:///path"`` a
:class:`~.sqlite.SQLiteStore` (three slashes then a relative path, four for an absolute one); a
:class:`~.base.Store` instance is used as given.  Anything else is a ConfigError naming the
accepted forms.  Pure apart from building the store (which opens nothing: ``open()`` does).
"""

from __future__ import annotations

from ..errors import ConfigError
from .base import DEFAULT_RETAIN_BYTES, Store
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = ["open_store", "parse_store_url"]


def parse_store_url(store: str) -> tuple[str, str]:
    """``"memory"`` -> ``("memory", "")``; ``"sqlite:///rel.db"`` -> ``("sqlite", "rel.db")``;
    ``"sqlite:////abs.db"`` -> ``("sqlite", "/abs.db")``.  Anything else: ConfigError."""
    if store == "memory":
        return "memory", ""
    if isinstance(store, str) and store.startswith("sqlite:///"):
        path = store[len("sqlite:///") :]
        if not path:
            raise ConfigError("store: sqlite URL needs a path, e.g. sqlite:///events.db")
        return "sqlite", path
    raise ConfigError(f"store: expected 'memory' or 'sqlite:///path/to/file.db', got {store!r}")


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
    return SQLiteStore(path, retain=retain, retain_bytes=retain_bytes)
