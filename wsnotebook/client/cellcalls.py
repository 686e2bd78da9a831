"""Notebook hygiene for ``connect()``: re-running a cell does not stack clients.

A call from an IPython cell is known by (cell file, line, URL): ipykernel names a cell's code
after a hash of its text, so re-running the same cell gives the same key, editing it a new one.
:class:`CellCalls` remembers the client each key started and the options it was started with.
Calls from scripts and tests (any other file) are never remembered: two calls, two clients.
"""

from __future__ import annotations

import sys
from typing import Any, Generic, TypeVar

__all__ = ["CellCalls", "cell_call"]

T = TypeVar("T")
Key = tuple[str, int, str]


def cell_call(url: Any, depth: int = 2) -> Key | None:
    """(cell file, line, url) when the function ``depth`` frames up was called from an IPython
    cell, else None."""
    try:
        caller = sys._getframe(depth)
    except ValueError:  # pragma: no cover - no such frame
        return None
    name = caller.f_code.co_filename
    if "ipykernel_" not in name and not name.startswith("<ipython-input"):
        return None
    return (name, caller.f_lineno, repr(url))


class CellCalls(Generic[T]):
    """The object each cell call started, with a fingerprint of its options."""

    def __init__(self) -> None:
        self._items: dict[Key, tuple[T, str]] = {}

    @staticmethod
    def fingerprint(options: dict[str, Any]) -> str:
        return repr(sorted(options.items()))

    def get(self, key: Key, options: dict[str, Any]) -> tuple[T | None, bool]:
        """(the object ``key`` started or None, whether its options equal ``options``)."""
        item = self._items.get(key)
        if item is None:
            return None, False
        return item[0], item[1] == self.fingerprint(options)

    def put(self, key: Key, obj: T, options: dict[str, Any]) -> None:
        self._items[key] = (obj, self.fingerprint(options))
