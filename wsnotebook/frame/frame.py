"""EventFrame: a thread-safe, bounded, columnar store of events with a pandas view.

Storage (why it looks like this: measured, see ``benchmarks/bench_frame.py``):

* Rows live in **chunks** of up to ``chunk_rows`` rows (default ``min(16384, max_rows)``).  The
  newest chunk is *open*: plain Python lists appended to per batch (no numpy call per append,
  so one event per ``extend`` is cheap), turned into numpy arrays once when the chunk fills;
  appending never calls ``pd.concat`` and never copies old rows.  A full chunk is *frozen*
  (immutable) and a new open chunk starts.  Eviction drops whole frozen chunks and moves a
  start offset inside the oldest.
* Numbers (``id``, ``timestamp``, ``server_received``, ``client_received``) are numpy columns
  (int64 / float64 epoch ms, NaN when absent).  ``source_app``, ``session_id``,
  ``hook_event_type`` and ``model_name`` are int32 codes into a frame-wide dictionary.  Values
  whose rows were all evicted are dropped from it once they are at least half of a column's
  values and 65,536 or more (the column is then re-coded), so a stream of ever-new session ids
  keeps memory bounded by ``max_rows``.
* ``payload`` is kept as **compact JSON text** in one ``bytes`` blob per chunk plus an offsets
  array (``orjson`` encodes it at append time), never as millions of live ``dict`` objects:
  those cost memory and make Python's cyclic GC slow every later allocation.  Rows are separated
  by ``b"\\n,\\n"`` so a chunk decodes in one ``orjson.loads`` call and ``filter(search=...)``
  can scan a chunk with one regex pass.  A frozen chunk's text is compressed (``compress``,
  default zstd via pyarrow, else zlib): hook payloads repeat session ids and paths and shrink
  5-15x.
* ``summary``, ``chat`` and unknown top-level fields: per row in the open chunk; a frozen chunk
  keeps each column as one JSON array text (``None`` when all null), so no per-row Python
  objects outlive their batch (a few survivors per batch can pin allocator arenas).
* Dedupe uses :class:`wsnotebook._protocol.IdSet` (intervals), not a set of every id; at most
  100,000 intervals (sparse ids beyond that fill the oldest holes, ``stats()["id_holes_filled"]``).

Every public method takes the one lock briefly; ``.df``, ``tail`` and ``filter`` copy references
under the lock and build the DataFrame outside it, so a reader never stalls the appending thread
for long and never sees a torn row.  ``tail(n)``, ``filter(limit=n)`` without conditions and
the numeric helpers (``throughput``, ``latency``) copy only the rows or columns they need from
the open chunk, never its whole payload text, and freezing a chunk compresses its text in place:
megabytes copied in one GIL-holding call showed up in a busy kernel as a ~5-10 ms tail on cell
round trips.  Payload dicts in ``.df`` are fresh objects: mutating them does not change the
frame.  Until its chunk fills, the frame holds references to the ``summary`` strings and
``chat``/extra values of appended events (payloads are encoded at once): do not mutate events
after appending them.

Bounds: ``1 <= max_rows <= 100_000_000``; ``1 <= chunk_rows <= 1_048_576`` and
``chunk_rows <= max_rows``.  Drop policy: oldest rows are evicted first and counted in
:attr:`EventFrame.dropped`; duplicate ids are ignored and counted in
:attr:`EventFrame.duplicates`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import operator
import re
import threading
import zlib
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, compress, repeat
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from ..errors import ConfigError, EventValidationError
from ..events import Event, json_type
from ..events.columns import PAYLOAD_SEP, EventColumns
from ..runtime.gcpause import gc_paused
from .idset import IdSet

__all__ = ["EventFrame"]

log = logging.getLogger("wsnotebook")

_SEP = PAYLOAD_SEP  # row separator inside a payload blob: "[a\n,\nb]" is a valid JSON array
_NSEP = len(_SEP)
_CAT_COLUMNS = ("source_app", "session_id", "hook_event_type", "model_name")
_KNOWN = frozenset(
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
_NAN = float("nan")
_UNSEEN = -2  # category code placeholder for a value not in the dictionary yet
_STR_OR_NONE = frozenset({str, type(None)})
_STAMPS = ("timestamp", "server_received", "client_received")
_REQUIRED_NAMES = ("source_app", "session_id", "hook_event_type", "payload")
_REQUIRED_GETTERS = tuple(operator.itemgetter(name) for name in _REQUIRED_NAMES)
_MAX_ROWS_BOUND = 100_000_000
_MAX_CHUNK_ROWS = 1 << 20
_PARQUET_FORMAT = "wsnotebook.eventframe/1"
_TAIL_COLUMNS = (
    "server_received",
    "client_received",
    "latency_ms",
    "ingest_ms",
    "transit_ms",
)

Callback = Callable[["EventFrame", int], Any]

#: A category column is checked for dead values (all their rows evicted) once it holds this
#: many values, then each time it doubles; it is compacted when at least half are dead.  Bound:
#: at most ``max(_COMPACT_MIN, 2 * live values)`` values per column (~100-200 B each).
_COMPACT_MIN = 65536
#: Gap records an EventFrame keeps (the newest; ``stats()["gaps_total"]`` counts every one).
MAX_GAPS = 10_000
#: Most bins :meth:`EventFrame.throughput` builds (beyond: ``ConfigError``, use ``window=``).
MAX_THROUGHPUT_BINS = 100_000


# --------------------------------------------------------------------------- storage


class _Categories:
    """Frame-wide string dictionary for one categorical column.

    Codes are stable between compactions.  Values whose rows were all evicted stay until
    :meth:`EventFrame._compact_categories` drops them (when the column holds at least
    ``_COMPACT_MIN`` values and half of them are dead), so a long stream of distinct values
    (e.g. one ``session_id`` per agent session) cannot grow the dictionary without bound.
    """

    __slots__ = ("check_at", "codes", "counts", "values")

    def __init__(self) -> None:
        self.codes: dict[Any, int] = {None: -1}
        self.values: list[str] = []
        self.counts = np.zeros(0, dtype=np.int64)  # retained rows per code in frozen chunks
        self.check_at = _COMPACT_MIN  # len(values) at which to look for dead values again

    def add(self, column: str, value: Any) -> int:
        if not isinstance(value, str):
            raise EventValidationError(
                f"{column}: expected string, got {json_type(value)}", field=column
            )
        if not value.isascii():  # only new values get here: a dictionary hit was checked
            _check_utf8(column, value)
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


def _check_utf8(column: str, text: str) -> None:
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


def _check_utf8_column(column: str, values: list[Any]) -> None:
    """:func:`_check_utf8` for a batch's ``str``/``None`` column: one join and one
    ``isascii`` pass in the common case, a per-value search only when it fails."""
    text = "".join(filter(None, values))
    if text.isascii():
        return
    try:
        text.encode()
    except UnicodeEncodeError:
        for value in values:
            if value:
                _check_utf8(column, value)


def _has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


class _Codec:
    """Compression of frozen chunks' payload text (``zlib`` from the stdlib; ``zstd`` and
    ``lz4`` through ``pyarrow``)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._pa: Any = None
        if name in ("zstd", "lz4"):
            try:
                import pyarrow as pa
            except ImportError:
                raise ConfigError(
                    f"compress={name!r} needs pyarrow (pip install pyarrow)"
                ) from None
            self._pa = pa.Codec(name, compression_level=1 if name == "zstd" else None)
        elif name != "zlib":
            raise ConfigError(
                f"compress must be 'auto', None, 'zlib', 'zstd' or 'lz4', got {name!r}"
            )

    def compress(self, data: bytes | bytearray) -> bytes:
        if self._pa is not None:
            out: bytes = self._pa.compress(data, asbytes=True)
            return out
        return zlib.compress(data, 1)

    def decompress(self, data: bytes, size: int) -> bytes:
        if self._pa is not None:
            out: bytes = self._pa.decompress(data, decompressed_size=size, asbytes=True)
            return out
        return zlib.decompress(data)


class _Chunk:
    """Rows ``0..n-1`` of a chunk.  Frozen chunks are immutable; snapshots share them."""

    __slots__ = (
        "bins",
        "blob",
        "cats",
        "chat",
        "codec",
        "cr",
        "extra",
        "ids",
        "is_ascii",
        "n",
        "off",
        "raw_size",
        "sr",
        "summary",
        "ts",
    )

    def __init__(
        self,
        n: int,
        ids: np.ndarray,
        ts: np.ndarray,
        sr: np.ndarray,
        cr: np.ndarray,
        cats: tuple[np.ndarray, ...],
        blob: bytes | bytearray,  # a bytearray only when compressed here (never kept)
        off: np.ndarray,
        summary: list[Any] | bytes | None,
        chat: list[Any] | bytes | None,
        extra: list[Any] | bytes | None,
        codec: _Codec | None = None,
        is_ascii: bool | None = None,
    ) -> None:
        self.n = n
        self.ids, self.ts, self.sr, self.cr = ids, ts, sr, cr
        # throughput(): (step_ms, distinct bins, row counts) of this chunk (see _bin_counts)
        self.bins: tuple[float, np.ndarray, np.ndarray] | None = None
        self.cats = cats
        self.off = off  # off[i] = start of row i; row i = text[off[i] : off[i+1] - _NSEP]
        self.summary, self.chat, self.extra = summary, chat, extra
        self.is_ascii = blob.isascii() if is_ascii is None else is_ascii
        self.raw_size = len(blob)
        self.codec = codec
        self.blob: bytes = codec.compress(blob) if codec is not None else bytes(blob)

    def text(self) -> bytes:
        """The payload text of every row (decompressed when the chunk is compressed)."""
        if self.codec is None:
            return self.blob
        return self.codec.decompress(self.blob, self.raw_size)

    def nbytes(self) -> int:
        size = len(self.blob) + self.off.nbytes + self.ids.nbytes + 3 * self.ts.nbytes
        size += sum(c.nbytes for c in self.cats)
        for col in (self.summary, self.chat, self.extra):
            if isinstance(col, bytes):
                size += len(col)
            elif col is not None:
                size += 8 * len(col) + sum(len(s) + 49 for s in col if s is not None)
        return size

    def column(self, name: str) -> list[Any] | None:
        """``summary``/``chat``/``extra`` as a list of ``str``/``None`` (``None``: all null).
        Frozen chunks keep each as one JSON array text, not one Python object per row: a few
        retained small objects per batch would pin the allocator's arenas of everything else
        that batch allocated."""
        col = getattr(self, name)
        if isinstance(col, bytes):
            out: list[Any] = orjson.loads(col)
            return out
        return col

    def row_text(self, text: bytes, i: int) -> bytes:
        """Row ``i``'s payload JSON out of ``text`` (from :meth:`text`)."""
        return text[self.off[i] : self.off[i + 1] - _NSEP]


def _none_if_empty(col: list[Any]) -> list[Any] | None:
    return None if col.count(None) == len(col) else col


def _packed(col: list[Any]) -> bytes | None:
    """A column of ``str``/``None`` as one JSON array text (``None`` when all null)."""
    return None if col.count(None) == len(col) else orjson.dumps(col)


class _Open:
    """The open chunk: growable ``array.array`` columns (raw int64/float64/int32 values, no
    Python object per value) plus lists for ``summary``/``chat``/``extra``.

    No numpy work happens per append (an ``extend`` of one event used to pay ~9 ``np.array``
    calls); the arrays become numpy arrays once, when the chunk freezes (zero-copy), or for a
    snapshot of the open rows (one memcpy per column, cached per row count: see :meth:`view`).
    Values are validated before they are appended (ids fit int64, stamps are floats with NaN
    for missing), so appending cannot fail half way.  Raw arrays instead of lists of Python
    numbers matter for memory: a few thousand boxed floats surviving each batch would pin the
    allocator arenas of everything else the batch allocated.
    """

    __slots__ = (
        "_snap",
        "ascii",
        "blob",
        "capacity",
        "cats",
        "chat",
        "cr",
        "cum",
        "extra",
        "ids",
        "n",
        "sr",
        "summary",
        "ts",
    )

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.n = 0
        self.ids = array("q")
        self.ts = array("d")
        self.sr = array("d")
        self.cr = array("d")
        self.cats = tuple(array("i") for _ in _CAT_COLUMNS)
        self.cum = array("q", [0])  # cum[i]: payload bytes of rows < i, separators excluded
        self.blob = bytearray()
        self.ascii = True  # every payload text so far is ASCII (kept per append: no big scan)
        self.summary: list[Any] = []
        self.chat: list[Any] = []
        self.extra: list[Any] = []
        self._snap: _Chunk | None = None

    def codes(self, j: int) -> np.ndarray:
        return _np(self.cats[j], np.int32, copy=True)

    def truncate(self, n: int, ascii_text: bool) -> None:
        """Drop rows ``n..`` again (undo a write that failed part way; each column is cut on
        its own, so a column that was not appended to yet is left as it is)."""
        columns: list[array[Any]] = [self.ids, self.ts, self.sr, self.cr, *self.cats]
        for col in columns:
            del col[n:]
        del self.blob[self.cum[n] + n * _NSEP :]
        del self.cum[n + 1 :]
        del self.summary[n:]
        del self.chat[n:]
        del self.extra[n:]
        self.n = n
        self.ascii = ascii_text
        self._snap = None

    def tail_view(self, k: int, *, text: bool = True) -> _Chunk:
        """The last ``k`` rows (``0 < k <= n``) as a new chunk of ``k`` rows, copying only
        those rows (O(k); :meth:`view` copies the whole open chunk, up to megabytes of text in
        single GIL-holding calls, which showed up as a ~10 ms tail in a busy kernel's cells).
        ``text=False``: numeric columns only (no payload text, no summary/chat/extra)."""
        n = self.n
        a = n - k
        cats = tuple(_np_rows(c, np.int32, a, k) for c in self.cats)
        if text:
            cum = _np_rows(self.cum, np.int64, a, k + 1)
            start = int(cum[0]) + a * _NSEP
            off = cum - cum[0]
            off += np.arange(0, _NSEP * (k + 1), _NSEP, dtype=np.int64)
            with memoryview(self.blob) as mv:  # released at once: the bytearray must grow
                blob = mv[start:].tobytes()
            ascii_text = True if self.ascii else blob.isascii()
            summary = _none_if_empty(self.summary[a:n])
            chat = _none_if_empty(self.chat[a:n])
            extra = _none_if_empty(self.extra[a:n])
        else:
            off, blob = np.zeros(k + 1, dtype=np.int64), b""
            summary = chat = extra = None
            ascii_text = True
        return _Chunk(
            k,
            _np_rows(self.ids, np.int64, a, k),
            _np_rows(self.ts, np.float64, a, k),
            _np_rows(self.sr, np.float64, a, k),
            _np_rows(self.cr, np.float64, a, k),
            cats,
            blob,
            off,
            summary,
            chat,
            extra,
            is_ascii=ascii_text,
        )

    def view(self, *, frozen: bool, codec: _Codec | None = None) -> _Chunk:
        """Rows ``0..n-1`` as a chunk.  ``frozen``: the final arrays (the open chunk is then
        discarded), payload text compressed with ``codec``; else a snapshot, cached until
        the next append (rows below ``n`` never change, so it stays valid)."""
        n = self.n
        snap = self._snap
        if not frozen and snap is not None and snap.n == n:
            return snap
        copy = True  # even when frozen: array.array over-allocates ~1/8, a copy is exact
        off = _np(self.cum, np.int64, copy=True)
        off += np.arange(0, _NSEP * (n + 1), _NSEP, dtype=np.int64)
        if frozen and len(self.blob) < 1 << 32:
            off = off.astype(np.uint32)  # half the bytes; a chunk's text is < 4 GiB
        chunk = _Chunk(
            n,
            _np(self.ids, np.int64, copy=copy),
            _np(self.ts, np.float64, copy=copy),
            _np(self.sr, np.float64, copy=copy),
            _np(self.cr, np.float64, copy=copy),
            tuple(_np(c, np.int32, copy=copy) for c in self.cats),
            # Compressing reads the bytearray as it is (no 8 MB copy holding the GIL): the
            # open chunk is discarded after freezing, so nothing writes to it again.
            self.blob if frozen and codec is not None else bytes(self.blob),
            off,
            _packed(self.summary) if frozen else _none_if_empty(self.summary[:n]),
            _packed(self.chat) if frozen else _none_if_empty(self.chat[:n]),
            _packed(self.extra) if frozen else _none_if_empty(self.extra[:n]),
            codec if frozen else None,
            is_ascii=self.ascii,
        )
        if not frozen:
            self._snap = chunk
        return chunk


def _recoded(chunk: _Chunk, j: int, remap: np.ndarray) -> _Chunk:
    """A copy of frozen ``chunk`` whose category column ``j`` is re-coded through ``remap``
    (everything else shared: frozen arrays are never written)."""
    out = _Chunk.__new__(_Chunk)
    for name in _Chunk.__slots__:
        setattr(out, name, getattr(chunk, name))
    cats = list(chunk.cats)
    cats[j] = remap[cats[j]]
    out.cats = tuple(cats)
    return out


def _put(dst: array[Any], src: Any) -> None:
    """Append ``src`` (a list of Python numbers, or a numpy array of ``dst``'s item type: one
    memcpy or two) to an open-chunk column."""
    if isinstance(src, np.ndarray):
        dst.frombytes(src.tobytes())
    else:
        dst.fromlist(src)


def _np_rows(values: array[Any], dtype: Any, start: int, count: int) -> np.ndarray:
    """A copy of ``values[start : start + count]`` as a numpy array (the view is dropped at
    once, so the array stays growable)."""
    if not count:
        return np.empty(0, dtype=dtype)
    size = np.dtype(dtype).itemsize
    return np.frombuffer(values, dtype=dtype, count=count, offset=start * size).copy()


def _np(values: array[Any], dtype: Any, *, copy: bool) -> np.ndarray:
    """An ``array.array`` as a numpy array: a view (the array must never grow again) or a copy
    (the view is dropped at once, so the array stays growable)."""
    out = np.frombuffer(values, dtype=dtype) if len(values) else np.empty(0, dtype=dtype)
    return out.copy() if copy else out


class _Columns:
    """One batch of rows in column form, validated, ready to copy into chunks (no shared
    state): ``ids`` ints within int64 (-1: none), stamps ``float`` (NaN: missing); numeric
    columns are lists or numpy arrays of the open chunk's item types (int64/float64)."""

    __slots__ = ("blob", "chat", "cr", "extra", "ids", "lens", "parts", "sr", "summary", "ts")

    def __init__(
        self,
        ids: Any,
        ts: Any,
        sr: Any,
        cr: Any,
        parts: Sequence[Any],
        summary: Sequence[Any],
        chat: Sequence[Any],
        extra: Sequence[Any],
    ) -> None:
        self.ids, self.ts, self.sr, self.cr = ids, ts, sr, cr
        self.parts = parts
        self.summary, self.chat, self.extra = summary, chat, extra
        # Optional, from the columnar decoder: ``parts`` lengths (int64 array) and the parts
        # already joined with ``_SEP`` (saves a second join when the batch fits one chunk).
        self.lens: np.ndarray | None = None
        self.blob: bytes | None = None


# A snapshot piece: a chunk plus the rows of it to show (a slice or an index array).
_Piece = tuple[_Chunk, "slice | np.ndarray"]


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


def _stamp_list(name: str, values: Any) -> list[Any]:
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
        return [_NAN if v is None else v for v in values]
    if types <= _NUMBER_TYPES:
        try:  # ints too large for a float fail here, before anything is stored
            if type(None) in types:
                return [_NAN if v is None else float(v) for v in values]
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


def _check_int64(lo: int, hi: int) -> None:
    if lo < _INT64_MIN or hi > _INT64_MAX:
        bad = lo if lo < _INT64_MIN else hi
        raise EventValidationError(
            f"id: expected integer: {bad} does not fit in 64 bits", field="id"
        )


def _dumps_text(value: Any, column: str) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError as exc:
        raise EventValidationError(
            f"{column}: cannot encode as JSON: {exc}", field=column
        ) from None


#: Largest ``abs(epoch ms)`` shown as a datetime: whole ms plus the fraction in ns must fit in
#: int64 nanoseconds (datetime64[ns] spans ~1677-09-21 .. 2262-04-11).
_MS_DATETIME_LIMIT = float((np.iinfo(np.int64).max // 1_000_000) - 1)


def _ms_to_datetime(ms: np.ndarray) -> pd.DatetimeIndex:
    """Epoch milliseconds (float, NaN = missing) -> UTC datetimes (NaT = missing, and for
    values beyond ``±_MS_DATETIME_LIMIT``, outside what datetime64[ns] can hold: they would
    wrap around int64 into plausible wrong dates).

    Whole milliseconds are converted exactly (``ms * 1e6`` in float64 would be off by up to
    ~100 ns at today's epochs); the fraction keeps sub-millisecond stamps to the nanosecond."""
    ok = np.abs(ms) <= _MS_DATETIME_LIMIT  # False for NaN and inf too (no warning)
    clean = np.where(ok, ms, 0.0)
    whole = np.floor(clean)
    ns = whole.astype(np.int64) * 1_000_000 + np.rint((clean - whole) * 1e6).astype(np.int64)
    ns[~ok] = np.iinfo(np.int64).min
    return pd.DatetimeIndex(ns.view("M8[ns]")).tz_localize("UTC")


class EventFrame:
    """A thread-safe, bounded, columnar event store; ``.df`` gives a typed pandas snapshot.

    Parameters (keyword-only):

    * ``max_rows`` (default 1,000,000; 1..100,000,000): rows retained.  When full, the oldest
      rows are evicted first and counted in :attr:`dropped`.
    * ``chunk_rows`` (default ``min(16384, max_rows)``; 1..1,048,576, at most ``max_rows``):
      rows per storage chunk.  Memory held beyond the retained rows is at most one chunk.
    * ``compress`` (default ``"auto"``: ``"zstd"`` when ``pyarrow`` is installed, else
      ``"zlib"``; or ``"lz4"``, or ``None`` for no compression): how the payload text of full
      chunks is compressed.  Hook payloads shrink 5-15x: measured at 1M retained ~500-byte
      events, ~170 bytes of RSS per event with zstd or zlib instead of ~335 uncompressed, for
      ~0.2 s more per million rows in ``.df`` (see ``benchmarks/bench_frame.py``).

    Appends normally come from the client's background loop thread while the kernel thread
    reads; every method is safe to call from any thread.  An event whose integer ``id`` was
    already appended is ignored and counted in :attr:`duplicates` (ids are remembered as
    intervals, see :meth:`reset_ids`).  Events are expected to be valid
    (:func:`wsnotebook.events.validate_event`); the frame only rejects what it cannot store
    (wrong types for its typed columns, e.g. a string or boolean ``timestamp``; values that are
    not JSON-encodable; strings that are not valid UTF-8, i.e. hold a lone surrogate) with
    :class:`~wsnotebook.errors.EventValidationError` naming the field, leaving the frame
    unchanged.  Bad method arguments raise :class:`~wsnotebook.errors.ConfigError`.
    """

    def __init__(
        self,
        *,
        max_rows: int = 1_000_000,
        chunk_rows: int | None = None,
        compress: str | None = "auto",
    ) -> None:
        if isinstance(max_rows, bool) or not isinstance(max_rows, int):
            raise ConfigError(f"max_rows must be an integer, got {type(max_rows).__name__}")
        if not 1 <= max_rows <= _MAX_ROWS_BOUND:
            raise ConfigError(f"max_rows must be in 1..{_MAX_ROWS_BOUND}, got {max_rows}")
        if chunk_rows is None:
            chunk_rows = min(16384, max_rows)
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int):
            raise ConfigError(f"chunk_rows must be an integer, got {type(chunk_rows).__name__}")
        if not 1 <= chunk_rows <= min(_MAX_CHUNK_ROWS, max_rows):
            raise ConfigError(
                f"chunk_rows must be in 1..{min(_MAX_CHUNK_ROWS, max_rows)} "
                f"(and at most max_rows), got {chunk_rows}"
            )
        self.max_rows = max_rows
        self.chunk_rows = chunk_rows
        if compress == "auto":
            compress = "zstd" if _has_pyarrow() else "zlib"
        self.compress = compress
        self._codec = _Codec(compress) if compress is not None else None
        self._lock = threading.RLock()
        self._subscribers: tuple[Callback, ...] = ()
        self.callback_errors = 0
        self._version = 0
        self._init_storage()
        self._gaps: deque[tuple[int, int, str, pd.Timestamp]] = deque(maxlen=MAX_GAPS)
        self._gaps_total = 0
        self._ids = IdSet()
        self._total = 0
        self._dropped = 0
        self._duplicates = 0

    def _init_storage(self) -> None:
        self._cats = tuple(_Categories() for _ in _CAT_COLUMNS)
        self._frozen: deque[_Chunk] = deque()
        self._frozen_rows = 0  # rows in frozen chunks, including the evicted head
        self._head = 0  # rows of the oldest frozen chunk already evicted
        self._open = _Open(self.chunk_rows)

    # ------------------------------------------------------------------ counters

    def __len__(self) -> int:
        with self._lock:
            return self._frozen_rows - self._head + self._open.n

    @property
    def total(self) -> int:
        """Rows ever added (monotonic; not reset by :meth:`clear`)."""
        return self._total

    @property
    def version(self) -> int:
        """Bumped on every change (append, eviction, clear, gap, reset_ids)."""
        return self._version

    @property
    def dropped(self) -> int:
        """Rows evicted because ``max_rows`` was reached."""
        return self._dropped

    @property
    def duplicates(self) -> int:
        """Events ignored because their ``id`` had already been appended."""
        return self._duplicates

    def __repr__(self) -> str:
        return (
            f"<EventFrame rows={len(self)} total={self._total} max_rows={self.max_rows} "
            f"dropped={self._dropped} duplicates={self._duplicates} gaps={len(self._gaps)}>"
        )

    # ------------------------------------------------------------------ appending

    def append(self, event: Event) -> bool:
        """Append one event; ``False`` when its ``id`` was already seen (counted, ignored)."""
        if not isinstance(event, dict):
            raise EventValidationError(f"event: expected object, got {json_type(event)}")
        with self._lock:
            added = self._append_one(event)
            subscribers = self._subscribers
        if added and subscribers:
            self._notify(subscribers, 1)
        return added

    def extend(self, events: Iterable[Event]) -> int:
        """Append events in order; return how many rows were added (duplicates excluded).

        All-or-nothing: an event the frame cannot store raises
        :class:`~wsnotebook.errors.EventValidationError` and nothing of the batch is added.
        Subscribers are called once afterwards (on this thread) when rows were added.
        """
        batch = events if isinstance(events, (list, tuple)) else list(events)
        if not batch:
            return 0
        if len(batch) == 1:  # one event per call (per-event messages): the scalar path
            event = batch[0]
            if not isinstance(event, dict):
                raise EventValidationError(f"event: expected object, got {json_type(event)}")
            with self._lock:
                added = self._append_one(event)
                subscribers = self._subscribers
            if added and subscribers:
                self._notify(subscribers, 1)
            return int(added)
        if not all(map(isinstance, batch, repeat(dict))):
            bad = next(ev for ev in batch if not isinstance(ev, dict))
            raise EventValidationError(f"event: expected object, got {json_type(bad)}")
        with self._lock:
            kept, new_ids, run, kept_ids = self._dedupe(batch)
            if kept:
                cols, codes = self._columns(kept, kept_ids, all_ids=run is not None)
                self._write(cols, codes)
                self._remember_ids(new_ids, run)
                self._total += len(kept)
                self._evict()
            if len(kept) < len(batch):
                self._duplicates += len(batch) - len(kept)
            self._version += 1
            subscribers = self._subscribers
        if kept and subscribers:
            self._notify(subscribers, len(kept))
        return len(kept)

    def extend_columns(self, cols: EventColumns) -> int:
        """``extend`` for a batch already decoded into columns (the client's fast path, see
        :mod:`wsnotebook._columns`): the same dedupe, eviction and notification, no dicts.

        ``cols`` was validated by the decoder; values the frame cannot store (e.g. a stamp too
        large for a float) still raise :class:`~wsnotebook.errors.EventValidationError` with
        nothing of the batch added."""
        k = cols.n
        if not k:
            return 0
        with self._lock:
            keep, new_ids, run = self._dedupe_ids(cols.id)
            if keep is not None:
                cols = cols.take(keep)
            kept = cols.n
            if kept:
                data, codes = self._columns_of(cols, run)
                self._write(data, codes)
                self._remember_ids(new_ids, run)
                self._total += kept
                self._evict()
            self._duplicates += k - kept
            self._version += 1
            subscribers = self._subscribers
        if kept and subscribers:
            self._notify(subscribers, kept)
        return kept

    def _remember_ids(self, new_ids: list[int], run: tuple[int, int] | None) -> None:
        """Add the ids of rows just written: a contiguous ``run`` at once, else one by one."""
        if run is not None:
            self._ids.add_run(*run)
        else:
            for ident in new_ids:
                self._ids.add(ident)

    def _dedupe_ids(self, ids: Sequence[int]) -> tuple[list[int] | None, list[int], Any]:
        """Dedupe for :meth:`extend_columns` (ids are ints within int64; -1: no id).  Returns
        (row indices to keep, or None for all; ids to remember one by one; contiguous run
        ``(first, last)`` or None)."""
        k = len(ids)
        first, last = ids[0], ids[-1]
        top = self._ids.max()
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
        idset = self._ids
        for i, ident in enumerate(ids):
            if ident != -1:
                if ident in seen or ident in idset:
                    continue
                seen.add(ident)
                new_ids.append(ident)
            keep.append(i)
        return (None if len(keep) == k else keep), new_ids, None

    def _columns_of(
        self, cols: EventColumns, run: tuple[int, int] | None
    ) -> tuple[_Columns, list[Any]]:
        """:meth:`_columns` for decoded columns: numeric columns as numpy arrays (copied into
        the open chunk with one memcpy each), category codes, chat as JSON text."""
        k = cols.n
        codes_all: list[Any] = [
            np.full(k, -1, dtype=np.int32)
            if values[0] is None and values.count(None) == k  # [0] first: count is slow on str
            else self._codes(j, values)
            for j, values in enumerate(
                (cols.source_app, cols.session_id, cols.hook_event_type, cols.model_name)
            )
        ]
        ids = (
            np.arange(run[0], run[1] + 1, dtype=np.int64)
            if run is not None
            else np.array(cols.id, dtype=np.int64)
        )
        ts, sr, cr = (
            np.asarray(values, dtype=np.float64)
            for values in (cols.timestamp, cols.server_received, cols.client_received)
        )
        chat: Sequence[Any] = cols.chat
        if not (chat[0] is None and chat.count(None) == k):
            chat = [_dumps_text(c, "chat") for c in chat]
        data = _Columns(ids, ts, sr, cr, cols.payload, cols.summary, chat, [None] * k)
        data.lens = cols.payload_len
        data.blob = cols.payload_blob
        return data, codes_all

    def _dedupe(self, batch: Sequence[Event]) -> tuple[Sequence[Event], list[int], Any, list[int]]:
        """Split off duplicates.  Returns (kept events, ids to remember one by one, fast-path
        run ``(first, last)`` or None, the kept events' ids with -1 for "no id").  Ids that do
        not fit in int64 raise before anything is remembered."""
        k = len(batch)
        first = batch[0].get("id")
        last = batch[-1].get("id")
        top = self._ids.max()
        if (
            type(first) is int
            and type(last) is int
            and last - first == k - 1
            and (top is None or first > top)
        ):
            # The common case: the next contiguous run of ids.  Checked in C-level passes.
            ids: list[Any] = list(map(dict.get, batch, repeat("id")))
            if k == 1 or (set(map(type, ids)) == {int} and ids == list(range(first, last + 1))):
                _check_int64(first, last)
                return batch, [], (first, last), ids
        kept: list[Event] = []
        kept_ids: list[int] = []
        new_ids: list[int] = []
        seen: set[int] = set()
        idset = self._ids
        for ev in batch:
            ident = ev.get("id")
            if ident is None or ident == -1:
                kept.append(ev)
                kept_ids.append(-1)
                continue
            if type(ident) is not int:
                raise EventValidationError(
                    f"id: expected integer, got {json_type(ident)}", field="id"
                )
            if ident in seen or ident in idset:
                continue
            seen.add(ident)
            new_ids.append(ident)
            kept.append(ev)
            kept_ids.append(ident)
        if new_ids:
            _check_int64(min(new_ids), max(new_ids))
        return kept, new_ids, None, kept_ids

    def _codes(self, j: int, values: Sequence[Any]) -> list[int]:
        """Category codes of ``values`` for column ``j`` (new strings get new codes)."""
        cats = self._cats[j]
        # _UNSEEN (an int) rather than None marks misses: ``in`` on ints is a fast identity or
        # int comparison, while comparing ints with None takes Python's slow rich-compare path.
        codes: list[Any] = list(map(cats.codes.get, values, repeat(_UNSEEN)))
        if _UNSEEN in codes:  # unseen value (or not a string: rejected by ``add``)
            for i, code in enumerate(codes):
                if code == _UNSEEN:
                    codes[i] = cats.add(_CAT_COLUMNS[j], values[i])
        return codes

    def _columns(
        self, kept: Sequence[Event], ids: list[int], *, all_ids: bool = False
    ) -> tuple[_Columns, list[list[int]]]:
        """Column lists for ``kept`` (validated; no frame state changes except new categories).

        Hot path of ``extend``: C-level ``itemgetter``/``map``/``dict.get`` passes instead of
        per-field Python loops, and unknown top-level fields are detected by counting keys
        (exact check only when the counts say there may be some)."""
        k = len(kept)
        try:
            app, sess, hook, payloads = (list(map(get, kept)) for get in _REQUIRED_GETTERS)
            n_required = 4 * k
        except KeyError:  # a required field is missing: store it as null
            app, sess, hook, payloads = (
                list(map(dict.get, kept, repeat(f))) for f in _REQUIRED_NAMES
            )
            n_required = sum(k - col.count(None) for col in (app, sess, hook, payloads))
        models = list(map(dict.get, kept, repeat("model_name")))
        codes_all = [
            self._codes(0, app),
            self._codes(1, sess),
            self._codes(2, hook),
            self._codes(3, models),
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
        raw_stamps = [list(map(dict.get, kept, repeat(name))) for name in _STAMPS]
        stamps = [_stamp_list(name, raw) for name, raw in zip(_STAMPS, raw_stamps)]
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
            _check_utf8_column("summary", summary)
        chat = list(map(dict.get, kept, repeat("chat")))
        n_chat = k - chat.count(None)
        if n_chat:
            chat = [_dumps_text(c, "chat") for c in chat]
        # Keys we can account for; explicit nulls count as absent, so this never overestimates.
        known = n_required + n_summary + n_chat + (k - models.count(None))
        known += k if all_ids else k - ids.count(-1)
        known += sum(k - a.count(None) for a in raw_stamps)
        extra: list[Any]
        if sum(map(len, kept)) > known:
            flags = list(map(_KNOWN.issuperset, kept))
            extra = [
                None
                if ok
                else _dumps_text({key: v for key, v in e.items() if key not in _KNOWN}, "extra")
                for ok, e in zip(flags, kept)
            ]
        else:
            extra = [None] * k
        ts, sr, cr = stamps
        return _Columns(ids, ts, sr, cr, parts, summary, chat, extra), codes_all

    def _append_one(self, event: Event) -> bool:
        """``append`` without per-batch overhead: scalar appends to the open chunk's lists."""
        ident = event.get("id", -1)
        if ident is None:
            ident = -1
        elif type(ident) is not int:
            raise EventValidationError(f"id: expected integer, got {json_type(ident)}", field="id")
        if ident != -1 and ident in self._ids:
            self._duplicates += 1
            self._version += 1
            return False
        _check_int64(ident, ident)
        codes = []
        for j, column in enumerate(_CAT_COLUMNS):
            cats = self._cats[j]
            value = event.get(column)
            code = cats.codes.get(value)
            codes.append(cats.add(column, value) if code is None else code)
        try:
            part = orjson.dumps(event.get("payload"), option=orjson.OPT_NON_STR_KEYS)
        except TypeError as exc:
            raise EventValidationError(
                f"payload: cannot encode as JSON: {exc}", field="payload"
            ) from None
        stamps: list[Any] = []
        for name in _STAMPS:
            v = event.get(name)
            stamps.append(
                v if type(v) is float else _NAN if v is None else _stamp_list(name, [v])[0]
            )
        summary = event.get("summary")
        if summary is not None:
            if not isinstance(summary, str):
                raise EventValidationError(
                    f"summary: expected string or null, got {json_type(summary)}",
                    field="summary",
                )
            if not summary.isascii():
                _check_utf8("summary", summary)
        chat = _dumps_text(event.get("chat"), "chat")
        extra = None
        if not _KNOWN.issuperset(event):
            extra = _dumps_text({k: v for k, v in event.items() if k not in _KNOWN}, "extra")
        op = self._open
        ascii_before = op.ascii
        op.ids.append(ident)
        op.ts.append(stamps[0])
        op.sr.append(stamps[1])
        op.cr.append(stamps[2])
        for dst, code in zip(op.cats, codes):
            dst.append(code)
        op.cum.append(op.cum[-1] + len(part))
        if op.ascii and not part.isascii():
            op.ascii = False
        op.blob += part
        op.blob += _SEP
        op.summary.append(summary)
        op.chat.append(chat)
        op.extra.append(extra)
        op.n += 1
        if op.n == op.capacity:
            try:
                self._freeze()
            except BaseException:  # the frame stays as it was: the row is taken back
                op.truncate(op.n - 1, ascii_before)
                raise
        if ident != -1:
            self._ids.add(ident)
        self._total += 1
        self._version += 1
        self._evict()
        return True

    def _write(self, cols: _Columns, codes: list[list[int]]) -> None:
        """Append validated columns to the open chunk(s), freezing full ones.  Everything was
        validated by ``_columns``/``_dedupe``, so nothing here should fail; if something does
        anyway (freezing a chunk: compression, memory), every chunk frozen here is dropped and
        the open chunk cut back, so the frame is exactly as before and the error propagates."""
        op = self._open
        n_open, ascii_open, n_frozen = op.n, op.ascii, len(self._frozen)
        try:
            self._write_rows(cols, codes)
        except BaseException:
            while len(self._frozen) > n_frozen:
                chunk = self._frozen.pop()
                self._frozen_rows -= chunk.n
                for cats, chunk_codes in zip(self._cats, chunk.cats):
                    cats.count(chunk_codes, -1)
            self._open = op
            op.truncate(n_open, ascii_open)
            raise

    def _write_rows(self, cols: _Columns, codes: list[list[int]]) -> None:
        k = len(cols.parts)
        pos = 0
        while pos < k:
            op = self._open
            take = min(k - pos, op.capacity - op.n)
            if take == k:  # the whole batch fits: no slicing
                parts, c = cols.parts, cols
                _put(op.ids, c.ids)
                _put(op.ts, c.ts)
                _put(op.sr, c.sr)
                _put(op.cr, c.cr)
                for dst, src in zip(op.cats, codes):
                    _put(dst, src)
                op.summary += c.summary
                op.chat += c.chat
                op.extra += c.extra
            else:
                sl = slice(pos, pos + take)
                parts = cols.parts[sl]
                _put(op.ids, cols.ids[sl])
                _put(op.ts, cols.ts[sl])
                _put(op.sr, cols.sr[sl])
                _put(op.cr, cols.cr[sl])
                for dst, src in zip(op.cats, codes):
                    _put(dst, src[sl])
                op.summary += cols.summary[sl]
                op.chat += cols.chat[sl]
                op.extra += cols.extra[sl]
            cum = op.cum
            if cols.lens is not None:
                _put(cum, np.cumsum(cols.lens[pos : pos + take]) + cum[-1])
            else:
                cum.fromlist(list(accumulate(map(len, parts), initial=cum[-1])))
                del cum[-take - 1]  # the initial value was already there
            text = cols.blob if take == k and cols.blob is not None else _SEP.join(parts)
            if op.ascii and not text.isascii():
                op.ascii = False
            op.blob += text
            op.blob += _SEP
            op.n += take
            op._snap = None
            pos += take
            if op.n == op.capacity:
                self._freeze()

    def _freeze(self) -> None:
        """Turn the full open chunk into a frozen one.  Building the chunk (packing, compression)
        is the step that can fail: frame state changes only after it succeeded, and the
        callers take their rows back when it raises (see :meth:`_write`)."""
        chunk = self._open.view(frozen=True, codec=self._codec)
        new_open = _Open(self.chunk_rows)
        self._frozen.append(chunk)
        self._frozen_rows += chunk.n
        for cats, codes in zip(self._cats, chunk.cats):
            cats.count(codes, 1)
        self._open = new_open

    def _evict(self) -> None:
        """Drop the oldest rows beyond ``max_rows``, then compact category columns that are
        due.  Called at the end of every append, after the batch's codes were written."""
        self._evict_rows()
        for j, cats in enumerate(self._cats):
            if len(cats.values) >= cats.check_at:
                self._compact_categories(j)

    def _compact_categories(self, j: int) -> None:
        """Drop category ``j``'s dead values and re-code its column.  Frozen chunks are
        replaced by re-coded copies (snapshots keep the old chunks with their own copy of the
        values, so a snapshot taken before stays consistent)."""
        cats = self._cats[j]
        live = cats.live(self._open.codes(j))
        n_live = int(live.sum())
        if 2 * n_live <= len(cats.values):
            remap = cats.compact(live)
            self._frozen = deque(_recoded(c, j, remap) for c in self._frozen)
            op = self._open
            if op.n:  # same length: a slice assignment, no resize (op.codes copies)
                op.cats[j][:] = array("i", remap[op.codes(j)].tobytes())
            op._snap = None
        cats.check_at = max(_COMPACT_MIN, 2 * len(cats.values))

    def _evict_rows(self) -> None:
        excess = self._frozen_rows - self._head + self._open.n - self.max_rows
        if excess <= 0:
            return
        self._dropped += excess
        while excess > 0:
            chunk = self._frozen[0]
            left = chunk.n - self._head
            stop = self._head + min(excess, left)
            for cats, codes in zip(self._cats, chunk.cats):
                cats.count(codes[self._head : stop], -1)
            if excess >= left:
                self._frozen.popleft()
                self._frozen_rows -= chunk.n
                self._head = 0
                excess -= left
            else:
                self._head = stop
                excess = 0

    def _notify(self, subscribers: Sequence[Callback], n: int) -> None:
        for callback in subscribers:
            try:
                callback(self, n)
            except Exception:
                with self._lock:
                    self.callback_errors += 1
                log.exception("EventFrame subscriber %r failed", callback)

    # ------------------------------------------------------------------ dedupe, gaps, reset

    def reset_ids(self) -> None:
        """Forget every remembered id (call when the server's epoch changes: ids restart)."""
        with self._lock:
            self._ids = IdSet()
            self._version += 1

    def mark_gap(self, from_id: int, to_id: int, reason: str) -> None:
        """Record that events ``from_id..to_id`` (inclusive; ``to_id=-1``: unknown end) were
        lost, so the loss is visible in :attr:`gaps` instead of hidden.  The newest
        ``MAX_GAPS`` (10,000) records are kept; ``stats()["gaps_total"]`` counts all of them."""
        from_id = _int_arg("mark_gap", "from_id", from_id)
        to_id = _int_arg("mark_gap", "to_id", to_id)
        with self._lock:
            self._gaps.append((from_id, to_id, str(reason), pd.Timestamp.now(tz="UTC")))
            self._gaps_total += 1
            self._version += 1

    @property
    def gaps(self) -> pd.DataFrame:
        """Recorded losses, oldest first: columns ``from_id``, ``to_id`` (int64), ``reason``,
        ``time`` (UTC).  At most the newest ``MAX_GAPS`` (10,000)."""
        with self._lock:
            rows = list(self._gaps)
        return pd.DataFrame(
            {
                "from_id": np.array([r[0] for r in rows], dtype=np.int64),
                "to_id": np.array([r[1] for r in rows], dtype=np.int64),
                "reason": pd.Series([r[2] for r in rows], dtype=object),
                "time": pd.DatetimeIndex([r[3] for r in rows], dtype="datetime64[ns, UTC]"),
            }
        )

    def clear(self) -> None:
        """Drop every row and gap record (``total``, ``dropped``, ``duplicates``, ``gaps_total``
        and remembered ids are kept: ids that were seen stay deduplicated; call
        :meth:`reset_ids` to forget them)."""
        with self._lock:
            self._init_storage()
            self._gaps.clear()
            self._version += 1

    # ------------------------------------------------------------------ subscribe

    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(frame, n_added)`` after each append batch, on the appending thread.

        It must be cheap (it delays the appender); exceptions are logged on the ``wsnotebook``
        logger and counted in ``callback_errors``, never raised.  Returns an ``unsubscribe``
        function (idempotent).
        """
        if not callable(callback):
            raise ConfigError("subscribe: callback must be callable")
        with self._lock:
            self._subscribers = (*self._subscribers, callback)

        def unsubscribe() -> None:
            with self._lock:
                subs = list(self._subscribers)
                if callback in subs:
                    subs.remove(callback)
                    self._subscribers = tuple(subs)

        return unsubscribe

    # ------------------------------------------------------------------ snapshots

    def _pieces(self, *, text: bool = True) -> tuple[list[_Piece], list[list[str]]]:
        """Under the lock: every retained row, oldest first, as (chunk, slice) pieces.
        ``text=False``: the open chunk's numeric columns only (no copy of its payload text)."""
        with self._lock:
            pieces: list[_Piece] = []
            for i, chunk in enumerate(self._frozen):
                pieces.append((chunk, slice(self._head if i == 0 else 0, chunk.n)))
            op = self._open
            if op.n:
                snap = op.view(frozen=False) if text else op.tail_view(op.n, text=False)
                pieces.append((snap, slice(0, snap.n)))
            values = [list(c.values) for c in self._cats]
        return pieces, values

    @property
    def df(self) -> pd.DataFrame:
        """A pandas snapshot of every retained row (oldest first), typed:

        ``id`` int64 (-1 when absent); ``timestamp``, ``server_received``, ``client_received``
        datetime64[ns, UTC] (NaT when absent, and for epochs beyond what datetime64[ns] holds,
        about 1677-09-21 .. 2262-04-11: the latency columns and Parquet keep the raw numbers);
        ``source_app``, ``session_id``, ``hook_event_type`` category; ``payload`` dicts;
        ``summary``, ``model_name``, ``chat`` and unknown top-level fields objects;
        ``latency_ms`` (client_received - timestamp), ``ingest_ms`` (server_received -
        timestamp), ``transit_ms`` (client_received - server_received) float64.  Cost:
        O(rows); the payload dicts are decoded each call.

        Name clash: an unknown top-level field named ``latency_ms``, ``ingest_ms`` or
        ``transit_ms`` does not get a column here, the computed column of that name wins; the
        field's value is kept (in :meth:`to_parquet`'s ``extra`` JSON column, and back through
        :meth:`from_parquet`).
        """
        pieces, values = self._pieces()
        return _build(pieces, values)

    def snapshot(self, *, payload: str = "dict") -> pd.DataFrame:
        """Like :attr:`df`, choosing how ``payload`` is materialised: ``"dict"`` (as ``.df``),
        ``"json"`` (the compact JSON text of each payload, a ``str``: ~4x faster for large
        frames, no million dicts for the GC to scan) or ``"none"`` (column left out)."""
        if payload not in ("dict", "json", "none"):
            raise ConfigError(
                f"snapshot: payload must be 'dict', 'json' or 'none', got {payload!r}"
            )
        pieces, values = self._pieces()
        return _build(pieces, values, payload=payload)

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The last ``n`` rows (``n`` an ``int >= 0``; oldest first) as a DataFrame like
        :attr:`df`; O(n)."""
        n = _count_arg("tail", "n", n)
        pieces, values = self._tail_pieces(n)
        return _build(pieces, values)

    def _tail_pieces(self, n: int, *, text: bool = True) -> tuple[list[_Piece], list[list[str]]]:
        """Under the lock: the last ``n`` retained rows, oldest first, as pieces (the open
        chunk's part copied alone, O(n)), and the category values."""
        with self._lock:
            pieces: list[_Piece] = []
            need = n
            op = self._open
            if need and op.n:
                take = min(need, op.n)
                snap = op.tail_view(take, text=text)
                pieces.append((snap, slice(0, take)))
                need -= take
            for i in range(len(self._frozen) - 1, -1, -1):
                if not need:
                    break
                chunk = self._frozen[i]
                start = self._head if i == 0 else 0
                take = min(need, chunk.n - start)
                pieces.append((chunk, slice(chunk.n - take, chunk.n)))
                need -= take
            values = [list(c.values) for c in self._cats]
        pieces.reverse()
        return pieces, values

    def categories(self, column: str) -> list[str]:
        """Distinct values of ``source_app``/``session_id``/``hook_event_type``/``model_name``
        among retained rows, in first-seen order.  Cheap: O(categories + open chunk)."""
        try:
            idx = _CAT_COLUMNS.index(column)
        except ValueError:
            raise ConfigError(
                f"categories: column must be one of {', '.join(_CAT_COLUMNS)}, got {column!r}"
            ) from None
        with self._lock:
            cats = self._cats[idx]
            return list(compress(cats.values, cats.live(self._open.codes(idx)).tolist()))

    def filter(
        self,
        *,
        source_app: str | Iterable[str] | None = None,
        session_id: str | Iterable[str] | None = None,
        hook_event_type: str | Iterable[str] | None = None,
        search: str | re.Pattern[str] | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """Rows matching every given condition, oldest first, as a DataFrame like :attr:`df`.

        Category conditions take one string or an iterable of strings.  ``search`` is a regular
        expression (a ``str`` or a compiled ``str`` pattern) searched in ``summary`` and in the
        compact JSON text of ``payload`` (as sent, e.g. ``"tool_name":"Bash"``; quotes inside
        strings appear escaped); each row's texts are searched alone, so anchors (``^``,
        ``\\A``, ``$``, ``\\Z``) and lookarounds see only that row.  ``limit`` is an ``int >= 0``.
        Bad arguments raise :class:`~wsnotebook.errors.ConfigError`.  With ``limit``, chunks
        are scanned newest first and the scan stops after ``limit`` matches (cost follows the
        rows shown, not the frame size); the result is the newest ``limit`` matches.  An invalid
        pattern raises :class:`~wsnotebook.errors.ConfigError`.
        """
        pieces, values = self._filter_pieces(
            source_app, session_id, hook_event_type, search=search, limit=limit
        )
        return _build(pieces, values)

    def plain_table(self, *args: Any, **kwargs: Any) -> _PlainColumns:
        """:meth:`filter` (arguments of :meth:`_filter_pieces`) as plain columns for the
        monitor's table: the same rows, no pandas (building a DataFrame was most of a monitor
        tick, in Python holding the GIL)."""
        return _PlainColumns(*self._filter_pieces(*args, **kwargs))

    def _filter_pieces(
        self,
        source_app: str | Iterable[str] | None = None,
        session_id: str | Iterable[str] | None = None,
        hook_event_type: str | Iterable[str] | None = None,
        *,
        search: str | re.Pattern[str] | None = None,
        limit: int | None = None,
        scan: int | None = None,
    ) -> tuple[list[_Piece], list[list[str]]]:
        """Under the lock: the rows :meth:`filter` selects, as pieces, and the category
        values.  ``scan``: look at the newest ``scan`` rows only (the monitor bounds its
        per-tick search cost with it; ``None``: every retained row)."""
        if limit is not None:
            limit = _count_arg("filter", "limit", limit)
        pattern = _search_pattern(search)
        wanted = (
            _category_arg("source_app", source_app),
            _category_arg("session_id", session_id),
            _category_arg("hook_event_type", hook_event_type),
        )
        with self._lock:
            chunks: list[tuple[_Chunk, int]] = [
                (c, self._head if i == 0 else 0) for i, c in enumerate(self._frozen)
            ]
            op = self._open
            if op.n:
                if limit is not None and pattern is None and wanted == (None, None, None):
                    # The newest ``limit`` rows: copy only those of the open chunk (O(limit)).
                    if limit:
                        chunks.append((op.tail_view(min(limit, op.n)), 0))
                else:
                    chunks.append((op.view(frozen=False), 0))
            values = [list(c.values) for c in self._cats]
            code_sets: list[np.ndarray | None] = []
            for items, cats in zip(wanted, self._cats):
                if items is None:
                    code_sets.append(None)
                    continue
                code_sets.append(
                    np.array([cats.codes[v] for v in items if v in cats.codes], dtype=np.int32)
                )
        blob_pattern = _blob_pattern(pattern) if pattern is not None else None
        pieces: list[_Piece] = []
        remaining = limit
        unscanned = scan
        for chunk, start in reversed(chunks):
            if remaining == 0 or unscanned == 0:
                break
            if unscanned is not None:
                start = max(start, chunk.n - unscanned)
                unscanned -= chunk.n - start
            mask = np.ones(chunk.n - start, dtype=bool)
            for codes, col in zip(code_sets, chunk.cats):
                if codes is not None:
                    mask &= np.isin(col[start:], codes)
            rows = np.flatnonzero(mask) + start
            if pattern is not None and len(rows):
                rows = _search_rows(chunk, start, rows, pattern, blob_pattern)
            if remaining is not None:
                rows = rows[max(0, len(rows) - remaining) :]
                remaining -= len(rows)
            if len(rows):
                pieces.append((chunk, rows))
        pieces.reverse()
        return pieces, values

    # ------------------------------------------------------------------ analysis helpers

    def numeric_columns(
        self, names: Sequence[str], *, last: int | None = None
    ) -> tuple[dict[str, np.ndarray], list[list[str]]]:
        """Concatenated numeric columns (ts/sr/cr/cat codes) of retained rows (only the last
        ``last`` rows when given), and the category values their codes index (taken together,
        under the lock).  No payload text is copied."""
        if last is None:
            pieces, values = self._pieces(text=False)
        else:
            pieces, values = self._tail_pieces(last, text=False)
        out: dict[str, np.ndarray] = {}
        for name in names:
            arrays = [_numeric_column(c, name)[sl] for c, sl in pieces]
            dtype = np.int32 if name in _CAT_COLUMNS else np.float64
            out[name] = np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)
        return out, values

    def throughput(
        self,
        freq: str | pd.Timedelta = "1s",
        *,
        window: str | pd.Timedelta | None = None,
        by: str | None = None,
        end: float | None = None,
    ) -> pd.Series | pd.DataFrame:
        """Events per second in bins of ``freq``, by event ``timestamp`` (rows without one are
        skipped).  ``window`` keeps only the last ``ceil(window / freq)`` bins, ending with the
        bin of the newest timestamp (a fixed number of bins, handy for live charts).  ``end``
        (epoch ms, e.g. ``wsnotebook.events.now_ms()``) makes the bins end at that time
        instead and leaves later timestamps out: a live chart is then not moved into the future
        by one event with a wrong clock (or microseconds sent as milliseconds).
        ``by`` (one of the category columns) gives a DataFrame with one column per value.
        Empty bins count zero; the index holds the bin starts (UTC).  A row's bin is
        ``floor(timestamp / freq)``, and ``end`` and ``window`` select whole bins.  Cost: without
        ``by``, O(rows of the open chunk) per call plus a small sum per frozen chunk (whose
        counts are computed once per ``freq`` and kept with it); with ``by``, O(rows).

        At most ``MAX_THROUGHPUT_BINS`` (100,000) bins: without ``window`` there is one bin per
        ``freq`` from the oldest to the newest timestamp, so a single stray old timestamp (say
        0) next to current ones would need billions; beyond the bound a
        :class:`~wsnotebook.errors.ConfigError` says how many bins it would take; pass
        ``window`` (or a larger ``freq``)."""
        try:
            step = pd.Timedelta(freq)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"throughput: invalid freq {freq!r}: {exc}") from None
        if step <= pd.Timedelta(0):
            raise ConfigError(f"throughput: freq must be positive, got {freq!r}")
        if by is not None and by not in _CAT_COLUMNS:
            raise ConfigError(f"throughput: by must be one of {', '.join(_CAT_COLUMNS)}")
        step_ms = step.total_seconds() * 1000.0
        per_s = 1000.0 / step_ms
        if end is not None and (
            isinstance(end, bool) or not isinstance(end, (int, float)) or not math.isfinite(end)
        ):
            raise ConfigError(f"throughput: end must be a finite epoch in ms, got {end!r}")
        # Rows are binned by floor(timestamp / freq) and every condition below is on those
        # bins, so a row is counted in exactly the bin it falls in.  Without ``by``, each
        # frozen chunk's bin counts are computed once and cached on the chunk (chunks are
        # immutable): a live chart over 200k rows costs ~0.3 instead of ~3.5 ms a second, time
        # during which a worker thread held the GIL the kernel's cells were waiting for.
        codes: np.ndarray | None = None
        if by is None:
            pieces, _ = self._pieces(text=False)
            parts = [_bin_counts(chunk, sl, step_ms) for chunk, sl in pieces]
            bins = _concat([b for b, _ in parts], np.float64)
            weights = _concat([w for _, w in parts], np.int64)
        else:
            cols, cat_values = self.numeric_columns(["timestamp", by])
            ts = cols["timestamp"]
            ok = np.isfinite(ts)
            bins = np.floor(ts[ok] / step_ms)
            codes = cols[by][ok]
            weights = np.ones(len(bins), dtype=np.int64)
        if end is not None:
            keep = bins <= math.floor(end / step_ms)  # up to the end of end's bin
            bins, weights = bins[keep], weights[keep]
            codes = None if codes is None else codes[keep]
        if not len(bins):
            index = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="time")
            if by:
                return pd.DataFrame(index=index, dtype=np.float64)
            return pd.Series([], index=index, dtype=np.float64, name="events_per_s")
        last = float(math.floor(end / step_ms)) if end is not None else float(bins.max())
        if window is not None:
            try:
                span = pd.Timedelta(window)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"throughput: invalid window {window!r}: {exc}") from None
            if span <= pd.Timedelta(0):
                raise ConfigError(f"throughput: window must be positive, got {window!r}")
            first = last - max(1, math.ceil(span.total_seconds() * 1000.0 / step_ms)) + 1
            keep = bins >= first
            bins, weights = bins[keep], weights[keep]
            codes = None if codes is None else codes[keep]
        else:
            first = float(bins.min())
        needed = float(last - first + 1)
        if needed > MAX_THROUGHPUT_BINS:
            count = f"{needed:,.0f}" if needed < 1e15 else f"{needed:.3g}"
            if window is None:
                where = "oldest timestamp"
                hint = "window= (e.g. window='10min') to count only the newest bins"
            else:
                where = "window start"
                hint = "a shorter window"
            raise ConfigError(
                f"throughput: {count} bins of {freq!r} would be needed from the {where} to the "
                f"newest, more than MAX_THROUGHPUT_BINS ({MAX_THROUGHPUT_BINS:,}); "
                f"pass {hint} or a larger freq"
            )
        offsets = (bins - first).astype(np.int64)
        nbins = int(last - first) + 1
        index = _ms_to_datetime((first + np.arange(nbins)) * step_ms)
        index.name = "time"
        if codes is None:
            counts = np.bincount(offsets, weights=weights, minlength=nbins) * per_s
            return pd.Series(counts, index=index, name="events_per_s")
        values = cat_values[_CAT_COLUMNS.index(by)]
        data: dict[str, np.ndarray] = {}
        for code in np.unique(codes):
            label = values[code] if code >= 0 else "(none)"
            data[label] = np.bincount(offsets[codes == code], minlength=nbins) * per_s
        return pd.DataFrame(data, index=index)

    def latency(self, percentiles: Sequence[float] = (0.5, 0.9, 0.99, 0.999)) -> pd.DataFrame:
        """Latency statistics in ms.  Rows ``latency_ms`` (client_received - timestamp),
        ``ingest_ms`` (server_received - timestamp), ``transit_ms`` (client_received -
        server_received); columns ``count``, ``mean``, ``min``, ``p50``..., ``max`` (NaN when
        no row has both stamps).  Percentiles use linear interpolation."""
        for q in percentiles:
            if not 0 <= q <= 1:
                raise ConfigError(f"latency: percentiles must be in [0, 1], got {q}")
        cols, _ = self.numeric_columns(["timestamp", "server_received", "client_received"])
        ts, sr, cr = cols["timestamp"], cols["server_received"], cols["client_received"]
        series = {"latency_ms": cr - ts, "ingest_ms": sr - ts, "transit_ms": cr - sr}
        labels = [f"p{_pname(q)}" for q in percentiles]
        rows = []
        for values in series.values():
            v = values[np.isfinite(values)]
            if len(v):
                pct = np.percentile(v, [q * 100 for q in percentiles]) if percentiles else []
                rows.append([len(v), v.mean(), v.min(), *pct, v.max()])
            else:
                rows.append([0, *([_NAN] * (len(labels) + 3))])
        out = pd.DataFrame(
            rows, index=list(series), columns=["count", "mean", "min", *labels, "max"]
        )
        out["count"] = out["count"].astype(np.int64)
        return out

    def stats(self) -> dict[str, Any]:
        """Counters and an estimate of the bytes held (payload text, columns, strings)."""
        with self._lock:
            mem = sum(c.nbytes() for c in self._frozen)
            op = self._open
            # Open rows are list items: ~8 bytes per reference plus a boxed int/float each.
            mem += len(op.blob) + op.n * (8 * 4 + 8 * len(_CAT_COLUMNS) + 8 * 3 + 32 * 5)
            return {
                "rows": self._frozen_rows - self._head + op.n,
                "total": self._total,
                "max_rows": self.max_rows,
                "dropped": self._dropped,
                "duplicates": self._duplicates,
                "gaps": len(self._gaps),
                "gaps_total": self._gaps_total,
                "version": self._version,
                "chunks": len(self._frozen) + (1 if op.n else 0),
                "id_intervals": len(self._ids.intervals),
                "id_holes_filled": self._ids.holes_filled,
                "subscribers": len(self._subscribers),
                "callback_errors": self.callback_errors,
                "memory_bytes": mem,
                "compress": self.compress,
            }

    # ------------------------------------------------------------------ parquet

    def to_parquet(self, path: str | Path) -> None:
        """Write retained rows to Parquet (needs ``pyarrow``).  ``payload``, ``chat`` and the
        unknown fields are stored as JSON text so any schema survives; times as epoch ms."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        pieces, values = self._pieces()
        n = sum(len(_rows(c, sl)) for c, sl in pieces)
        arrays: dict[str, Any] = {}
        arrays["id"] = _concat([c.ids[sl] for c, sl in pieces], np.int64)
        for name, attr in (
            ("timestamp", "ts"),
            ("server_received", "sr"),
            ("client_received", "cr"),
        ):
            arrays[name] = _concat([getattr(c, attr)[sl] for c, sl in pieces], np.float64)
        for j, name in enumerate(_CAT_COLUMNS):
            codes = _concat([c.cats[j][sl] for c, sl in pieces], np.int32)
            lookup = np.array([*values[j], None], dtype=object)
            arrays[name] = lookup[codes]
        payloads: list[str] = []
        for c, sl in pieces:
            text = c.text()
            payloads.extend(c.row_text(text, i).decode() for i in _rows(c, sl))
        arrays["payload"] = payloads
        for name in ("summary", "chat", "extra"):
            arrays[name] = _object_column(pieces, name, n)
        table = pa.table(
            {
                "id": pa.array(arrays["id"], pa.int64()),
                "timestamp": pa.array(arrays["timestamp"], pa.float64(), from_pandas=True),
                **{
                    name: pa.array(arrays[name], pa.string()).dictionary_encode()
                    for name in _CAT_COLUMNS
                },
                "payload": pa.array(arrays["payload"], pa.string()),
                "summary": pa.array(arrays["summary"], pa.string()),
                "chat": pa.array(arrays["chat"], pa.string()),
                "extra": pa.array(arrays["extra"], pa.string()),
                "server_received": pa.array(
                    arrays["server_received"], pa.float64(), from_pandas=True
                ),
                "client_received": pa.array(
                    arrays["client_received"], pa.float64(), from_pandas=True
                ),
            }
        )
        table = table.replace_schema_metadata({"format": _PARQUET_FORMAT})
        pq.write_table(table, str(path))

    @classmethod
    def from_parquet(
        cls,
        path: str | Path,
        *,
        max_rows: int | None = None,
        chunk_rows: int | None = None,
        compress: str | None = "auto",
    ) -> EventFrame:
        """Read a file written by :meth:`to_parquet` into a new frame (ids are deduplicated as
        on append; ``max_rows`` defaults to ``max(1_000_000, rows in the file)``; ``max_rows``
        and ``chunk_rows`` are checked as by the constructor)."""
        import pyarrow.parquet as pq

        table = pq.read_table(str(path))
        meta = table.schema.metadata or {}
        if meta.get(b"format") != _PARQUET_FORMAT.encode():
            raise ConfigError(f"{path}: not an EventFrame parquet file (format {_PARQUET_FORMAT})")
        n = table.num_rows
        frame = cls(
            max_rows=max(1_000_000, n) if max_rows is None else max_rows,
            chunk_rows=chunk_rows,
            compress=compress,
        )
        ids = table.column("id").to_numpy()
        ts = table.column("timestamp").to_numpy()
        sr = table.column("server_received").to_numpy()
        cr = table.column("client_received").to_numpy()
        cat_values = [table.column(name).to_pylist() for name in _CAT_COLUMNS]
        payload = table.column("payload").to_pylist()
        summary = table.column("summary").to_pylist()
        chat = table.column("chat").to_pylist()
        extra = table.column("extra").to_pylist()
        step = 65536
        for a in range(0, n, step):
            b = min(n, a + step)
            sl = slice(a, b)
            with frame._lock:
                codes = [
                    [cats.codes[v] if v in cats.codes else cats.add(name, v) for v in vals[sl]]
                    for name, cats, vals in zip(_CAT_COLUMNS, frame._cats, cat_values)
                ]
                idl = ids[sl].tolist()
                keep = [i for i, ident in enumerate(idl) if ident == -1 or frame._ids.add(ident)]
                frame._duplicates += len(idl) - len(keep)
                cols = _Columns(
                    [idl[i] for i in keep],
                    _stamp_list("timestamp", ts[sl][keep]),
                    _stamp_list("server_received", sr[sl][keep]),
                    _stamp_list("client_received", cr[sl][keep]),
                    [payload[a + i].encode() for i in keep],
                    [summary[a + i] for i in keep],
                    [chat[a + i] for i in keep],
                    [extra[a + i] for i in keep],
                )
                frame._write(cols, [[c[i] for i in keep] for c in codes])
                frame._total += len(keep)
                frame._evict()
                frame._version += 1
        return frame


# --------------------------------------------------------------------------- building frames


def _pname(q: float) -> str:
    return f"{q * 100:.3f}".rstrip("0").rstrip(".")


class _PlainColumns:
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

    def __init__(self, pieces: list[_Piece], values: list[list[str]]) -> None:
        ids = _concat([c.ids[sl] for c, sl in pieces], np.int64)
        n = len(ids)
        ts = _concat([c.ts[sl] for c, sl in pieces], np.float64)
        cr = _concat([c.cr[sl] for c, sl in pieces], np.float64)
        cols: dict[str, list[Any]] = {
            "id": ids.tolist(),
            "timestamp": list(_ms_to_datetime(ts)),
            "summary": _object_column(pieces, "summary", n),
            "payload_json": _payload_bytes(pieces),
            "latency_ms": (cr - ts).tolist(),
        }
        for j, name in enumerate(("source_app", "session_id", "hook_event_type")):
            codes = _concat([c.cats[j][sl] for c, sl in pieces], np.int32).tolist()
            names = values[j]
            cols[name] = [names[k] if k >= 0 else None for k in codes]
        self._cols = cols
        self._n = n

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, name: str) -> list[Any]:
        return self._cols[name]


def _concat(arrays: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)


def _bin_counts(
    chunk: _Chunk, sl: slice | np.ndarray, step_ms: float
) -> tuple[np.ndarray, np.ndarray]:
    """The distinct bins ``floor(timestamp / step_ms)`` (float64, ascending) of the piece's rows
    with a finite timestamp, and how many rows each holds.  A whole chunk's result is cached on
    it when dense (at most one entry per 16 rows; one step at a time: the last one asked for);
    a part of a chunk (the oldest, partly evicted) is counted afresh."""
    whole = isinstance(sl, slice) and sl.indices(chunk.n) == (0, chunk.n, 1)
    cached = chunk.bins  # read once: another thread may store another step meanwhile
    if whole and cached is not None and cached[0] == step_ms:
        return cached[1], cached[2]
    ts = chunk.ts[sl]
    b = np.floor(ts[np.isfinite(ts)] / step_ms)
    if len(b) > 1 and not (b[1:] >= b[:-1]).all():  # arrival order is nearly time order
        b.sort()
    if len(b):
        starts = np.flatnonzero(np.concatenate(([True], b[1:] != b[:-1])))
        counts = np.diff(np.append(starts, len(b)))
        b = b[starts]
    else:
        counts = np.empty(0, dtype=np.int64)
    if whole and len(b) <= max(64, chunk.n // 16):
        # Dense counts only: a slow stream (about one row per bin) would cache ~16 B per row,
        # memory stats() does not count, to save a recount that is cheap at that rate.
        chunk.bins = (step_ms, b, counts)
    return b, counts


def _numeric_column(chunk: _Chunk, name: str) -> np.ndarray:
    if name in _CAT_COLUMNS:
        return chunk.cats[_CAT_COLUMNS.index(name)]
    attr = {"timestamp": "ts", "server_received": "sr", "client_received": "cr"}[name]
    arr: np.ndarray = getattr(chunk, attr)
    return arr


def _rows(chunk: _Chunk, sl: slice | np.ndarray) -> Sequence[int]:
    if isinstance(sl, slice):
        return range(*sl.indices(chunk.n))
    return sl.tolist()


def _object_column(pieces: list[_Piece], name: str, n: int) -> list[Any]:
    out: list[Any] = []
    for chunk, sl in pieces:
        col = chunk.column(name)
        if col is None:
            out.extend([None] * len(_rows(chunk, sl)))
        elif isinstance(sl, slice):
            out.extend(col[sl])
        else:
            out.extend([col[i] for i in sl.tolist()])
    return out


def _payloads(pieces: list[_Piece]) -> list[Any]:
    out: list[Any] = []
    for chunk, sl in pieces:
        if isinstance(sl, slice):
            a, b, _ = sl.indices(chunk.n)
            if b <= a:
                continue
            text = b"[" + chunk.text()[chunk.off[a] : chunk.off[b] - _NSEP] + b"]"
        else:
            if not len(sl):
                continue
            whole = chunk.text()
            text = b"[" + _SEP.join([chunk.row_text(whole, i) for i in sl.tolist()]) + b"]"
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
    for raw in text[1:-1].split(_SEP):
        try:
            rows.append(orjson.loads(raw))
        except orjson.JSONDecodeError:
            log.warning("EventFrame: a payload is not decodable JSON; kept as text: %.80r", raw)
            rows.append(raw.decode("utf-8", "replace"))
    return rows


def _payload_bytes(pieces: list[_Piece]) -> list[bytes]:
    """Each row's payload JSON text, not decoded."""
    out: list[bytes] = []
    for chunk, sl in pieces:
        text = chunk.text()
        if isinstance(sl, slice):
            a, b, _ = sl.indices(chunk.n)
            if b > a:
                out.extend(text[chunk.off[a] : chunk.off[b] - _NSEP].split(_SEP))
        else:
            out.extend(chunk.row_text(text, i) for i in sl.tolist())
    return out


def _object_array(values: list[Any]) -> pd.Series:
    """An object column (pandas 3 would otherwise infer its ``str`` dtype for strings)."""
    arr = np.fromiter(values, dtype=object, count=len(values))
    return pd.Series(arr, dtype=object, copy=False)


def _payload_texts(pieces: list[_Piece]) -> list[str]:
    out: list[str] = []
    sep = _SEP.decode()
    for chunk, sl in pieces:
        text = chunk.text()
        if isinstance(sl, slice):
            a, b, _ = sl.indices(chunk.n)
            if b > a:
                out.extend(text[chunk.off[a] : chunk.off[b] - _NSEP].decode().split(sep))
        else:
            out.extend(chunk.row_text(text, i).decode() for i in sl.tolist())
    return out


def _categorical(codes: np.ndarray, values: list[str]) -> pd.Categorical:
    """Codes -> Categorical holding only the categories present (first-seen order)."""
    if not len(codes) or not values:
        return pd.Categorical.from_codes(
            np.full(len(codes), -1, dtype=np.int32), categories=pd.Index([], dtype=object)
        )
    used = np.bincount(codes[codes >= 0], minlength=len(values)) > 0
    remap = np.full(len(values) + 1, -1, dtype=np.int32)
    remap[:-1][used] = np.arange(int(used.sum()), dtype=np.int32)
    cats = list(compress(values, used.tolist()))
    return pd.Categorical.from_codes(remap[codes], categories=pd.Index(cats, dtype=object))


def _build(pieces: list[_Piece], values: list[list[str]], *, payload: str = "dict") -> pd.DataFrame:
    ids = _concat([c.ids[sl] for c, sl in pieces], np.int64)
    n = len(ids)
    ts = _concat([c.ts[sl] for c, sl in pieces], np.float64)
    sr = _concat([c.sr[sl] for c, sl in pieces], np.float64)
    cr = _concat([c.cr[sl] for c, sl in pieces], np.float64)
    cats = [_concat([c.cats[j][sl] for c, sl in pieces], np.int32) for j in range(len(values))]
    with gc_paused():
        payload_col = (
            _object_array(_payloads(pieces))
            if payload == "dict"
            else _object_array(_payload_texts(pieces))
            if payload == "json"
            else None
        )
        chat_text = _object_column(pieces, "chat", n)
        chat = [None if t is None else orjson.loads(t) for t in chat_text]
        extra_text = _object_column(pieces, "extra", n)
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
            "timestamp": _ms_to_datetime(ts),
            "source_app": _categorical(cats[0], values[0]),
            "session_id": _categorical(cats[1], values[1]),
            "hook_event_type": _categorical(cats[2], values[2]),
            "payload": payload_col,
            "summary": _object_array(_object_column(pieces, "summary", n)),
            "model_name": pd.Series(model_lookup[cats[3]], dtype=object, copy=False),
            "chat": _object_array(chat),
        }
        if payload_col is None:
            del data["payload"]
        for key, col in extras.items():
            if key not in data and key not in _TAIL_COLUMNS:
                data[key] = _object_array(col)
        data["server_received"] = _ms_to_datetime(sr)
        data["client_received"] = _ms_to_datetime(cr)
        data["latency_ms"] = cr - ts
        data["ingest_ms"] = sr - ts
        data["transit_ms"] = cr - sr
        return pd.DataFrame(data, copy=False)


# --------------------------------------------------------------------------- arguments


def _int_arg(method: str, name: str, value: Any) -> int:
    """``value`` as an ``int`` (``int`` or numpy integer, not ``bool``), else ConfigError."""
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            return operator.index(value)
    got = json_type(value) if value is None else f"{json_type(value)} {value!r}"
    raise ConfigError(f"{method}: {name} must be an integer, got {got}")


def _count_arg(method: str, name: str, value: Any) -> int:
    """``value`` as an ``int >= 0`` (see :func:`_int_arg`), else ConfigError."""
    n = _int_arg(method, name, value)
    if n < 0:
        raise ConfigError(f"{method}: {name} must be >= 0, got {n}")
    return n


def _category_arg(name: str, cond: Any) -> list[Any] | None:
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


def _search_pattern(search: Any) -> re.Pattern[str] | None:
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


# --------------------------------------------------------------------------- search

#: Pattern text that can make a search of a chunk's joined text disagree with a search of
#: each row alone: ``\A``/``\Z``/``\z`` (the joined text has one start and one end),
#: lookahead/lookbehind (they see the neighbouring rows), atomic groups and possessive
#: quantifiers (they may consume past the row end and then refuse to give it back).  A false
#: alarm (e.g. an escaped ``\\A``) only costs the per-row scan.
_CROSS_ROW = re.compile(r"\\[AZz]|\(\?<?[=!]|\(\?>|[*+?}]\+")


def _blob_pattern(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """The pattern for one regex pass over a chunk's joined payload text, or ``None`` when
    rows must be searched one by one.

    The joined text is the rows separated by ``"\\n,\\n"`` (payload JSON has no raw
    newline), searched with ``MULTILINE``: ``^``/``$`` then match at row edges as on a row
    alone, ``\\b``/``\\B`` see a non-word separator as they see a row's edge, and any other
    construct only reads characters its match consumes, so every row that matches alone has a
    match of the joined text starting inside it (candidates are confirmed on the row alone).
    Constructs in :data:`_CROSS_ROW` break that and take the per-row scan."""
    if _CROSS_ROW.search(pattern.pattern):
        return None
    return re.compile(pattern.pattern, pattern.flags | re.MULTILINE)


def _search_rows(
    chunk: _Chunk,
    start: int,
    rows: np.ndarray,
    pattern: re.Pattern[str],
    blob_pattern: re.Pattern[str] | None,
) -> np.ndarray:
    """The subset of ``rows`` whose summary or payload text matches ``pattern`` (exact: as
    when each row is searched alone).  ``blob_pattern`` (see :func:`_blob_pattern`; ``None``:
    never) allows one regex pass over the chunk's text when most rows are candidates."""
    hits = np.zeros(chunk.n, dtype=bool)
    summary = chunk.column("summary")
    if summary is not None:
        for i in rows.tolist():
            s = summary[i]
            if s is not None and pattern.search(s):
                hits[i] = True
    off = chunk.off
    whole = chunk.text()
    if blob_pattern is not None and chunk.is_ascii and len(rows) * 4 > chunk.n - start:
        # One regex pass over the chunk's text; candidate rows are confirmed one by one.  Rows
        # are lines (separated by "\n,\n"; JSON text has no raw newline), and the pattern runs
        # with MULTILINE, so ^/$ behave at row edges as they do on a row alone.
        text = whole.decode("ascii")
        pos = int(off[start])
        end = len(text)
        while pos < end:
            m = blob_pattern.search(text, pos)
            if m is None:
                break
            p = m.start()
            r = int(np.searchsorted(off, p, side="right")) - 1
            row_end = int(off[r + 1]) - _NSEP
            if r < chunk.n and p <= row_end and pattern.search(text[int(off[r]) : row_end]):
                hits[r] = True
                pos = int(off[r + 1])
            else:
                pos = p + 1
    else:
        for i in rows.tolist():
            if not hits[i] and pattern.search(chunk.row_text(whole, i).decode()):
                hits[i] = True
    return rows[hits[rows]]
