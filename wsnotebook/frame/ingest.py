"""Ingest: a batch of events (dicts, or columns from the client's decoder) turned into validated
:class:`~.chunks.Columns` and category codes, and split from its duplicate ids.

Pure logic: nothing here writes frame state except new values in the category dictionaries
(:meth:`~.categories.Categories.add`), and nothing is written at all when a batch is refused,
so :mod:`.storage` can write a batch all-or-nothing.

Invariants of what leaves here: ids are ``int`` within int64 (-1: no id); stamps are ``float``
epoch ms (NaN: missing), never ``bool`` or ``str`` (``"123"`` is not 123 ms); payload, ``chat``
and unknown top-level fields are JSON-encodable (encoded here); strings are valid UTF-8.  Any
violation raises :class:`~wsnotebook.errors.EventValidationError` naming the field.

Hot path (every ``extend``): C-level ``map``/``itemgetter``/``dict.get`` passes per column, not
Python loops per event; exact per-event checks run only when a fast check failed.
"""

from __future__ import annotations

import operator
from array import array
from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np
import orjson

from ..errors import EventValidationError
from ..events import Event, json_type
from ..events.columns import EventColumns
from .categories import Categories, check_utf8_column
from .chunks import CAT_COLUMNS, Columns
from .idset import IdSet

__all__ = [
    "KNOWN",
    "NAN",
    "STAMPS",
    "category_codes",
    "check_int64",
    "decoded_columns",
    "dedupe_events",
    "dedupe_ids",
    "dumps_text",
    "event_columns",
    "stamp_list",
]

#: Top-level fields with a column of their own; any other field goes to ``extra``.
KNOWN = frozenset(
    {
        "id",
        "source_app",
        "session_id",
        "hook_event_type",
        "payload",
        "timestamp",
        "chat",
        "summary",
        "model_name",
        "server_received",
        "client_received",
    }
)
NAN = float("nan")
#: Fewest ids of a contiguous run written as one ``np.arange`` (fewer: the decoded ints).
_ARANGE_MIN = 128
_NO_CODE = array("i", (-1,))
_UNSEEN = -2  # category code placeholder for a value not in the dictionary yet
_STR_OR_NONE = frozenset({str, type(None)})
#: The epoch-ms stamp columns, in the order of a chunk's ``ts``, ``sr``, ``cr``.
STAMPS = ("timestamp", "server_received", "client_received")
_REQUIRED_NAMES = ("source_app", "session_id", "hook_event_type", "payload")
_REQUIRED_GETTERS = tuple(operator.itemgetter(name) for name in _REQUIRED_NAMES)


def _float_column(name: str, values: Any) -> np.ndarray:
    """Epoch-ms values (``None`` -> NaN) as float64, or a precise validation error."""
    if isinstance(values, np.ndarray) and values.dtype == np.float64:
        return values
    try:
        out = np.array(values, dtype=np.float64)
        if out.ndim != 1:
            raise ValueError(f"expected one number per row, got shape {out.shape}")
        return out
    except (TypeError, ValueError, OverflowError) as exc:
        raise EventValidationError(
            f"{name}: expected number (epoch ms): {exc}", field=name
        ) from None


_FLOAT_TYPES = frozenset({float, type(None)})
_NUMBER_TYPES = frozenset({float, int, type(None)})
_NUMBER_CLASSES = (int, float, np.integer, np.floating)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def stamp_list(name: str, values: Any) -> list[Any]:
    """Epoch-ms values as a list of ``float`` (NaN when missing; one C-level type pass in the
    common case), or a precise validation error; other number types (numpy scalars, ``int``
    and ``float`` subclasses) go through numpy.  Booleans and strings are refused as
    :func:`~wsnotebook.events.validate_event` refuses them (``"123"`` is not 123 ms)."""
    if isinstance(values, np.ndarray):
        out: list[Any] = _float_column(name, values).tolist()
        return out
    types = set(map(type, values))
    if types == {float}:
        return values if isinstance(values, list) else list(values)
    if types <= _FLOAT_TYPES:
        return [NAN if v is None else v for v in values]
    if types <= _NUMBER_TYPES:
        try:  # ints too large for a float fail here, before anything is stored
            if type(None) in types:
                return [NAN if v is None else float(v) for v in values]
            return list(map(float, values))
        except OverflowError as exc:
            raise EventValidationError(
                f"{name}: expected number (epoch ms): {exc}", field=name
            ) from None
    for v in values:
        if v is not None and (
            isinstance(v, (bool, np.bool_)) or not isinstance(v, _NUMBER_CLASSES)
        ):
            raise EventValidationError(
                f"{name}: expected number (epoch ms), got {json_type(v)}", field=name
            )
    out = _float_column(name, values).tolist()
    return out


def check_int64(lo: int, hi: int) -> None:
    if lo < _INT64_MIN or hi > _INT64_MAX:
        bad = lo if lo < _INT64_MIN else hi
        raise EventValidationError(
            f"id: expected integer: {bad} does not fit in 64 bits", field="id"
        )


def dumps_text(value: Any, column: str) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as exc:
        raise EventValidationError(
            f"{column}: cannot encode as JSON: {exc}", field=column
        ) from None


def dedupe_ids(
    ids: Sequence[int], idset: IdSet
) -> tuple[list[int] | None, list[int], tuple[int, int] | None]:
    """Dedupe for ``extend_columns`` against ``idset`` (ids are ints within int64; -1: no
    id).  Returns (row indices to keep, or None for all; ids to remember one by one; contiguous
    run ``(first, last)`` or None)."""
    k = len(ids)
    first, last = ids[0], ids[-1]
    top = idset.max()
    if (
        last - first == k - 1
        and first != -1
        and (top is None or first > top)
        and list(ids) == list(range(first, last + 1))
    ):
        return None, [], (first, last)
    keep: list[int] = []
    new_ids: list[int] = []
    seen: set[int] = set()
    for i, ident in enumerate(ids):
        if ident != -1:
            if ident in seen or ident in idset:
                continue
            seen.add(ident)
            new_ids.append(ident)
        keep.append(i)
    return (None if len(keep) == k else keep), new_ids, None


def decoded_columns(
    cols: EventColumns, run: tuple[int, int] | None, cats: Sequence[Categories]
) -> tuple[Columns, list[Any]]:
    """:func:`event_columns` for decoded columns: numeric columns as numpy arrays (copied into
    the open chunk with one memcpy each), category codes, chat as JSON text."""
    k = cols.n
    # Few numpy calls on purpose: the client's paced messages are small and run cold, where
    # one numpy call costs ~10-25 us (events/columns.py, ``stamp_array``).  Ids and codes go
    # to the chunk as lists/tuples (one ``fromlist``/``extend``); a long contiguous run of ids
    # as one ``np.arange`` (cheaper than boxing a thousand ints).
    codes_all: list[Any] = [
        _NO_CODE * k  # an array('i'): copied with one memcpy
        if values[0] is None and values.count(None) == k  # [0] first: count is slow on str
        else category_codes(cats[j], CAT_COLUMNS[j], values)
        for j, values in enumerate(
            (cols.source_app, cols.session_id, cols.hook_event_type, cols.model_name)
        )
    ]
    ids: Any = (
        np.arange(run[0], run[1] + 1, dtype=np.int64)
        if run is not None and k >= _ARANGE_MIN
        else cols.id
    )
    ts, sr = cols.timestamp, cols.server_received
    cr: Any = cols.client_received
    if type(cr) is not array:  # values as decoded (float or None)
        cr = stamp_list("client_received", cr)
    chat: Sequence[Any] = cols.chat
    if not (chat[0] is None and chat.count(None) == k):
        chat = [dumps_text(c, "chat") for c in chat]
    data = Columns(ids, ts, sr, cr, cols.payload, cols.summary, chat, [None] * k)
    data.lens = cols.payload_len
    data.blob = cols.payload_blob
    return data, codes_all


def dedupe_events(
    batch: Sequence[Event], idset: IdSet
) -> tuple[Sequence[Event], list[int], tuple[int, int] | None, list[int]]:
    """Split off the duplicates of ``batch`` (ids in ``idset`` or earlier in the batch).
    Returns (kept events, ids to remember one by one, fast-path run ``(first, last)`` or None,
    the kept events' ids with -1 for "no id").  Ids that do not fit in int64 raise before
    anything is remembered."""
    k = len(batch)
    first = batch[0].get("id")
    last = batch[-1].get("id")
    top = idset.max()
    if (
        type(first) is int
        and type(last) is int
        and last - first == k - 1
        and (top is None or first > top)
    ):
        # The common case: the next contiguous run of ids.  Checked in C-level passes.
        ids: list[Any] = list(map(dict.get, batch, repeat("id")))
        if k == 1 or (set(map(type, ids)) == {int} and ids == list(range(first, last + 1))):
            check_int64(first, last)
            return batch, [], (first, last), ids
    kept: list[Event] = []
    kept_ids: list[int] = []
    new_ids: list[int] = []
    seen: set[int] = set()
    for ev in batch:
        ident = ev.get("id")
        if ident is None or ident == -1:
            kept.append(ev)
            kept_ids.append(-1)
            continue
        if type(ident) is not int:
            raise EventValidationError(f"id: expected integer, got {json_type(ident)}", field="id")
        if ident in seen or ident in idset:
            continue
        seen.add(ident)
        new_ids.append(ident)
        kept.append(ev)
        kept_ids.append(ident)
    if new_ids:
        check_int64(min(new_ids), max(new_ids))
    return kept, new_ids, None, kept_ids


def category_codes(cats: Categories, column: str, values: Sequence[Any]) -> list[int]:
    """Category codes of ``values`` in ``cats`` (new strings get new codes)."""
    # _UNSEEN (an int) rather than None marks misses: ``in`` on ints is a fast identity or
    # int comparison, while comparing ints with None takes Python's slow rich-compare path.
    codes: list[Any] = list(map(cats.codes.get, values, repeat(_UNSEEN)))
    if _UNSEEN in codes:  # unseen value (or not a string: rejected by ``add``)
        for i, code in enumerate(codes):
            if code == _UNSEEN:
                codes[i] = cats.add(column, values[i])
    return codes


def event_columns(
    kept: Sequence[Event], ids: list[int], cats: Sequence[Categories], *, all_ids: bool = False
) -> tuple[Columns, list[list[int]]]:
    """Column lists for ``kept`` (validated; no frame state changes except new categories).

    Hot path of ``extend``: C-level ``itemgetter``/``map``/``dict.get`` passes instead of
    per-field Python loops, and unknown top-level fields are detected by counting keys
    (exact check only when the counts say there may be some)."""
    k = len(kept)
    try:
        app, sess, hook, payloads = (list(map(get, kept)) for get in _REQUIRED_GETTERS)
        n_required = 4 * k
    except KeyError:  # a required field is missing: store it as null
        app, sess, hook, payloads = (list(map(dict.get, kept, repeat(f))) for f in _REQUIRED_NAMES)
        n_required = sum(k - col.count(None) for col in (app, sess, hook, payloads))
    models = list(map(dict.get, kept, repeat("model_name")))
    codes_all = [
        category_codes(cats[0], CAT_COLUMNS[0], app),
        category_codes(cats[1], CAT_COLUMNS[1], sess),
        category_codes(cats[2], CAT_COLUMNS[2], hook),
        category_codes(cats[3], CAT_COLUMNS[3], models),
    ]
    try:
        parts = list(map(orjson.dumps, payloads))
    except TypeError:
        try:
            parts = [orjson.dumps(p, option=orjson.OPT_NON_STR_KEYS) for p in payloads]
        except TypeError as exc:
            raise EventValidationError(
                f"payload: cannot encode as JSON: {exc}", field="payload"
            ) from None
    raw_stamps = [list(map(dict.get, kept, repeat(name))) for name in STAMPS]
    stamps = [stamp_list(name, raw) for name, raw in zip(STAMPS, raw_stamps)]
    summary = list(map(dict.get, kept, repeat("summary")))
    n_summary = k - summary.count(None)
    if n_summary:
        if not set(map(type, summary)) <= _STR_OR_NONE:
            for s in summary:  # str subclasses are fine
                if s is not None and not isinstance(s, str):
                    raise EventValidationError(
                        f"summary: expected string or null, got {json_type(s)}",
                        field="summary",
                    )
        check_utf8_column("summary", summary)
    chat = list(map(dict.get, kept, repeat("chat")))
    n_chat = k - chat.count(None)
    if n_chat:
        chat = [dumps_text(c, "chat") for c in chat]
    # Keys we can account for; explicit nulls count as absent, so this never overestimates.
    known = n_required + n_summary + n_chat + (k - models.count(None))
    known += k if all_ids else k - ids.count(-1)
    known += sum(k - a.count(None) for a in raw_stamps)
    extra: list[Any]
    if sum(map(len, kept)) > known:
        flags = list(map(KNOWN.issuperset, kept))
        extra = [
            None
            if ok
            else dumps_text({key: v for key, v in e.items() if key not in KNOWN}, "extra")
            for ok, e in zip(flags, kept)
        ]
    else:
        extra = [None] * k
    ts, sr, cr = stamps
    return Columns(ids, ts, sr, cr, parts, summary, chat, extra), codes_all
