"""Storage: the rows of an EventFrame in chunks, and the write path (append, dedupe, evict).

Owns: the frozen chunks and the open one (:mod:`.chunks`), the category dictionaries
(:mod:`.categories`), the remembered ids (:class:`~.idset.IdSet`) and the row counters
(``total``, ``dropped``, ``duplicates``, ``version``).  It does not lock: every method runs
under the owning frame's lock (:class:`~.frame.EventFrame` takes it once per call).

Layout (why it looks like this: measured, see ``benchmarks/bench_frame.py``): rows live in
chunks of up to ``chunk_rows`` rows.  The newest chunk is *open* (appended to per batch, no
numpy call per append); a full chunk is *frozen* (immutable; its payload text compressed by the
codec) and a new open chunk starts.  Appending never calls ``pd.concat`` and never copies old
rows.  Eviction drops whole frozen chunks and moves a start offset (``head``) inside the oldest.

Invariants and drop policies:

* Bound: ``len(self) <= max_rows`` after every write; the oldest rows are evicted first and
  counted in ``dropped``.  Memory held beyond the retained rows is at most one chunk.
* Dedupe: an id already remembered is ignored and counted in ``duplicates``; ids are kept as
  intervals (at most ``MAX_ID_INTERVALS``; beyond, the oldest holes are filled).  Rows without
  an id (-1) are never deduplicated.
* All-or-nothing: a batch is validated (:mod:`.ingest`) before anything is written; if a write
  still fails (freezing a chunk: compression, memory), the chunks frozen by it are dropped and
  the open chunk cut back, so the store is exactly as before and the error propagates.
* Category values whose rows were all evicted are dropped (and the column re-coded) once they
  are at least half of a column's values and ``COMPACT_MIN`` or more.
* Snapshots (:meth:`ChunkStore.pieces`, :meth:`ChunkStore.tail_pieces`) share frozen chunks
  (never written again; a compaction replaces them with re-coded copies) and copy only open
  rows, so they stay valid after the lock is released.
"""

from __future__ import annotations

import operator
from array import array
from collections import deque
from collections.abc import Sequence
from itertools import accumulate, repeat
from typing import Any

import numpy as np
import orjson

from ..errors import EventValidationError
from ..events import Event, json_type
from ..events.columns import EventColumns
from ..events.hitl import HITL_FIELD
from .categories import Categories, check_utf8
from .chunks import CAT_COLUMNS, SEP, Chunk, Codec, Columns, OpenChunk, Piece, put, recoded
from .idset import IdSet
from .ingest import (
    KNOWN,
    NAN,
    STAMPS,
    check_int64,
    decoded_columns,
    dedupe_events,
    dedupe_ids,
    dumps_text,
    event_columns,
    stamp_list,
)
from .questions import UPDATE_MARKS, RowUpdates

__all__ = ["ChunkStore"]


#: Fewest rows whose payload offsets are summed with numpy (fewer: ``accumulate``, which
#: costs less than the numpy calls' fixed cost, ~10-25 us each with cold caches).
_CUMSUM_MIN = 128


class ChunkStore:
    """The retained rows of one frame (see the module docstring).  Not thread-safe by itself:
    the frame calls it under its lock."""

    def __init__(self, max_rows: int, chunk_rows: int, codec: Codec | None) -> None:
        self.max_rows = max_rows
        self.chunk_rows = chunk_rows
        self.codec = codec
        self.ids = IdSet()
        self.total = 0  # rows ever added (monotonic)
        self.dropped = 0  # rows evicted because max_rows was reached
        self.duplicates = 0  # events ignored because their id was seen
        self.version = 0  # bumped on every change
        self.updates = RowUpdates()  # updates of rows (questions.py), kept across reset()
        self.reset()

    def reset(self) -> None:
        """Drop every row (counters and remembered ids are kept)."""
        self.cats = tuple(Categories() for _ in CAT_COLUMNS)
        self.frozen: deque[Chunk] = deque()
        self.frozen_rows = 0  # rows in frozen chunks, including the evicted head
        self.head = 0  # rows of the oldest frozen chunk already evicted
        self.open = OpenChunk(self.chunk_rows)
        # Text buffers of frozen open chunks, reused by the next open chunk (see freeze):
        # ``retired`` until the append that froze it is kept, then ``spare``.
        self.spare: Any = None
        self.retired: Any = None

    def __len__(self) -> int:
        return self.frozen_rows - self.head + self.open.n

    # ------------------------------------------------------------------ appending

    def extend(self, batch: Sequence[Event]) -> int:
        """Write the new rows of ``batch`` (dicts, at least two); return how many.  Events of
        known ids carrying an update mark are applied as updates (:mod:`.questions`), in batch
        order after the new rows (a question and its update in one batch: the row, then its
        update).  Cost when no event is a question: one C-level pass, plus one over the
        duplicates when there are any."""
        questions = any(map(operator.contains, batch, repeat(HITL_FIELD)))
        kept, new_ids, run, kept_ids = dedupe_events(batch, self.ids)
        if kept:
            cols, codes = event_columns(kept, kept_ids, self.cats, all_ids=run is not None)
            self.write(cols, codes)
            self.remember_ids(new_ids, run)
            self.total += len(kept)
            self.evict()
            if questions:
                self.updates.note_new(ev for ev in kept if HITL_FIELD in ev)
        if len(kept) < len(batch):
            self.duplicates += len(batch) - len(kept) - self.apply_updates(batch, kept)
        self.version += 1
        return len(kept)

    def apply_updates(self, batch: Sequence[Event], kept: Sequence[Event]) -> int:
        """Apply the events of ``batch`` not written as rows (``kept``) that carry an update
        mark and a known id; return how many were applied."""
        written = set(map(id, kept))
        applied = 0
        for ev in batch:
            if id(ev) in written or not _has_update_mark(ev):
                continue
            ident = ev.get("id")
            if type(ident) is int and ident in self.ids and self.updates.apply(ident, ev):
                applied += 1
        return applied

    def extend_columns(self, cols: EventColumns) -> int:
        """Write the new rows of a decoded batch (at least one row); return how many."""
        k = cols.n
        keep, new_ids, run = dedupe_ids(cols.id, self.ids)
        if keep is not None:
            cols = cols.take(keep)
        kept = cols.n
        if kept:
            data, codes = decoded_columns(cols, run, self.cats)
            self.write(data, codes)
            self.remember_ids(new_ids, run)
            self.total += kept
            self.evict()
        self.duplicates += k - kept
        self.version += 1
        return kept

    def remember_ids(self, new_ids: list[int], run: tuple[int, int] | None) -> None:
        """Add the ids of rows just written: a contiguous ``run`` at once, else one by one."""
        if run is not None:
            self.ids.add_run(*run)
        else:
            for ident in new_ids:
                self.ids.add(ident)

    def append_one(self, event: Event) -> bool:
        """``append`` without per-batch overhead: scalar appends to the open chunk's lists."""
        ident = event.get("id", -1)
        if ident is None:
            ident = -1
        elif type(ident) is not int:
            raise EventValidationError(f"id: expected integer, got {json_type(ident)}", field="id")
        if ident != -1 and ident in self.ids:
            if _has_update_mark(event) and self.updates.apply(ident, event):
                self.version += 1
                return False
            self.duplicates += 1
            self.version += 1
            return False
        check_int64(ident, ident)
        codes = []
        for j, column in enumerate(CAT_COLUMNS):
            cats = self.cats[j]
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
        for name in STAMPS:
            v = event.get(name)
            stamps.append(v if type(v) is float else NAN if v is None else stamp_list(name, [v])[0])
        summary = event.get("summary")
        if summary is not None:
            if not isinstance(summary, str):
                raise EventValidationError(
                    f"summary: expected string or null, got {json_type(summary)}",
                    field="summary",
                )
            if not summary.isascii():
                check_utf8("summary", summary)
        chat = dumps_text(event.get("chat"), "chat")
        extra = None
        if not KNOWN.issuperset(event):
            extra = dumps_text({k: v for k, v in event.items() if k not in KNOWN}, "extra")
            if HITL_FIELD in event:
                self.updates.note_new([event])
        op = self.open
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
        op.add_text(part)
        op.summary.append(summary)
        op.chat.append(chat)
        op.extra.append(extra)
        op.n += 1
        if op.n == op.capacity:
            try:
                self.freeze()
            except BaseException:  # the frame stays as it was: the row is taken back
                op.truncate(op.n - 1, ascii_before)
                raise
            self.spare, self.retired = self.retired, None
        if ident != -1:
            self.ids.add(ident)
        self.total += 1
        self.version += 1
        self.evict()
        return True

    def write(self, cols: Columns, codes: list[list[int]]) -> None:
        """Append validated columns to the open chunk(s), freezing full ones.  Everything was
        validated by :mod:`.ingest`, so nothing here should fail; if something does
        anyway (freezing a chunk: compression, memory), every chunk frozen here is dropped and
        the open chunk cut back, so the frame is exactly as before and the error propagates."""
        op = self.open
        n_open, ascii_open, n_frozen = op.n, op.ascii, len(self.frozen)
        try:
            self.write_rows(cols, codes)
        except BaseException:
            self.retired = None  # ``op`` is back in use: its text buffer is not free
            while len(self.frozen) > n_frozen:
                chunk = self.frozen.pop()
                self.frozen_rows -= chunk.n
                for cats, chunk_codes in zip(self.cats, chunk.cats):
                    cats.count(chunk_codes, -1)
            self.open = op
            op.truncate(n_open, ascii_open)
            raise
        if self.retired is not None:  # the rows are kept: the frozen chunks' buffer is free
            self.spare, self.retired = self.retired, None

    def write_rows(self, cols: Columns, codes: list[list[int]]) -> None:
        k = len(cols.parts)
        pos = 0
        while pos < k:
            op = self.open
            take = min(k - pos, op.capacity - op.n)
            if take == k:  # the whole batch fits: no slicing
                parts, c = cols.parts, cols
                put(op.ids, c.ids)
                put(op.ts, c.ts)
                put(op.sr, c.sr)
                put(op.cr, c.cr)
                for dst, src in zip(op.cats, codes):
                    put(dst, src)
                op.summary += c.summary
                op.chat += c.chat
                op.extra += c.extra
            else:
                sl = slice(pos, pos + take)
                parts = cols.parts[sl]
                put(op.ids, cols.ids[sl])
                put(op.ts, cols.ts[sl])
                put(op.sr, cols.sr[sl])
                put(op.cr, cols.cr[sl])
                for dst, src in zip(op.cats, codes):
                    put(dst, src[sl])
                op.summary += cols.summary[sl]
                op.chat += cols.chat[sl]
                op.extra += cols.extra[sl]
            cum = op.cum
            lens = cols.lens
            if lens is not None and take >= _CUMSUM_MIN:
                # no np.cumsum wrapper; an array('q') is viewed, not copied
                put(cum, np.frombuffer(lens, dtype=np.int64)[pos : pos + take].cumsum() + cum[-1])
            else:
                sizes = map(len, parts) if lens is None else lens[pos : pos + take]
                cum.fromlist(list(accumulate(sizes, initial=cum[-1])))
                del cum[-take - 1]  # the initial value was already there
            text = cols.blob if take == k and cols.blob is not None else SEP.join(parts)
            if op.ascii and not text.isascii():
                op.ascii = False
            op.add_text(text)
            op.n += take
            op.snap = None
            pos += take
            if op.n == op.capacity:
                self.freeze()

    def freeze(self) -> None:
        """Turn the full open chunk into a frozen one.  Building the chunk (packing, compression)
        is the step that can fail: frame state changes only after it succeeded, and the
        callers take their rows back when it raises (see :meth:`write`)."""
        old = self.open
        chunk = old.view(frozen=True, codec=self.codec)
        # The frozen chunk holds its own (compressed or copied) text, so the old open chunk's
        # buffer can take the next one's text (no page faults, no growth) — once the append
        # that froze it is kept: ``write`` may still restore that open chunk.
        new_open = OpenChunk(self.chunk_rows, self.spare)
        self.spare, self.retired = None, old.blob
        if self.frozen:  # at most one frozen chunk keeps an uncompressed tail (chunks.py)
            self.frozen[-1].drop_recent()
        self.frozen.append(chunk)
        self.frozen_rows += chunk.n
        for cats, codes in zip(self.cats, chunk.cats):
            cats.count(codes, 1)
        self.open = new_open

    def evict(self) -> None:
        """Drop the oldest rows beyond ``max_rows``, then compact category columns that are
        due.  Called at the end of every append, after the batch's codes were written."""
        self.evict_rows()
        for j, cats in enumerate(self.cats):
            if len(cats.values) >= cats.check_at:
                self.compact_categories(j)

    def compact_categories(self, j: int) -> None:
        """Drop category ``j``'s dead values and re-code its column.  Frozen chunks are
        replaced by re-coded copies (snapshots keep the old chunks with their own copy of the
        values, so a snapshot taken before stays consistent)."""
        cats = self.cats[j]
        live = cats.live(self.open.codes(j))
        n_live = int(live.sum())
        if 2 * n_live <= len(cats.values):
            remap = cats.compact(live)
            self.frozen = deque(recoded(c, j, remap) for c in self.frozen)
            op = self.open
            if op.n:  # same length: a slice assignment, no resize (op.codes copies)
                op.cats[j][:] = array("i", remap[op.codes(j)].tobytes())
            op.snap = None
        cats.rearm()

    def evict_rows(self) -> None:
        excess = self.frozen_rows - self.head + self.open.n - self.max_rows
        if excess <= 0:
            return
        self.dropped += excess
        while excess > 0:
            chunk = self.frozen[0]
            left = chunk.n - self.head
            stop = self.head + min(excess, left)
            for cats, codes in zip(self.cats, chunk.cats):
                cats.count(codes[self.head : stop], -1)
            if excess >= left:
                self.frozen.popleft()
                self.frozen_rows -= chunk.n
                self.head = 0
                excess -= left
            else:
                self.head = stop
                excess = 0

    # ------------------------------------------------------------------ reading

    def pieces(self, *, text: bool = True) -> tuple[list[Piece], list[list[str]]]:
        """Every retained row, oldest first, as (chunk, slice) pieces, and the category values.
        ``text=False``: the open chunk's numeric columns only (no copy of its payload text)."""
        pieces: list[Piece] = []
        for i, chunk in enumerate(self.frozen):
            pieces.append((chunk, slice(self.head if i == 0 else 0, chunk.n)))
        op = self.open
        if op.n:
            snap = op.view(frozen=False) if text else op.tail_view(op.n, text=False)
            pieces.append((snap, slice(0, snap.n)))
        values = [list(c.values) for c in self.cats]
        return pieces, values

    def tail_pieces(self, n: int, *, text: bool = True) -> tuple[list[Piece], list[list[str]]]:
        """The last ``n`` retained rows, oldest first, as pieces (the open chunk's part copied
        alone, O(n)), and the category values."""
        pieces: list[Piece] = []
        need = n
        op = self.open
        if need and op.n:
            take = min(need, op.n)
            snap = op.tail_view(take, text=text)
            pieces.append((snap, slice(0, take)))
            need -= take
        for i in range(len(self.frozen) - 1, -1, -1):
            if not need:
                break
            chunk = self.frozen[i]
            start = self.head if i == 0 else 0
            take = min(need, chunk.n - start)
            pieces.append((chunk, slice(chunk.n - take, chunk.n)))
            need -= take
        values = [list(c.values) for c in self.cats]
        pieces.reverse()
        return pieces, values

    def chunks(self) -> list[tuple[Chunk, int]]:
        """Every frozen chunk with its first retained row (the open chunk is not included)."""
        return [(c, self.head if i == 0 else 0) for i, c in enumerate(self.frozen)]

    def memory_bytes(self) -> int:
        """An estimate of the bytes held (payload text, columns, strings)."""
        mem = sum(c.nbytes() for c in self.frozen)
        op = self.open
        # Open rows are list items: ~8 bytes per reference plus a boxed int/float each.
        mem += op.used + op.n * (8 * 4 + 8 * len(CAT_COLUMNS) + 8 * 3 + 32 * 5)
        return mem


def _has_update_mark(event: Event) -> bool:
    return UPDATE_MARKS[0] in event or UPDATE_MARKS[1] in event
