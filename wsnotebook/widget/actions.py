"""What the monitor does when the browser asks: an event's detail (whole payload, chat
transcript) and an export of the current filter (CSV or Parquet, written by the kernel).

Pure functions of a frame and the request: they never raise for a bad request; a message for
the widget is returned instead (a :class:`~wsnotebook.errors.WsnError` subclass,
:class:`ExportError`, carries the reason).  No widgets, no threads (the view runs them off the
comm thread).
"""

from __future__ import annotations

import bisect
import math
import re
from pathlib import Path
from typing import Any

import orjson

from ..errors import WsnError

__all__ = ["ExportError", "detail", "export", "selection"]

_FORMATS = {"csv": ".csv", "parquet": ".parquet"}
_BUTTONS = {"csv": "CSV", "parquet": "Parquet"}  # the widget's export buttons


class ExportError(WsnError):
    """An export the widget asked for cannot be written (message shown in the widget)."""


def _plain(value: Any) -> Any:
    """A JSON-ready version of a row value (timestamps as ISO text, NaN/NaT as None)."""
    if value is None:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "isoformat"):
        try:
            return None if value != value else value.isoformat()
        except Exception:
            return str(value)
    if isinstance(value, (str, int, bool, list, dict)):
        return value
    return str(value)


#: Most search hits marked in one detail pane (the payload's and the summary's each).
MAX_HITS = 100
#: Longest compact payload text whose hits are mapped onto the pretty-printed text (a walk of
#: both texts in Python, <= ~50 ms, off the comm thread); a longer one is searched pretty.
MAP_CHARS = 1 << 18


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """The first :data:`MAX_HITS` non-empty matches of ``pattern`` in ``text``."""
    out: list[tuple[int, int]] = []
    for m in pattern.finditer(text):
        if m.end() > m.start():
            out.append(m.span())
            if len(out) >= MAX_HITS:
                break
    return out


def _to_pretty(compact: str, pretty: str, spans: list[tuple[int, int]]) -> list[list[int]] | None:
    """``spans`` of ``compact`` (orjson's compact text) as offsets in ``pretty`` (the same value
    with ``OPT_INDENT_2``), or ``None`` when the texts are not the same JSON.  The indented
    text only adds spaces and newlines between tokens; a token never starts with whitespace and
    inside a string both texts are equal, so skipping the whitespace ``compact`` lacks aligns
    each character of ``compact`` with its own in ``pretty``."""
    wanted = {k for a, b in spans for k in (a, b - 1)}
    where: dict[int, int] = {}  # only the offsets asked for
    j, n = 0, len(pretty)
    for i in range(max(wanted) + 1 if wanted else 0):
        c = compact[i]
        while j < n and pretty[j] != c and pretty[j] in " \n":
            j += 1
        if j >= n or pretty[j] != c:
            return None
        if i in wanted:
            where[i] = j
        j += 1
    return [[where[a], where[b - 1] + 1] for a, b in spans]


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def _utf16(text: str, spans: list[list[int]]) -> list[list[int]]:
    """``spans`` (code point offsets in ``text``) as offsets in UTF-16 code units, the indices
    of a JavaScript string: a character beyond the BMP (an emoji) is two units there."""
    astral = [m.start() for m in _ASTRAL.finditer(text)]
    if not astral:
        return spans
    return [
        [a + bisect.bisect_left(astral, a), b + bisect.bisect_left(astral, b)] for a, b in spans
    ]


def _hits(pattern: str | None, payload: Any, pretty: str, summary: Any) -> dict[str, Any]:
    """Where the monitor's search ``pattern`` (a regex, as the table's filter uses it) matches
    this event: ``hits`` (``[start, end]`` in the pretty-printed payload) and ``summary_hits``
    (in the summary).  The filter searches the payload's compact JSON text (``"k":"v"``); its
    matches are shown on the pretty text, at the same characters.  Offsets count UTF-16 code
    units, as the browser's strings do."""
    if not pattern:
        return {}
    try:
        rx = re.compile(pattern)
    except re.error:
        return {}
    out: dict[str, Any] = {"hits": [], "summary_hits": []}
    if isinstance(summary, str):
        out["summary_hits"] = _utf16(summary, [list(s) for s in _spans(rx, summary)])
    try:
        compact = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS).decode()
    except Exception:
        compact = None
    mapped = None
    if compact is not None and len(compact) <= MAP_CHARS:
        spans = _spans(rx, compact)
        mapped = _to_pretty(compact, pretty, spans) if spans else []
    if mapped is None:  # not mappable (too long, not JSON): the pretty text searched itself
        mapped = [list(s) for s in _spans(rx, pretty)]
    out["hits"] = _utf16(pretty, mapped)
    return out


def detail(frame: Any, event_id: Any, pattern: str | None = None) -> dict[str, Any]:
    """The detail pane of event ``event_id``: its fields, the payload pretty-printed and its
    ``chat`` transcript (a list of messages, as hook scripts send it with ``--add-chat``).
    With the search ``pattern`` in use (a regex), also where it matches (:func:`_hits`: at
    most :data:`MAX_HITS` each in the payload and the summary)."""
    try:
        row = frame.row(int(event_id))
    except Exception as exc:
        return {"kind": "detail", "id": event_id, "error": f"cannot read event: {exc}"}
    if row is None:
        return {"kind": "detail", "id": event_id, "error": "no longer in the frame"}
    payload = row.pop("payload", None)
    chat = row.pop("chat", None)
    try:
        pretty = orjson.dumps(payload, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
        text = pretty.decode()
    except Exception:
        text = str(payload)
    fields = {str(k): _plain(v) for k, v in row.items()}
    messages: list[dict[str, str]] = []
    if isinstance(chat, list):
        for m in chat[-200:]:
            if isinstance(m, dict):
                role = str(m.get("role") or m.get("type") or "")
                content = m.get("content") if "content" in m else m.get("message", m)
                if not isinstance(content, str):
                    content = orjson.dumps(content, default=str).decode()
                messages.append({"role": role, "content": content[:4000]})
            else:
                messages.append({"role": "", "content": str(m)[:4000]})
    return {
        "kind": "detail",
        "id": event_id,
        "fields": fields,
        "payload": text,
        "chat": messages,
        **_hits(pattern, payload, text, row.get("summary")),
    }


def selection(frame: Any, request: dict[str, Any]) -> Any:
    """The rows of the widget's current filter as a DataFrame: category pickers (lists of
    values), the search box's pattern (already a regex) and a time range (epoch ms)."""

    def values(key: str) -> list[str] | None:
        v = request.get(key)
        return [str(x) for x in v] if isinstance(v, list) and v else None

    df = frame.filter(
        source_app=values("apps"),
        session_id=values("sessions"),
        hook_event_type=values("types"),
        search=request.get("pattern") or None,
    )
    t0, t1 = request.get("t0"), request.get("t1")
    if isinstance(t0, (int, float)) and isinstance(t1, (int, float)) and len(df):
        import pandas as pd

        lo = pd.Timestamp(t0, unit="ms", tz="UTC")
        hi = pd.Timestamp(t1, unit="ms", tz="UTC")
        df = df[(df["timestamp"] >= lo) & (df["timestamp"] <= hi)]
    return df


def export(frame: Any, request: dict[str, Any]) -> str:
    """Write the current filter's rows to ``request["path"]`` as ``request["format"]``
    (``csv`` or ``parquet``); the message for the widget.  A path without an extension gets
    the format's, one with the other format's is refused; the message names the absolute path
    and says when a file was replaced.  Raises :class:`ExportError`."""
    fmt = str(request.get("format") or "csv")
    if fmt not in _FORMATS:
        raise ExportError(f"export: format must be csv or parquet, got {fmt!r}")
    raw = str(request.get("path") or "").strip() or f"wsnotebook-export{_FORMATS[fmt]}"
    if re.search(r"[\x00]", raw):
        raise ExportError("export: the path holds a NUL character")
    path = Path(raw).expanduser()
    # a path without an extension gets the format's; one with the other format's is refused
    # (CSV text in a file named .parquet reads as a corrupt Parquet file later)
    suffix = path.suffix.lower()
    if not suffix:
        path = path.with_name(path.name + _FORMATS[fmt])
    else:
        for other, ext in _FORMATS.items():
            if other != fmt and suffix == ext:
                raise ExportError(
                    f"export: {path.name} ends in {ext}: use the {_BUTTONS[other]} button,"
                    f" or a path ending in {_FORMATS[fmt]}"
                )
    path = path.absolute()  # the message says where the file is, whatever the kernel's cwd
    if not path.parent.is_dir():
        raise ExportError(f"export: no such directory: {path.parent}")
    replaced = path.exists()
    try:
        df = selection(frame, request)
    except Exception as exc:
        raise ExportError(f"export: cannot select the rows: {exc}") from None
    out = df.copy()
    for col in ("payload", "chat"):
        if col in out.columns:
            out[col] = [orjson.dumps(v, default=str).decode() for v in out[col]]
    for col in out.columns:
        if out[col].dtype == object:
            out[col] = out[col].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    try:
        if fmt == "csv":
            out.to_csv(path, index=False)
        else:
            out.to_parquet(path, index=False)
    except ImportError as exc:
        raise ExportError(f"export: {exc}") from None
    except OSError as exc:
        raise ExportError(f"export: cannot write {path}: {exc.strerror or exc}") from None
    return f"wrote {len(out):,} rows to {path}" + (" (replaced the file there)" if replaced else "")
