"""Tail columns: the newest rows of a frame as raw column arrays for a live view (the monitor
sends them to the browser as binary buffers): no DataFrame, no Timestamp objects, no payload
decoding.

Pure: reads pieces (immutable chunks, or private copies of the open chunk's tail) outside the
frame's lock.  Cost: O(rows asked) numpy copies.  Payload text is handed over on demand, either
whole (:attr:`TailColumns.payload_json`: one split of the rows' text) or as each row's first
``k`` bytes (:meth:`TailColumns.payload_heads`: one slice per row, never a copy of a whole large
payload); a frozen chunk that holds some of the rows is decompressed once per call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .chunks import CAT_COLUMNS, NSEP, SEP, Piece, concat, object_column

__all__ = ["TailColumns", "drop_last", "payload_heads", "payload_texts"]


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


def payload_heads(pieces: list[Piece], k: int, rows: np.ndarray | None = None) -> list[bytes]:
    """Each row's first ``k`` bytes of payload JSON text (the whole text when shorter), oldest
    first; ``rows`` (a bool mask over the pieces' rows): only those rows.  One bytes slice per
    row (a head may end inside a multi-byte character); offsets computed in numpy."""
    out: list[bytes] = []
    base = 0
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
        ends = np.minimum(starts + k, nexts - NSEP)
        if rows is not None:
            keep = rows[base : base + m]
            starts, ends = starts[keep], ends[keep]
        base += m
        if len(starts):
            text = chunk.text()
            out += [text[s:e] for s, e in zip(starts.tolist(), ends.tolist())]
    return out


class TailColumns:
    """Rows of some pieces as numpy columns (``EventFrame.tail_columns``).

    Attributes: ``id`` int64; ``timestamp``, ``server_received``, ``client_received`` float64
    epoch ms (NaN when absent); ``codes``: ``{column: int32 codes}`` for ``source_app``,
    ``session_id``, ``hook_event_type``, ``model_name`` (-1: absent) indexing ``values[column]``
    (the frame's dictionary when the rows were taken); ``summary`` (list of ``str``/``None``);
    ``payload_json`` (list of ``bytes``, only when asked for: built on first access) and
    :meth:`payload_heads` (each row's first bytes only)."""

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
        mask ``rows`` is true); empty ones when taken with ``payload=False``.  O(rows), at
        most ``k`` bytes copied per row (see :func:`payload_heads`)."""
        if self._pieces is None:
            return [b""] * (len(self) if rows is None else int(np.count_nonzero(rows)))
        return payload_heads(self._pieces, k, rows)
