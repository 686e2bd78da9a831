"""Binary packing of the monitor's row batches: the new rows of a tick as compact column
buffers the browser reads with ``DataView`` (no JSON per row).

Owns the wire layout of a batch (:data:`COLUMNS`: name, dtype, little-endian, then ``text``:
see :func:`row_text`), the stable category codes (:class:`CodeMap`: the frame may renumber its
dictionaries when it compacts them; the codes the browser holds never change until a reset),
the text each row is sent with (:func:`row_text`: its summary, else the raw head of its payload
JSON; the browser strips the keys every hook repeats and cuts it, ``monitor.js`` ``rowHead``),
the same text computed in Python (:func:`row_heads`: the reference the browser's strip is
tested against) and the throughput histogram sent with a reset (:func:`histogram`).

Pure functions and small classes: no widgets, no I/O.  Cost per batch: O(rows) numpy work, one
view per run of adjacent rows without a summary (at most :data:`PREFIX_BYTES` bytes a row,
whatever the payload sizes), one join and one encode of the summaries, one join of the text (C
level); no per-row Python for a row without a summary.
"""

from __future__ import annotations

import re
import sys
from typing import Any

import numpy as np

__all__ = [
    "CATEGORY_COLUMNS",
    "COLUMNS",
    "HEAD_BYTES",
    "PREFIX_BYTES",
    "SUMMARY_MARK",
    "CodeMap",
    "histogram",
    "pack_rows",
    "row_heads",
    "row_text",
]

#: Length of a row's text as the table shows it (the "summary / payload" cell; the whole
#: payload comes on demand, in the detail pane): characters in the browser (``monitor.js``
#: ``HEAD_CHARS``), bytes in :func:`row_heads`.
HEAD_BYTES = 200
#: Bytes of a payload's head sent for a row without a summary: the boilerplate keys the browser
#: strips are ~200-250 bytes in hooks' payloads, and :data:`HEAD_BYTES` must remain after them
#: (the same bound as the strip of :func:`row_heads`).
PREFIX_BYTES = HEAD_BYTES + 448
#: First byte of a row's entry in ``text`` when the entry is the row's summary (a payload is
#: a JSON object: its text starts with ``{`` or whitespace, never with a control character).
SUMMARY_MARK = b"\x01"
#: Category columns sent as int32 codes, with the short names the browser uses.
CATEGORY_COLUMNS = (("source_app", "app"), ("session_id", "session"), ("hook_event_type", "type"))
#: The numeric buffers of a batch, in order: (name, numpy dtype).  Then ``text`` (UTF-8, one
#: entry per row: :func:`row_text`), ``text_pos`` and ``text_len`` (uint32, n each: where each
#: row's entry is in ``text``).
COLUMNS = (
    ("id", "<f8"),
    ("ts", "<f8"),
    ("lat", "<f4"),
    ("app", "<i4"),
    ("session", "<i4"),
    ("type", "<i4"),
)

# The boilerplate keys a row starts with (hooks write them first): matched only right after a
# row separator, so the regex engine skips to each "\n{" instead of trying every byte.  The
# browser's strip (monitor.js ``BOILERPLATE``) is the same pattern anchored at the row's start
# (greedy repeats: nothing follows the group, so they never backtrack and match the same).
# Possessive repeats (Python 3.11+; same matches): a value is never backtracked into, and the
# engine keeps no backtracking state (measured in benchmarks/README.md, "The monitor").
_P = b"+" if sys.version_info >= (3, 11) else b""
_BOILERPLATE = re.compile(
    rb'\n\{(?:"(?:session_id|transcript_path|cwd|hook_event_name|permission_mode)"'
    rb':(?:"[^"\\\n]*%b(?:\\.[^"\\\n]*%b)*%b"|[^,}\n]*%b),?)+%b' % (_P, _P, _P, _P, _P)
)


class CodeMap:
    """Stable codes for the values of one category column, as the browser knows them.

    Keeps a frame-code -> stable-code table between calls: a tick costs one numpy take plus
    work for the codes it has not seen (a ``np.unique`` of every tick's codes was ~40 us a
    column; a check of the frame's whole dictionary, up to ~130k session ids, more).  The
    table is dropped when the frame renumbered its dictionary: a compaction removes values and
    keeps the order of the others (:mod:`wsnotebook.frame.categories`), so a value before
    index ``m`` gone puts another string object at index ``m - 1`` (``m``: the dictionary's
    length at the last call; its values are distinct objects)."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}
        self._known = 0  # frame codes below this are in the table (-1: not seen yet)
        self._last: Any = None  # the frame's value at ``_known - 1`` when last called
        # frame code -> stable code; its last slot stays -1 (frame code -1: absent)
        self._lut = np.full(1, -1, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.values)

    def remap(self, codes: np.ndarray, frame_values: list[str]) -> tuple[np.ndarray, list[str]]:
        """``codes`` (the frame's, indexing ``frame_values``; -1 absent) as stable codes, and
        the values new to this map (appended to the browser's dictionary in order).
        O(rows + codes not seen before), amortized."""
        k, m = len(frame_values), self._known
        if m and (k < m or frame_values[m - 1] is not self._last):  # renumbered
            self._lut[:m] = -1
        if k >= len(self._lut):  # grow by doubling, the last slot still -1
            lut = np.full(2 * k + 1, -1, dtype=np.int32)
            lut[:m] = self._lut[:m]
            self._lut = lut
        self._known, self._last = k, frame_values[k - 1] if k else None
        out = self._lut[codes]
        new: list[str] = []
        unseen = (out < 0) & (codes >= 0)
        if unseen.any():
            for c in np.unique(codes[unseen]).tolist():
                if c >= k:
                    continue
                value = frame_values[c]
                stable = self._index.get(value)
                if stable is None:
                    stable = self._index[value] = len(self.values)
                    self.values.append(value)
                    new.append(value)
                self._lut[c] = stable
            out = self._lut[codes]
        return out, new

    def code(self, value: str) -> int:
        return self._index.get(value, -1)


def _stripped(payloads: list[bytes], cut: int) -> list[bytes]:
    """Each payload's first ``cut`` bytes without its leading boilerplate keys."""
    # Compact JSON holds no raw newline: join, strip every row at once (C level), split back.
    joined = b"\n" + b"\n".join([p[:cut] for p in payloads])
    return _BOILERPLATE.sub(b"\n{", joined).split(b"\n")[1:]


def row_heads(
    summary: list[Any], payloads: list[bytes] | None, limit: int = HEAD_BYTES
) -> list[bytes]:
    """Each row's table text as UTF-8: its summary, else the head of its compact payload JSON
    without the boilerplate keys; at most ``limit`` bytes (a cut may split the last character).
    The tick no longer calls this (the browser strips, from :func:`row_text`'s raw heads: ~1.1
    us/row of regex work out of the kernel); it is the Python statement of what the browser
    shows, which the tests compare ``monitor.js`` ``rowHead`` with."""
    # Hooks put the boilerplate keys first (~250 bytes): strip them from each row's start, in
    # its first ``limit + 448`` bytes only (bounded work per row whatever the payload).
    cut = limit + 448
    heads = [
        s.encode("utf-8", "replace")[:limit] if isinstance(s, str) and s else b"" for s in summary
    ]
    if payloads is None:
        return heads
    todo = [i for i, h in enumerate(heads) if not h]  # a summary's text is never empty
    if len(todo) == len(heads):  # no summary at all (hooks without --summarize)
        return [r[:limit] for r in _stripped(payloads, cut)]
    for i, r in zip(todo, _stripped([payloads[i] for i in todo], cut)):
        heads[i] = r[:limit]
    return heads


def _summary_entries(sums: list[str], limit: int) -> tuple[bytes, np.ndarray]:
    """The summaries' entries, each :data:`SUMMARY_MARK` + its first ``limit`` characters,
    joined and encoded at once, and each entry's length in bytes."""
    if max(map(len, sums)) > limit:
        sums = [x[:limit] for x in sums]
    mark = SUMMARY_MARK.decode()
    text = (mark + mark.join(sums)).encode("utf-8", "replace")
    if len(text) == len(sums) + sum(map(len, sums)):  # ASCII: characters are bytes
        lengths = np.fromiter(map(len, sums), dtype=np.int64, count=len(sums))
    else:
        lengths = np.array([len(x.encode("utf-8", "replace")) for x in sums], dtype=np.int64)
    return text, lengths + 1


def row_text(
    summary: list[Any], tail: Any, limit: int = HEAD_BYTES
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The ``text`` buffer of a batch of rows (``tail``: a :class:`~wsnotebook.frame.tail.
    TailColumns`; ``summary``: its rows' summaries) and each row's ``(start, length)`` in it
    (int64 arrays).  A row with a summary: :data:`SUMMARY_MARK` then the summary's first
    ``limit`` characters (UTF-8).  Any other row: the first :data:`PREFIX_BYTES` bytes of its
    payload JSON, raw (the browser strips the boilerplate keys and cuts it to ``limit``
    characters).  Bytes between entries (the frame's row separators, copied with a run of
    payload heads) belong to no row.

    Cost: numpy over the rows, one bytes slice per run of adjacent payload heads
    (:meth:`~wsnotebook.frame.tail.TailColumns.payload_head_runs`), one join and one encode of
    the summaries (a per-summary encode only when one is not ASCII): no per-row regex and no
    per-row Python for a row without a summary."""
    n = len(summary)
    if not any(summary):  # no summary at all (hooks without --summarize)
        parts, start, length = tail.payload_head_runs(PREFIX_BYTES)
        return b"".join(parts), start, length
    has = np.fromiter(map(bool, summary), dtype=bool, count=n)
    parts, h_start, h_len = tail.payload_head_runs(PREFIX_BYTES, ~has)
    sums: list[Any] = list(filter(None, summary))
    try:
        text, s_len = _summary_entries(sums, limit)
    except TypeError:  # a summary that is not a str (a frame fed from elsewhere): as text
        text, s_len = _summary_entries([str(x) for x in sums], limit)
    start = np.empty(n, dtype=np.int64)
    length = np.empty(n, dtype=np.int64)
    start[~has], length[~has] = h_start, h_len
    start[has] = np.cumsum(s_len) - s_len + sum(map(len, parts))
    length[has] = s_len
    return b"".join([*parts, text]), start, length


def pack_rows(
    tail: Any, maps: dict[str, CodeMap], match: np.ndarray | None = None
) -> tuple[dict[str, Any], list[bytes]]:
    """(header, buffers) of a batch of rows (a :class:`~wsnotebook.frame.tail.TailColumns`):
    the header names the buffers and carries the dictionary values new to ``maps``."""
    n = len(tail)
    lat = tail.client_received - tail.timestamp
    cols: dict[str, np.ndarray] = {
        "id": tail.id.astype("<f8"),
        "ts": tail.timestamp.astype("<f8"),
        "lat": lat.astype("<f4"),
    }
    dicts: dict[str, list[str]] = {}
    for column, short in CATEGORY_COLUMNS:
        codes, new = maps[short].remap(tail.codes[column], tail.values[column])
        cols[short] = codes.astype("<i4")
        if new:
            dicts[short] = new
    buffers = [cols[name].tobytes() for name, _ in COLUMNS]
    text, start, length = row_text(tail.summary, tail)
    buffers += [text, start.astype("<u4").tobytes(), length.astype("<u4").tobytes()]
    names = [name for name, _ in COLUMNS] + ["text", "text_pos", "text_len"]
    header: dict[str, Any] = {"n": n, "buffers": names, "dicts": dicts}
    if match is not None:
        buffers.append(np.asarray(match, dtype="<f8").tobytes())
        names.append("match")
    return header, buffers


def histogram(ts: np.ndarray, types: np.ndarray) -> tuple[dict[str, Any], list[bytes]]:
    """Events per (second, type code) of some rows: the chart's history sent with a reset
    (rows older than the browser's window still count in the chart).  Rows without a
    timestamp are left out."""
    ok = np.isfinite(ts)
    sec = np.floor(ts[ok] / 1000.0).astype(np.int64)
    typ = types[ok].astype(np.int64)
    if len(sec):
        key = (sec - sec.min()) * 65536 + (typ + 1)
        uniq, counts = np.unique(key, return_counts=True)
        secs = (uniq // 65536 + sec.min()).astype("<f8")
        codes = (uniq % 65536 - 1).astype("<i4")
    else:
        secs, codes, counts = np.empty(0, "<f8"), np.empty(0, "<i4"), np.empty(0, np.int64)
    header = {"n": len(secs), "buffers": ["sec", "type", "count"]}
    return header, [secs.tobytes(), codes.tobytes(), counts.astype("<u4").tobytes()]
