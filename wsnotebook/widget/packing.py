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
bytes slice per row without a summary (at most :data:`PREFIX_BYTES`, whatever the payload
sizes), one encode per row with a summary, and one join (C level).
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
#: entry per row: :func:`row_text`) and ``text_off`` (uint32, n + 1 offsets into it).
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
    """Stable codes for the values of one category column, as the browser knows them."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.values)

    def remap(self, codes: np.ndarray, frame_values: list[str]) -> tuple[np.ndarray, list[str]]:
        """``codes`` (the frame's, indexing ``frame_values``; -1 absent) as stable codes, and
        the values new to this map (appended to the browser's dictionary in order).
        O(rows + distinct codes)."""
        lut = np.full(len(frame_values) + 1, -1, dtype=np.int32)  # lut[-1]: absent stays -1
        new: list[str] = []
        if len(codes):
            for c in np.unique(codes).tolist():
                if c < 0 or c >= len(frame_values):
                    continue
                value = frame_values[c]
                k = self._index.get(value)
                if k is None:
                    k = self._index[value] = len(self.values)
                    self.values.append(value)
                    new.append(value)
                lut[c] = k
        return lut[codes], new

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


def row_text(summary: list[Any], tail: Any, limit: int = HEAD_BYTES) -> tuple[bytes, bytes]:
    """The ``text`` and ``text_off`` buffers of a batch of rows (``tail``: a
    :class:`~wsnotebook.frame.tail.TailColumns`; ``summary``: its rows' summaries): one UTF-8
    entry per row, concatenated, and ``n + 1`` uint32 offsets.  A row with a summary:
    :data:`SUMMARY_MARK` then the summary's first ``limit`` characters.  Any other row: the
    first :data:`PREFIX_BYTES` bytes of its payload JSON, raw (the browser strips the
    boilerplate keys and cuts it to ``limit`` characters).  Cost: one slice per payload head,
    one encode per summary, one join and a length pass (C level): no per-row regex."""
    n = len(summary)
    if not any(summary):  # no summary at all (hooks without --summarize)
        parts = tail.payload_heads(PREFIX_BYTES)
    else:
        has = np.fromiter(map(bool, summary), dtype=bool, count=n)
        heads = iter(tail.payload_heads(PREFIX_BYTES, ~has))
        mark = SUMMARY_MARK
        parts = [
            mark + str(s)[:limit].encode("utf-8", "replace") if s else next(heads) for s in summary
        ]
    offsets = np.zeros(n + 1, dtype="<u4")
    if n:
        np.cumsum(np.fromiter(map(len, parts), dtype=np.int64, count=n), out=offsets[1:])
    return b"".join(parts), offsets.tobytes()


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
    buffers += row_text(tail.summary, tail)
    names = [name for name, _ in COLUMNS] + ["text", "text_off"]
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
