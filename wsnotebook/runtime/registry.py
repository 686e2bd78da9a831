"""``Registry``: the one type that tracks running servers, clients, monitors and producers.

Invariants: every method takes the registry's own lock, so a registry is safe to use from any
thread (cells, the background loop, widget callbacks on a comm subshell); it holds strong
references, so a running object lives until it unregisters itself (its ``stop``/``close``);
``remove(key, obj)`` removes only that object, never a newer one registered under the same key
(a server restarted on its port, a monitor re-created for the same target).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Running objects of one kind, by key (a port, a target's id, the object's own id)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._lock = threading.Lock()
        self._items: dict[Hashable, T] = {}

    def add(self, key: Hashable, obj: T) -> T | None:
        """Register ``obj`` under ``key``; returns the object it replaces (or ``None``)."""
        with self._lock:
            old = self._items.get(key)
            self._items[key] = obj
        return old if old is not obj else None

    def get(self, key: Hashable) -> T | None:
        with self._lock:
            return self._items.get(key)

    def remove(self, key: Hashable, obj: T) -> bool:
        """Unregister ``obj`` if it is still the one under ``key``; True when it was."""
        with self._lock:
            if self._items.get(key) is obj:
                del self._items[key]
                return True
        return False

    def items(self, where: Callable[[T], bool] | None = None) -> list[T]:
        """A snapshot list of the registered objects (those passing ``where`` when given)."""
        with self._lock:
            objs = list(self._items.values())
        return objs if where is None else [o for o in objs if where(o)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __repr__(self) -> str:
        return f"<Registry {self.kind}: {len(self)} registered>"
