"""Snapshot: retained rows (pieces of chunks, see :mod:`.chunks`) turned into a typed pandas
DataFrame (:func:`build`), or into plain columns for the monitor's table (:class:`PlainColumns`).

Pure: reads chunks only (they are immutable or private copies), runs outside the frame's lock.
pandas is imported here lazily, inside the functions that build pandas objects, so storing and
appending never import it.

Invariants: payload dicts are fresh objects per call (mutating them does not change the frame);
a payload row JSON cannot decode is kept as its text (``str``) and logged, never fatal; epoch
stamps beyond what ``datetime64[ns]`` holds show as ``NaT`` (the latency columns keep the raw
numbers); a computed column (``latency_ms``, ``ingest_ms``, ``transit_ms``) wins over an
unknown field of the same name.  Cost: O(rows), garbage collection paused while building.
"""

from __future__ import annotations

import logging
from itertools import compress
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from ..runtime.gcpause import gc_paused
from .chunks import NSEP, SEP, Piece, concat, object_column

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TAIL_COLUMNS", "PlainColumns", "build", "ms_to_datetime"]

log = logging.getLogger("wsnotebook")

#: The computed columns at the end of a snapshot.
TAIL_COLUMNS = (
    "server_received",
    "client_received",
    "latency_ms",
    "ingest_ms",
    "transit_ms",
)


#: Largest ``abs(epoch ms)`` shown as a datetime: whole ms plus the fraction in ns must fit in
#: int64 nanoseconds (datetime64[ns] spans ~1677-09-21 .. 2262-04-11).
_MS_DATETIME_LIMIT = float((np.iinfo(np.int64).max // 1_000_000) - 1)


def ms_to_datetime(ms: np.ndarray) -> pd.DatetimeIndex:
    """Epoch milliseconds (float, NaN = missing) -> UTC datetimes (NaT = missing, and for
    values beyond ``±_MS_DATETIME_LIMIT``, outside what datetime64[ns] can hold: they would
    wrap around int64 into plausible wrong dates).

    Whole milliseconds are converted exactly (``ms * 1e6`` in float64 would be off by up to
    ~100 ns at today's epochs); the fraction keeps sub-millisecond stamps to the nanosecond."""
    import pandas as pd

    ok = np.abs(ms) <= _MS_DATETIME_LIMIT  # False for NaN and inf too (no warning)
    clean = np.where(ok, ms, 0.0)
    whole = np.floor(clean)
    ns = whole.astype(np.int64) * 1_000_000 + np.rint((clean - whole) * 1e6).astype(np.int64)
    ns[~ok] = np.iinfo(np.int64).min
    return pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")


class PlainColumns:
    """Rows of some pieces as plain lists, read like a DataFrame by the monitor's
    ``render_table``: ``len()``, ``columns`` and ``[name]``.  Columns: ``id``, ``timestamp``
    (pandas ``Timestamp``/``NaT``), ``source_app``, ``session_id``, ``hook_event_type``,
    ``summary``, ``payload_json`` (each payload's JSON text, ``bytes``: not decoded, the table
    previews it from the text), ``latency_ms`` (client_received - timestamp, NaN)."""

    columns = (
        "id",
        "timestamp",
        "source_app",
        "session_id",
        "hook_event_type",
        "summary",
        "payload_json",
        "latency_ms",
    )

    def __init__(self, pieces: list[Piece], values: list[list[str]]) -> None:
        ids = concat([c.ids[sl] for c, sl in pieces], np.int64)
        n = len(ids)
        ts = concat([c.ts[sl] for c, sl in pieces], np.float64)
        cr = concat([c.cr[sl] for c, sl in pieces], np.float64)
        cols: dict[str, list[Any]] = {
            "id": ids.tolist(),
            "timestamp": list(ms_to_datetime(ts)),
            "summary": object_column(pieces, "summary", n),
            "payload_json": _payload_bytes(pieces),
            "latency_ms": (cr - ts).tolist(),
        }
        for j, name in enumerate(("source_app", "session_id", "hook_event_type")):
            codes = concat([c.cats[j][sl] for c, sl in pieces], np.int32).tolist()
            names = values[j]
            cols[name] = [names[k] if k >= 0 else None for k in codes]
        self._cols = cols
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, name: str) -> list[Any]:
        return self._cols[name]


def _payloads(pieces: list[Piece]) -> list[Any]:
    out: list[Any] = []
    for chunk, sl in pieces:
        if isinstance(sl, slice):
            a, b, _ = sl.indices(chunk.n)
            if b <= a:
                continue
            text = b"[" + chunk.text()[chunk.off[a] : chunk.off[b] - NSEP] + b"]"
        else:
            if not len(sl):
                continue
            whole = chunk.text()
            text = b"[" + SEP.join([chunk.row_text(whole, i) for i in sl.tolist()]) + b"]"
        try:
            out.extend(orjson.loads(text))
        except orjson.JSONDecodeError:
            out.extend(_decode_rows(text))
    return out


def _decode_rows(text: bytes) -> list[Any]:
    """Each row of a joined ``[...]`` payload text decoded alone; a row JSON cannot decode is
    kept as its text (``str``).  Only the client's columnar path can store one (it checks a
    payload's UTF-8 but does not parse it): a number beyond the float range sent by a foreign
    server that claims to be wsnotebook.  One such row must not make the chunk undecodable."""
    rows: list[Any] = []
    for raw in text[1:-1].split(SEP):
        try:
            rows.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            log.warning("EventFrame: a payload is not decodable JSON; kept as text: %.80r", raw)
            rows.append(raw.decode("utf-8", "replace"))
    return rows


def _payload_bytes(pieces: list[Piece]) -> list[bytes]:
    """Each row's payload JSON text, not decoded."""
    out: list[bytes] = []
    for chunk, sl in pieces:
        text = chunk.text()
        if isinstance(sl, slice):
            a, b, _ = sl.indices(chunk.n)
            if b > a:
                out.extend(text[chunk.off[a] : chunk.off[b] - NSEP].split(SEP))
        else:
            out.extend(chunk.row_text(text, i) for i in sl.tolist())
    return out


def _object_array(values: list[Any]) -> pd.Series:
    """An object column (pandas 3 would otherwise infer its ``str`` dtype for strings)."""
    import pandas as pd

    arr = np.fromiter(values, dtype=object, count=len(values))
    return pd.Series(arr, dtype=object, copy=False)


def _payload_texts(pieces: list[Piece]) -> list[str]:
    out: list[str] = []
    sep = SEP.decode()
    for chunk, sl in pieces:
        text = chunk.text()
        if isinstance(sl, slice):
            a, b, _ = sl.indices(chunk.n)
            if b > a:
                out.extend(text[chunk.off[a] : chunk.off[b] - NSEP].decode().split(sep))
        else:
            out.extend(chunk.row_text(text, i).decode() for i in sl.tolist())
    return out


def _categorical(codes: np.ndarray, values: list[str]) -> pd.Categorical:
    """Codes -> Categorical holding only the categories present (first-seen order)."""
    import pandas as pd

    if not len(codes) or not values:
        return pd.Categorical.from_codes(
            np.full(len(codes), -1, dtype=np.int32), categories=pd.Index([], dtype=object)
        )
    used = np.bincount(codes[codes >= 0], minlength=len(values)) > 0
    remap = np.full(len(values) + 1, -1, dtype=np.int32)
    remap[:-1][used] = np.arange(int(used.sum()), dtype=np.int32)
    cats = list(compress(values, used.tolist()))
    return pd.Categorical.from_codes(remap[codes], categories=pd.Index(cats, dtype=object))


def build(pieces: list[Piece], values: list[list[str]], *, payload: str = "dict") -> pd.DataFrame:
    import pandas as pd

    ids = concat([c.ids[sl] for c, sl in pieces], np.int64)
    n = len(ids)
    ts = concat([c.ts[sl] for c, sl in pieces], np.float64)
    sr = concat([c.sr[sl] for c, sl in pieces], np.float64)
    cr = concat([c.cr[sl] for c, sl in pieces], np.float64)
    cats = [concat([c.cats[j][sl] for c, sl in pieces], np.int32) for j in range(len(values))]
    with gc_paused():
        payload_col = (
            _object_array(_payloads(pieces))
            if payload == "dict"
            else _object_array(_payload_texts(pieces))
            if payload == "json"
            else None
        )
        chat_text = object_column(pieces, "chat", n)
        chat = [None if t is None else orjson.loads(t) for t in chat_text]
        extra_text = object_column(pieces, "extra", n)
        extras: dict[str, list[Any]] = {}
        for i, text in enumerate(extra_text):
            if text is None:
                continue
            for key, value in orjson.loads(text).items():
                col = extras.get(key)
                if col is None:
                    col = extras[key] = [None] * n
                col[i] = value
        model_lookup = np.array([*values[3], None], dtype=object)
        data: dict[str, Any] = {
            "id": ids,
            "timestamp": ms_to_datetime(ts),
            "source_app": _categorical(cats[0], values[0]),
            "session_id": _categorical(cats[1], values[1]),
            "hook_event_type": _categorical(cats[2], values[2]),
            "payload": payload_col,
            "summary": _object_array(object_column(pieces, "summary", n)),
            "model_name": pd.Series(model_lookup[cats[3]], dtype=object, copy=False),
            "chat": _object_array(chat),
        }
        if payload_col is None:
            del data["payload"]
        for key, col in extras.items():
            if key not in data and key not in TAIL_COLUMNS:
                data[key] = _object_array(col)
        data["server_received"] = ms_to_datetime(sr)
        data["client_received"] = ms_to_datetime(cr)
        data["latency_ms"] = cr - ts
        data["ingest_ms"] = sr - ts
        data["transit_ms"] = cr - sr
        return pd.DataFrame(data, copy=False)
