"""Tail columns: the newest rows of a frame as raw column arrays for a live view (the monitor
sends them to the browser as binary buffers): no DataFrame, no Timestamp objects, no payload
decoding.

Pure: reads pieces (immutable chunks, or private copies of the open chunk's tail) outside the
frame's lock.  Cost: O(rows asked) numpy copies, plus one split of the rows' payload text (a
frozen chunk that holds some of them is decompressed once).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .chunks import CAT_COLUMNS, NSEP, SEP, Piece, concat, object_column

__all__ = ["TailColumns", "drop_last", "payload_texts"]


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


class TailColumns:
    """Rows of some pieces as numpy columns (``EventFrame.tail_columns``).

    Attributes: ``id`` int64; ``timestamp``, ``server_received``, ``client_received`` float64
    epoch ms (NaN when absent); ``codes``: ``{column: int32 codes}`` for ``source_app``,
    ``session_id``, ``hook_event_type``, ``model_name`` (-1: absent) indexing ``values[column]``
    (the frame's dictionary when the rows were taken); ``summary`` (list of ``str``/``None``);
    ``payload_json`` (list of ``bytes``, only when asked for)."""

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
        self.payload_json: list[bytes] | None = payload_texts(pieces) if payload else None
        #: the frame's counters when the rows were taken (set by ``tail_columns``)
        self.total = self.retained = self.dropped = 0

    def __len__(self) -> int:
        return len(self.id)
