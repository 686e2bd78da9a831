"""Arguments: EventFrame's method and constructor arguments checked and normalised.

Pure.  Every refusal is a :class:`~wsnotebook.errors.ConfigError` whose message names the
method and the argument (``"tail: n must be an integer, got string '3'"``: the JSON type name
of the value, as users see it in events).  These messages are pinned by tests, which is why
:func:`wsnotebook._validate.integer` (``"... got str '3'"``) is not used here.

Bounds: ``1 <= max_rows <= MAX_ROWS_BOUND`` (100,000,000); ``1 <= chunk_rows <=
MAX_CHUNK_ROWS`` (1,048,576) and ``chunk_rows <= max_rows``.
"""

from __future__ import annotations

import contextlib
import operator
import re
from typing import Any

from ..errors import ConfigError
from ..events import json_type

__all__ = [
    "MAX_CHUNK_ROWS",
    "MAX_ROWS_BOUND",
    "category_arg",
    "count_arg",
    "frame_bounds",
    "int_arg",
    "search_pattern",
]

MAX_ROWS_BOUND = 100_000_000
MAX_CHUNK_ROWS = 1 << 20


def frame_bounds(max_rows: Any, chunk_rows: Any) -> tuple[int, int]:
    """The constructor's ``max_rows`` and ``chunk_rows`` (default ``min(16384, max_rows)``)
    checked against the bounds above."""
    if isinstance(max_rows, bool) or not isinstance(max_rows, int):
        raise ConfigError(f"max_rows must be an integer, got {type(max_rows).__name__}")
    if not 1 <= max_rows <= MAX_ROWS_BOUND:
        raise ConfigError(f"max_rows must be in 1..{MAX_ROWS_BOUND}, got {max_rows}")
    if chunk_rows is None:
        chunk_rows = min(16384, max_rows)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int):
        raise ConfigError(f"chunk_rows must be an integer, got {type(chunk_rows).__name__}")
    if not 1 <= chunk_rows <= min(MAX_CHUNK_ROWS, max_rows):
        raise ConfigError(
            f"chunk_rows must be in 1..{min(MAX_CHUNK_ROWS, max_rows)} "
            f"(and at most max_rows), got {chunk_rows}"
        )
    return max_rows, chunk_rows


def int_arg(method: str, name: str, value: Any) -> int:
    """``value`` as an ``int`` (``int`` or numpy integer, not ``bool``), else ConfigError."""
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            return operator.index(value)
    got = json_type(value) if value is None else f"{json_type(value)} {value!r}"
    raise ConfigError(f"{method}: {name} must be an integer, got {got}")


def count_arg(method: str, name: str, value: Any) -> int:
    """``value`` as an ``int >= 0`` (see :func:`int_arg`), else ConfigError."""
    n = int_arg(method, name, value)
    if n < 0:
        raise ConfigError(f"{method}: {name} must be >= 0, got {n}")
    return n


def category_arg(name: str, cond: Any) -> list[Any] | None:
    """A ``filter`` category condition (one string or an iterable of them) as a list."""
    if cond is None:
        return None
    if isinstance(cond, str):
        return [cond]
    if not isinstance(cond, (bytes, bytearray)):
        with contextlib.suppress(TypeError):
            items = list(cond)
            for v in items:  # None selects rows without a value
                if v is not None and not isinstance(v, str):
                    raise ConfigError(
                        f"filter: {name} values must be strings, got {json_type(v)} {v!r}"
                    )
            return items
    raise ConfigError(
        f"filter: {name} must be a string or an iterable of strings, got {json_type(cond)}"
    )


def search_pattern(search: Any) -> re.Pattern[str] | None:
    """``filter(search=...)`` compiled: a ``str`` or a compiled ``str`` pattern."""
    if search is None:
        return None
    if isinstance(search, str):
        try:
            return re.compile(search)
        except re.error as exc:
            raise ConfigError(f"filter: invalid search pattern {search!r}: {exc}") from None
    if isinstance(search, re.Pattern) and isinstance(search.pattern, str):
        return search
    raise ConfigError(
        "filter: search must be a str or a compiled str pattern (re.compile of a str), "
        f"got {json_type(search)}"
    )
