"""Search: which rows of some chunks match ``filter``'s conditions (category codes, a regular
expression over ``summary`` and the payload JSON text, a newest-``limit`` bound).

Pure: reads chunks (immutable, or private copies of the open chunk), runs outside the frame's
lock.  Exactness invariant: a row matches exactly when ``pattern.search`` matches its summary or
its payload text searched alone; the one-pass scan of a chunk's joined text (much faster when
most rows are candidates) only proposes candidates, each confirmed on its row alone, and is
not used for patterns that could see across rows (:data:`CROSS_ROW`).  Bounds: with ``limit``,
chunks are scanned newest first and the scan stops after ``limit`` matches; with ``scan``, only
the newest ``scan`` rows are looked at.
"""

from __future__ import annotations

import re

import numpy as np

from .chunks import NSEP, Chunk, Piece

__all__ = ["CROSS_ROW", "blob_pattern", "search_rows", "select_rows"]


def select_rows(
    chunks: list[tuple[Chunk, int]],
    code_sets: list[np.ndarray | None],
    pattern: re.Pattern[str] | None,
    limit: int | None,
    scan: int | None,
) -> list[Piece]:
    """The matching rows of ``chunks`` (each with its first retained row), oldest first, as
    pieces: rows whose category codes are in ``code_sets`` (``None``: any) and whose texts
    match ``pattern``; the newest ``limit`` of them; among the newest ``scan`` rows."""
    one_pass = blob_pattern(pattern) if pattern is not None else None
    pieces: list[Piece] = []
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
            rows = search_rows(chunk, start, rows, pattern, one_pass)
        if remaining is not None:
            rows = rows[max(0, len(rows) - remaining) :]
            remaining -= len(rows)
        if len(rows):
            pieces.append((chunk, rows))
    pieces.reverse()
    return pieces


#: Pattern text that can make a search of a chunk's joined text disagree with a search of
#: each row alone: ``\A``/``\Z``/``\z`` (the joined text has one start and one end),
#: lookahead/lookbehind (they see the neighbouring rows), atomic groups and possessive
#: quantifiers (they may consume past the row end and then refuse to give it back).  A false
#: alarm (e.g. an escaped ``\\A``) only costs the per-row scan.
CROSS_ROW = re.compile(r"\\[AZz]|\(\?<?[=!]|\(\?>|[*+?}]\+")


def blob_pattern(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    """The pattern for one regex pass over a chunk's joined payload text, or ``None`` when
    rows must be searched one by one.

    The joined text is the rows separated by ``"\\n,\\n"`` (payload JSON has no raw
    newline), searched with ``MULTILINE``: ``^``/``$`` then match at row edges as on a row
    alone, ``\\b``/``\\B`` see a non-word separator as they see a row's edge, and any other
    construct only reads characters its match consumes, so every row that matches alone has a
    match of the joined text starting inside it (candidates are confirmed on the row alone).
    Constructs in :data:`CROSS_ROW` break that and take the per-row scan."""
    if CROSS_ROW.search(pattern.pattern):
        return None
    return re.compile(pattern.pattern, pattern.flags | re.MULTILINE)


def search_rows(
    chunk: Chunk,
    start: int,
    rows: np.ndarray,
    pattern: re.Pattern[str],
    blob_pattern: re.Pattern[str] | None,
) -> np.ndarray:
    """The subset of ``rows`` whose summary or payload text matches ``pattern`` (exact: as
    when each row is searched alone).  ``blob_pattern`` (see :func:`blob_pattern`; ``None``:
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
            row_end = int(off[r + 1]) - NSEP
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
