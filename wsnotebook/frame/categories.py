"""Categories: the frame-wide string dictionary of one categorical column, and UTF-8 checks.

Owns: value -> int32 code (``None`` -> -1), the values in first-seen order, and how many rows of
the frozen chunks use each code (so values whose rows were all evicted can be found).

Invariants and bounds: codes are stable between compactions; a compaction keeps first-seen
order.  A column is checked for dead values once it holds :data:`COMPACT_MIN` values, then each
time it doubles (:meth:`Categories.rearm`); it is compacted when at least half are dead, so it
holds at most ``max(COMPACT_MIN, 2 * live values)`` values (~100-200 B each) however many
distinct values (e.g. one ``session_id`` per agent session) a long stream brings.  Every stored
string is valid UTF-8 (no lone surrogate): such a ``str`` could be stored but never frozen,
written to Parquet or shown.
"""

from __future__ import annotations

from itertools import compress
from typing import Any

import numpy as np

from ..errors import EventValidationError
from ..events import json_type

__all__ = ["COMPACT_MIN", "Categories", "check_utf8", "check_utf8_column"]

#: A category column is checked for dead values (all their rows evicted) once it holds this
#: many values, then each time it doubles; it is compacted when at least half are dead.  Bound:
#: at most ``max(COMPACT_MIN, 2 * live values)`` values per column (~100-200 B each).
COMPACT_MIN = 65536


class Categories:
    """Frame-wide string dictionary for one categorical column.

    Codes are stable between compactions.  Values whose rows were all evicted stay until
    :meth:`~.storage.ChunkStore.compact_categories` drops them (when the column holds at least
    ``COMPACT_MIN`` values and half of them are dead), so a long stream of distinct values
    (e.g. one ``session_id`` per agent session) cannot grow the dictionary without bound.
    """

    __slots__ = ("check_at", "codes", "counts", "values")

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {None: -1}
        self.values: list[str] = []
        self.counts = np.zeros(0, dtype=np.int64)  # retained rows per code in frozen chunks
        self.check_at = COMPACT_MIN  # len(values) at which to look for dead values again

    def add(self, column: str, value: Any) -> int:
        if not isinstance(value, str):
            raise EventValidationError(
                f"{column}: expected string, got {json_type(value)}", field=column
            )
        if not value.isascii():  # only new values get here: a dictionary hit was checked
            check_utf8(column, value)
        code = self.codes.get(value)
        if code is None:
            code = len(self.values)
            self.codes[value] = code
            self.values.append(value)
        return code

    def count(self, codes: np.ndarray, sign: int) -> None:
        """Add (``sign=1``) or remove (``-1``) the rows ``codes`` from the retained counts."""
        if len(self.counts) < len(self.values):
            grown = np.zeros(len(self.values), dtype=np.int64)
            grown[: len(self.counts)] = self.counts
            self.counts = grown
        valid = codes[codes >= 0]
        if len(valid):
            self.counts += sign * np.bincount(valid, minlength=len(self.counts))

    def live(self, open_codes: np.ndarray) -> np.ndarray:
        """Bool per code: used by a retained frozen row or by a row of the open chunk."""
        present = np.zeros(len(self.values), dtype=bool)
        present[: len(self.counts)] = self.counts > 0
        present[open_codes[open_codes >= 0]] = True
        return present

    def compact(self, live: np.ndarray) -> np.ndarray:
        """Keep only the ``live`` values (first-seen order kept); return the old -> new code
        map, indexable by old codes including -1 (which stays -1)."""
        n_live = int(live.sum())
        remap = np.full(len(self.values) + 1, -1, dtype=np.int32)
        remap[:-1][live] = np.arange(n_live, dtype=np.int32)
        counts = np.zeros(len(self.values), dtype=np.int64)
        counts[: len(self.counts)] = self.counts
        self.values = list(compress(self.values, live.tolist()))
        self.codes = {None: -1}
        self.codes.update(zip(self.values, range(n_live)))
        self.counts = counts[live]
        return remap

    def rearm(self) -> None:
        """Look for dead values again once the column has doubled (at least
        :data:`COMPACT_MIN` values)."""
        self.check_at = max(COMPACT_MIN, 2 * len(self.values))


def check_utf8(column: str, text: str) -> None:
    """Raise :class:`EventValidationError` naming ``column`` when ``text`` holds a lone
    surrogate (``"\\ud800"``): such a ``str`` cannot be encoded as UTF-8, so it could be
    stored but never frozen, written to Parquet or shown."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise EventValidationError(
            f"{column}: string is not valid UTF-8 (lone surrogate "
            f"{ascii(text[exc.start])[1:-1]} at index {exc.start})",
            field=column,
        ) from None


def check_utf8_column(column: str, values: list[Any]) -> None:
    """:func:`check_utf8` for a batch's ``str``/``None`` column: one join and one
    ``isascii`` pass in the common case, a per-value search only when it fails."""
    text = "".join(filter(None, values))
    if text.isascii():
        return
    try:
        text.encode()
    except UnicodeEncodeError:
        for value in values:
            if value:
                check_utf8(column, value)
