"""Tail columns: the newest rows of a frame as raw column arrays for a live view (the monitor
sends them to the browser as binary buffers): no DataFrame, no Timestamp objects, no payload
decoding.

Pure: reads pieces (immutable chunks, or private copies of the open chunk's tail) outside the
frame's lock.  Cost: O(rows asked) numpy copies.  Payload text is handed over on demand, either
whole (:attr:`TailColumns.payload_json`: one split of the rows' text) or as each row's first
``k`` bytes (:meth:`TailColumns.payload_head_runs`: one slice per run of adjacent rows, never a
copy of a whole large payload); a frozen chunk that holds some of the rows is decompressed once
per call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .chunks import CAT_COLUMNS, NSEP, SEP, Piece, concat, object_column

__all__ = ["TailColumns", "drop_last", "payload_head_runs", "payload_texts"]


def drop_last(pieces: list[Piece], k: int) -> list[Piece]:
    """``pieces`` (slices, oldest first) without their last ``k`` rows."""
    out = list(pieces)
    while k > 0 and out:
        chunk, sl = out.pop()
        assert isinstance(sl, slice)  # tail pieces are slices
        a, b, _ = sl.indices(chunk.n)
        take = min(k, b - a)
        k -= take
        if b - take > a:
            out.append((chunk, slice(a, b - take)))
    return out


def payload_texts(pieces: list[Piece]) -> list[bytes]:
    """Each row's payload JSON text (compact, not decoded), oldest first."""
    out: list[bytes] = []
    for chunk, sl in pieces:
        if isinstance(sl, slice):
            a, b, _ = sl.indices(chunk.n)
            if b > a:
                out.extend(chunk.text()[chunk.off[a] : chunk.off[b] - NSEP].split(SEP))
        elif len(sl):
            text = chunk.text()
            out.extend(chunk.row_text(text, i) for i in sl.tolist())
    return out


def payload_head_runs(
    pieces: list[Piece], k: int, rows: np.ndarray | None = None
) -> tuple[list[memoryview], np.ndarray, np.ndarray]:
    """The first ``k`` bytes of each row's payload JSON text (the whole text when shorter; rows
    selected by the bool mask ``rows``), oldest first, as ``(parts, start, length)``: row
    ``i``'s head is ``b"".join(parts)[start[i] : start[i] + length[i]]`` (``parts``: views of
    the chunks' text; ``start``/``length``: int64 arrays; a head may end inside a multi-byte
    character).

    Rows next to each other in a chunk whose heads are not cut are copied together, with the
    separator between them (``NSEP`` bytes the offsets skip): one view per run of rows, not
    per row (hook payloads: ~3 % are longer than a 648-byte head, so a run holds tens of
    rows).  Offsets and runs are computed in numpy; no whole payload is copied."""
    parts: list[memoryview] = []
    out_start: list[np.ndarray] = []
    out_len: list[np.ndarray] = []
    base = size = 0  # rows of ``rows`` passed; bytes in ``parts``
    for chunk, sl in pieces:
        if isinstance(sl, slice):
            a, b, _ = sl.indices(chunk.n)
            m = max(0, b - a)
            off = chunk.off[a : a + m + 1].astype(np.int64)  # uint32 in frozen chunks
            starts, nexts = off[:-1], off[1:]
        else:
            m = len(sl)
            starts = chunk.off[sl].astype(np.int64)
            nexts = chunk.off[sl + 1].astype(np.int64)
        if not m:
            continue
        lens = np.minimum(nexts - NSEP - starts, k)
        if rows is not None:
            keep = rows[base : base + m]
            starts, lens = starts[keep], lens[keep]
        base += m
        if not len(starts):
            continue
        ends = starts + lens
        # a row joins the previous row's run when that one was not cut and is the row just
        # before it in the chunk (nothing masked out between them)
        new = np.ones(len(starts), dtype=bool)
        new[1:] = ends[:-1] + NSEP != starts[1:]
        first = np.flatnonzero(new)
        run_start = starts[first]
        run_end = ends[np.append(first[1:] - 1, len(starts) - 1)]
        run_out = np.cumsum(run_end - run_start) + size
        run_out -= run_end - run_start  # where each run starts in the output
        run = np.cumsum(new) - 1
        out_start.append(run_out[run] + (starts - run_start[run]))
        out_len.append(lens)
        size = int(run_out[-1] + run_end[-1] - run_start[-1])
        # views, not bytes slices: a bytes slice of a run (~1 kB) is a malloc and a copy
        # that the caller's join copies again (a tick at 5k ev/s: ~0.1 us/row less, A/B)
        buf, at = chunk.text_from(int(run_start.min()))
        view = memoryview(buf)
        parts += [view[x - at : y - at] for x, y in zip(run_start.tolist(), run_end.tolist())]
    return parts, concat(out_start, np.int64), concat(out_len, np.int64)


class TailColumns:
    """Rows of some pieces as numpy columns (``EventFrame.tail_columns``).

    Attributes: ``id`` int64; ``timestamp``, ``server_received``, ``client_received`` float64
    epoch ms (NaN when absent); ``codes``: ``{column: int32 codes}`` for ``source_app``,
    ``session_id``, ``hook_event_type``, ``model_name`` (-1: absent) indexing ``values[column]``
    (the frame's dictionary when the rows were taken); ``summary`` (list of ``str``/``None``);
    ``payload_json`` (list of ``bytes``, only when asked for: built on first access) and
    :meth:`payload_heads` / :meth:`payload_head_runs` (each row's first bytes only).  With
    ``payload=True`` the object holds its pieces (the rows' chunks, their text) until dropped."""

    def __init__(self, pieces: list[Piece], values: list[list[str]], *, payload: bool) -> None:
        self.id = concat([c.ids[sl] for c, sl in pieces], np.int64)
        self.timestamp = concat([c.ts[sl] for c, sl in pieces], np.float64)
        self.server_received = concat([c.sr[sl] for c, sl in pieces], np.float64)
        self.client_received = concat([c.cr[sl] for c, sl in pieces], np.float64)
        self.codes: dict[str, np.ndarray] = {
            name: concat([c.cats[j][sl] for c, sl in pieces], np.int32)
            for j, name in enumerate(CAT_COLUMNS)
        }
        self.values: dict[str, list[str]] = dict(zip(CAT_COLUMNS, values))
        self.summary: list[Any] = object_column(pieces, "summary", len(self.id))
        self._pieces = pieces if payload else None
        self._payload_json: list[bytes] | None = None
        #: the frame's counters when the rows were taken (set by ``tail_columns``)
        self.total = self.retained = self.dropped = 0

    def __len__(self) -> int:
        return len(self.id)

    @property
    def payload_json(self) -> list[bytes] | None:
        """Each row's whole payload JSON text (``None`` when taken with ``payload=False``);
        split out of the chunks' text on first access (O(payload bytes))."""
        if self._payload_json is None and self._pieces is not None:
            self._payload_json = payload_texts(self._pieces)
        return self._payload_json

    def payload_heads(self, k: int, rows: np.ndarray | None = None) -> list[bytes]:
        """Each row's first ``k`` bytes of payload JSON text (all rows, or those where the bool
        mask ``rows`` is true), one ``bytes`` each; empty ones when taken with
        ``payload=False``.  O(rows), at most ``k`` bytes copied per row."""
        parts, start, length = self.payload_head_runs(k, rows)
        blob = b"".join(parts)
        return [blob[x : x + n] for x, n in zip(start.tolist(), length.tolist())]

    def payload_head_runs(
        self, k: int, rows: np.ndarray | None = None
    ) -> tuple[list[memoryview], np.ndarray, np.ndarray]:
        """The heads of :meth:`payload_heads` as ``(parts, start, length)``, copied in runs of
        adjacent rows (see :func:`payload_head_runs`): what the monitor sends."""
        if self._pieces is None:
            count = len(self) if rows is None else int(np.count_nonzero(rows))
            return [], np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
        return payload_head_runs(self._pieces, k, rows)
