"""Cell previews: the one-line text the table shows for an event's summary or payload.

Owns the payload preview rules: the summary when there is one, else the compact payload JSON
without the keys every agent hook repeats (``BOILERPLATE_KEYS``), cut at ``MAX_CELL_CHARS``
characters (a cut cell ends with "…").  Pure functions, no widgets, no I/O.

Bounds: :func:`preview_json` reads at most ``4 * (MAX_CELL_CHARS + 2)`` bytes of the kept
values and walks at most ``MAX_SKIP_TOKENS`` tokens of a skipped one, whatever the payload's
size; past either bound it gives up (returns ``None``) and the caller decodes the text instead.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "BOILERPLATE_KEYS",
    "MAX_CELL_CHARS",
    "MAX_SKIP_TOKENS",
    "PREVIEW_SCAN_BYTES",
    "preview",
    "preview_json",
]

#: Longest text shown in the table's ``summary / payload`` column (longer text ends with "…").
MAX_CELL_CHARS = 160
#: Payload JSON text from this size on is previewed by scanning only its first few hundred
#: bytes (:func:`preview_json`) instead of decoding it whole.
PREVIEW_SCAN_BYTES = 16_384
#: Payload keys every agent hook repeats; left out of the table's payload preview.
BOILERPLATE_KEYS = frozenset(
    {"session_id", "transcript_path", "cwd", "hook_event_name", "permission_mode"}
)


def preview(summary: Any, payload: Any) -> str:
    """The cell text for a row: its summary, else its (decoded) payload as compact JSON
    without the boilerplate keys; cut at ``MAX_CELL_CHARS``."""
    if isinstance(summary, str) and summary:
        text = summary
    elif payload is None or (isinstance(payload, float) and math.isnan(payload)):
        text = ""
    else:
        if isinstance(payload, dict) and BOILERPLATE_KEYS.intersection(payload):
            payload = {k: v for k, v in payload.items() if k not in BOILERPLATE_KEYS}
        try:
            from ..events import encode_json

            text = encode_json(payload).decode()
        except Exception:
            text = str(payload)
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return text


#: One JSON token of compact text: a string (escapes included), a bracket, a separator, or a run of
#: scalar characters (number, true/false/null).  Matched with ``endpos`` so a long string is never
#: scanned past what the preview needs.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{},:]|[^"\[\]{},:\s]+')
_BOILERPLATE_RAW = frozenset(b'"' + k.encode() + b'"' for k in BOILERPLATE_KEYS)
#: Tokens the scanner walks through one value before it gives up (a boilerplate key holding a
#: 100k-element array took 187 ms to skip token by token, 7.7 ms to decode).
MAX_SKIP_TOKENS = 256


def preview_json(text: bytes) -> str | None:
    """:func:`preview` of a payload given as its compact JSON text (an object), reading only
    as much of the text as the cut cell needs: the monitor's table never decodes a whole
    payload (a 0.9 MB tool output cost ~1.2 ms to decode and re-encode per row and tick).
    Cost: ~20-40 us whatever the size (used from ``PREVIEW_SCAN_BYTES`` on).

    Returns the same string as ``preview(None, orjson.loads(text))`` for orjson's compact JSON
    (what our server and the dict path store; other writers' escapes or number spellings show
    as written), or ``None`` when the text is not a compact object this scanner reads or a
    value it would skip is huge (the caller then decodes it)."""
    n = len(text)
    if n < 2 or text[0] != 0x7B:  # "{"
        return None
    # Bytes enough for MAX_CELL_CHARS + 1 characters even if a cut splits the last one.
    budget = 4 * (MAX_CELL_CHARS + 2)
    kept: list[bytes] = []
    size = 1  # the opening brace
    i = 1
    match = _TOKEN.match
    while text[i : i + 1] != b"}":
        key = match(text, i)
        if key is None or key.group()[:1] != b'"' or text[key.end() : key.end() + 1] != b":":
            return None
        start, pos = i, key.end() + 1
        boiler = key.group() in _BOILERPLATE_RAW
        end = n if boiler else start + budget - size
        depth = 0
        tokens = 0
        while True:  # the value, token by token, never reading past ``end``
            tok = match(text, pos, end)
            # No token: a string running past the cell (cut it there) or text this scanner
            # does not read (whitespace, say: the caller decodes instead).
            long_string = tok is None and text[pos : pos + 1] == b'"'
            full = pos >= end or long_string or (tok is not None and tok.end() >= end)
            if not boiler and full:
                kept.append(text[start:end])  # the cell is full
                return _cut(b"{" + b",".join(kept))
            tokens += 1
            if tok is None or tokens > MAX_SKIP_TOKENS:  # a huge skipped value: decode instead
                return None
            first = tok.group()[:1]
            if first in (b"{", b"["):
                depth += 1
            elif first in (b"}", b"]"):
                depth -= 1
            elif depth == 0 and first in (b",", b":"):
                return None
            pos = tok.end()
            if depth <= 0:
                break
        if depth < 0:
            return None
        if not boiler:
            kept.append(text[start:pos])
            size += pos - start + 1
        sep = text[pos : pos + 1]
        if sep == b"}":
            break
        if sep != b",":
            return None
        i = pos + 1
    return _cut(b"{" + b",".join(kept) + b"}")


def _cut(raw: bytes) -> str:
    text = raw.decode("utf-8", "ignore")  # a cut may split the last character: dropped
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return text
