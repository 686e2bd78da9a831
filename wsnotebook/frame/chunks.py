"""Chunks: the storage units of an EventFrame, and the batch shape written into them.

Owns: :class:`Chunk` (rows ``0..n-1``, immutable once frozen; snapshots share it),
:class:`OpenChunk` (the chunk being appended to: growable ``array.array`` columns, no numpy
call per append), :class:`Codec` (compression of a frozen chunk's payload text) and
:class:`Columns` (one validated batch in column form).  No locking and no frame counters here:
:mod:`.storage` drives these under the frame's lock.

Invariants:

* A chunk's payload text is one ``bytes`` blob, rows separated by :data:`SEP`
  (``b"\\n,\\n"``: ``b"[" + text + b"]"`` is a valid JSON array, and payload JSON has no raw
  newline), with ``off[i]`` the start of row ``i`` (``off[n]`` is one separator past the end).
* A frozen chunk keeps ``summary``/``chat``/``extra`` as one JSON array text each (``None``
  when all null), never one Python object per row: a few surviving small objects per batch
  would pin the allocator arenas of everything else the batch allocated.
* Bound: a chunk holds at most ``chunk_rows`` (<= 1,048,576) rows; an open chunk's text is
  below 4 GiB when frozen with ``uint32`` offsets (else ``int64``).
* The open chunk's text lives in an anonymous ``mmap`` (capacity doubled by ``mremap``) that
  passes to the next open chunk when the frame keeps the append that froze it: at most one
  chunk's text of spare capacity per frame, mapped but untouched until written.
* A compressed frozen chunk keeps the last :data:`RECENT_BYTES` of its text uncompressed
  (``recent``, from byte ``recent_at``) only while it is the frame's newest frozen chunk: the
  storage drops it when the next chunk freezes, so a frame holds at most one such tail.
* Category columns are int32 codes into the frame's :class:`~.categories.Categories`
  (-1: no value); their order is :data:`CAT_COLUMNS`.
"""

from __future__ import annotations

import mmap
import zlib
from array import array
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from ..errors import ConfigError
from ..events.columns import PAYLOAD_SEP

__all__ = [
    "CAT_COLUMNS",
    "NSEP",
    "RECENT_BYTES",
    "SEP",
    "Chunk",
    "Codec",
    "Columns",
    "OpenChunk",
    "Piece",
    "concat",
    "has_pyarrow",
    "object_column",
    "put",
    "recoded",
    "rows",
]

SEP = PAYLOAD_SEP  # row separator inside a payload blob: "[a\n,\nb]" is a valid JSON array
NSEP = len(SEP)
#: Uncompressed bytes a newly frozen, compressed chunk keeps of the end of its text until the
#: next chunk freezes (:meth:`Chunk.text_from`): one frame holds at most this much extra.  The
#: rows a 4 Hz monitor tick reads at up to ~12k ev/s of ~650-byte payloads.
RECENT_BYTES = 1 << 21
#: The first open chunk's text capacity (bytes; doubled when full).
_TEXT_MIN = 1 << 16
#: The category columns, in the order of a chunk's ``cats`` codes.
CAT_COLUMNS = ("source_app", "session_id", "hook_event_type", "model_name")


def has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


class Codec:
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

    def compress(self, data: bytes | bytearray | memoryview) -> bytes:
        if self._pa is not None:
            out: bytes = self._pa.compress(data, asbytes=True)
            return out
        return zlib.compress(data, 1)

    def decompress(self, data: bytes, size: int) -> bytes:
        if self._pa is not None:
            out: bytes = self._pa.decompress(data, decompressed_size=size, asbytes=True)
            return out
        return zlib.decompress(data)


class Chunk:
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
        "recent",
        "recent_at",
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
        blob: bytes | memoryview,  # a memoryview only when compressed here (never kept)
        off: np.ndarray,
        summary: list[Any] | bytes | None,
        chat: list[Any] | bytes | None,
        extra: list[Any] | bytes | None,
        codec: Codec | None = None,
        is_ascii: bool | None = None,
    ) -> None:
        self.n = n
        self.ids, self.ts, self.sr, self.cr = ids, ts, sr, cr
        # throughput(): (step_ms, distinct bins, row counts) of this chunk (see .analysis)
        self.bins: tuple[float, np.ndarray, np.ndarray] | None = None
        self.cats = cats
        self.off = off  # off[i] = start of row i; row i = text[off[i] : off[i+1] - NSEP]
        self.summary, self.chat, self.extra = summary, chat, extra
        self.is_ascii = bytes(blob).isascii() if is_ascii is None else is_ascii
        self.raw_size = len(blob)
        self.codec = codec
        self.blob: bytes = codec.compress(blob) if codec is not None else bytes(blob)
        # A compressed chunk keeps its last RECENT_BYTES uncompressed until the storage calls
        # drop_recent (when the next chunk freezes): see text_from.
        self.recent: bytes | None = None
        self.recent_at = 0
        if codec is not None:
            self.recent_at = max(0, len(blob) - RECENT_BYTES)
            self.recent = bytes(blob[self.recent_at :])

    def text(self) -> bytes:
        """The payload text of every row (decompressed when the chunk is compressed)."""
        if self.codec is None:
            return self.blob
        return self.codec.decompress(self.blob, self.raw_size)

    def text_from(self, start: int) -> tuple[bytes, int]:
        """``(buffer, base)``: the payload text from byte ``start`` on is ``buffer[start -
        base:]``.  Served from the chunk's uncompressed last bytes when it still has them and
        they cover ``start`` (a monitor's tick reads the rows that arrived since the last
        tick, which the newest frozen chunk holds at its end: decompressing the whole chunk
        for them once per chunk was ~20 % of a tick's CPU at 5k ev/s); else :meth:`text`."""
        recent = self.recent  # one read: drop_recent may run in another thread
        if recent is not None and start >= self.recent_at:
            return recent, self.recent_at
        return self.text(), 0

    def drop_recent(self) -> None:
        """Forget the uncompressed last bytes (the chunk is no longer the newest frozen one)."""
        self.recent = None

    def nbytes(self) -> int:
        size = len(self.blob) + self.off.nbytes + self.ids.nbytes + 3 * self.ts.nbytes
        recent = self.recent
        size += len(recent) if recent is not None else 0
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
        return text[self.off[i] : self.off[i + 1] - NSEP]


def _none_if_empty(col: list[Any]) -> list[Any] | None:
    return None if col.count(None) == len(col) else col


def _packed(col: list[Any]) -> bytes | None:
    """A column of ``str``/``None`` as one JSON array text (``None`` when all null)."""
    return None if col.count(None) == len(col) else orjson.dumps(col)


class OpenChunk:
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
        "snap",
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
        "used",
    )

    def __init__(self, capacity: int, text: mmap.mmap | None = None) -> None:
        self.capacity = capacity
        self.n = 0
        self.ids = array("q")
        self.ts = array("d")
        self.sr = array("d")
        self.cr = array("d")
        self.cats = tuple(array("i") for _ in CAT_COLUMNS)
        self.cum = array("q", [0])  # cum[i]: payload bytes of rows < i, separators excluded
        # The payload text is blob[:used]; the buffer's own size is its capacity (see
        # add_text).  ``text``: the buffer of the chunk frozen before this one, reused (its
        # pages are already mapped: no page faults, no growth); nothing else refers to it.
        self.blob = _text_buffer(_TEXT_MIN) if text is None else text
        self.used = 0
        self.ascii = True  # every payload text so far is ASCII (kept per append: no big scan)
        self.summary: list[Any] = []
        self.chat: list[Any] = []
        self.extra: list[Any] = []
        self.snap: Chunk | None = None

    def codes(self, j: int) -> np.ndarray:
        return _np(self.cats[j], np.int32, copy=True)

    def add_text(self, text: bytes | bytearray) -> None:
        """Append one or more rows' payload ``text`` (rows joined with ``SEP``) and a ``SEP``.

        Written into spare capacity (a slice assignment of equal length: a memcpy, no resize)
        of an anonymous private ``mmap`` (pages zeroed by the kernel when first written: no
        ``memset`` of the capacity; untouched capacity costs no memory).  When full, the
        capacity doubles (``mmap.resize``: a ``mremap``, no copy; a copy where that fails);
        the buffer passes on to the next open
        chunk when this one freezes, so a frame's steady state neither grows nor faults pages
        in.  ``blob += text`` on a ``bytearray`` grew it by ~1/8 at a time, and glibc's
        ``realloc`` of a heap block copies the whole text each time: ~140-450 us per 78 KB
        message once the chunk held ~10 MB (cold caches), ~9 % of the client's handling at
        5k ev/s; a doubling ``bytearray`` still spent ~15 % there (``memset`` of each new
        capacity and the copies) with 6 ms stalls at each doubling."""
        used = self.used
        end = used + len(text) + NSEP
        blob = self.blob
        if end > len(blob):
            size = max(end, 2 * len(blob))
            try:
                blob.resize(size)  # mremap on Linux: no copy (~20 us for 8 -> 16 MB)
            except (BufferError, OSError, SystemError, ValueError):
                # a view still exported, or a platform that cannot resize this map: copy
                grown = _text_buffer(size)
                with memoryview(blob) as mv:
                    grown[:used] = mv[:used]
                self.blob = blob = grown
        blob[used : end - NSEP] = text
        blob[end - NSEP : end] = SEP
        self.used = end

    def text(self) -> bytes:
        """A copy of the payload text so far (rows joined, each followed by ``SEP``)."""
        with memoryview(self.blob) as mv:  # released at once: the bytearray must grow
            return mv[: self.used].tobytes()

    def truncate(self, n: int, ascii_text: bool) -> None:
        """Drop rows ``n..`` again (undo a write that failed part way; each column is cut on
        its own, so a column that was not appended to yet is left as it is)."""
        columns: list[array[Any]] = [self.ids, self.ts, self.sr, self.cr, *self.cats]
        for col in columns:
            del col[n:]
        self.used = self.cum[n] + n * NSEP
        del self.cum[n + 1 :]
        del self.summary[n:]
        del self.chat[n:]
        del self.extra[n:]
        self.n = n
        self.ascii = ascii_text
        self.snap = None

    def tail_view(self, k: int, *, text: bool = True) -> Chunk:
        """The last ``k`` rows (``0 < k <= n``) as a new chunk of ``k`` rows, copying only
        those rows (O(k); :meth:`view` copies the whole open chunk, up to megabytes of text in
        single GIL-holding calls, which showed up as a ~10 ms tail in a busy kernel's cells).
        ``text=False``: numeric columns only (no payload text, no summary/chat/extra)."""
        n = self.n
        a = n - k
        cats = tuple(_np_rows(c, np.int32, a, k) for c in self.cats)
        if text:
            cum = _np_rows(self.cum, np.int64, a, k + 1)
            start = int(cum[0]) + a * NSEP
            off = cum - cum[0]
            off += np.arange(0, NSEP * (k + 1), NSEP, dtype=np.int64)
            with memoryview(self.blob) as mv:  # released at once: the bytearray must grow
                blob = mv[start : self.used].tobytes()
            ascii_text = True if self.ascii else blob.isascii()
            summary = _none_if_empty(self.summary[a:n])
            chat = _none_if_empty(self.chat[a:n])
            extra = _none_if_empty(self.extra[a:n])
        else:
            off, blob = np.zeros(k + 1, dtype=np.int64), b""
            summary = chat = extra = None
            ascii_text = True
        return Chunk(
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

    def view(self, *, frozen: bool, codec: Codec | None = None) -> Chunk:
        """Rows ``0..n-1`` as a chunk.  ``frozen``: the final arrays (the open chunk is then
        discarded), payload text compressed with ``codec``; else a snapshot, cached until
        the next append (rows below ``n`` never change, so it stays valid)."""
        n = self.n
        snap = self.snap
        if not frozen and snap is not None and snap.n == n:
            return snap
        copy = True  # even when frozen: array.array over-allocates ~1/8, a copy is exact
        off = _np(self.cum, np.int64, copy=True)
        off += np.arange(0, NSEP * (n + 1), NSEP, dtype=np.int64)
        if frozen and self.used < 1 << 32:
            off = off.astype(np.uint32)  # half the bytes; a chunk's text is < 4 GiB
        chunk = Chunk(
            n,
            _np(self.ids, np.int64, copy=copy),
            _np(self.ts, np.float64, copy=copy),
            _np(self.sr, np.float64, copy=copy),
            _np(self.cr, np.float64, copy=copy),
            tuple(_np(c, np.int32, copy=copy) for c in self.cats),
            # Compressing reads the bytearray as it is (no 8 MB copy holding the GIL): the
            # open chunk is discarded after freezing, so nothing writes to it again.
            memoryview(self.blob)[: self.used] if frozen and codec is not None else self.text(),
            off,
            _packed(self.summary) if frozen else _none_if_empty(self.summary[:n]),
            _packed(self.chat) if frozen else _none_if_empty(self.chat[:n]),
            _packed(self.extra) if frozen else _none_if_empty(self.extra[:n]),
            codec if frozen else None,
            is_ascii=self.ascii,
        )
        if not frozen:
            self.snap = chunk
        return chunk


def _text_buffer(size: int) -> mmap.mmap:
    """A writable anonymous memory map of ``size`` bytes (pages zeroed lazily by the kernel).
    Private where the platform has the flag (POSIX: Python's default, a shared map, faults its
    pages in through shared memory, measured slower); Windows: the default anonymous map."""
    private = getattr(mmap, "MAP_PRIVATE", None)
    return mmap.mmap(-1, size) if private is None else mmap.mmap(-1, size, flags=private)


def recoded(chunk: Chunk, j: int, remap: np.ndarray) -> Chunk:
    """A copy of frozen ``chunk`` whose category column ``j`` is re-coded through ``remap``
    (everything else shared: frozen arrays are never written)."""
    out = Chunk.__new__(Chunk)
    for name in Chunk.__slots__:
        setattr(out, name, getattr(chunk, name))
    cats = list(chunk.cats)
    cats[j] = remap[cats[j]]
    out.cats = tuple(cats)
    return out


def put(dst: array[Any], src: Any) -> None:
    """Append ``src`` (a list of Python numbers; an ``array.array`` or a numpy array of
    ``dst``'s item type: one memcpy or two; another sequence of numbers) to an open-chunk
    column."""
    kind = type(src)
    if kind is list:
        dst.fromlist(src)
    elif kind is array:
        dst.extend(src)  # same typecode: a memcpy
    elif kind is np.ndarray:
        dst.frombytes(src.tobytes())
    else:
        dst.extend(src)


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


class Columns:
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
        # already joined with ``SEP`` (saves a second join when the batch fits one chunk).
        self.lens: Any = None  # array('q') (or an int64 numpy array)
        self.blob: bytes | None = None


# A snapshot piece: a chunk plus the rows of it to show (a slice or an index array).
Piece = tuple[Chunk, "slice | np.ndarray"]


def concat(arrays: list[np.ndarray], dtype: Any) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, dtype=dtype)


def rows(chunk: Chunk, sl: slice | np.ndarray) -> Sequence[int]:
    """The row numbers a piece selects."""
    if isinstance(sl, slice):
        return range(*sl.indices(chunk.n))
    return sl.tolist()


def object_column(pieces: list[Piece], name: str, n: int) -> list[Any]:
    """``summary``/``chat``/``extra`` of the pieces' rows (``n`` of them) as one list."""
    out: list[Any] = []
    for chunk, sl in pieces:
        col = chunk.column(name)
        if col is None:
            out.extend([None] * len(rows(chunk, sl)))
        elif isinstance(sl, slice):
            out.extend(col[sl])
        else:
            out.extend([col[i] for i in sl.tolist()])
    return out
