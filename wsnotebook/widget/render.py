"""HTML rendering of the monitor's table and status line, and the colours they share.

Owns the markup and its stylesheet (``CSS``): :func:`render_table` and :func:`render_status`
turn plain data (rows, a status dict) into HTML strings.  Pure functions, no widgets, no I/O:
the view sets the strings as trait values, a test compares them directly.

Invariants: every value that comes from an event or a status dict is HTML-escaped (a payload
can hold any text); a colour is a function of the name alone (stable within and across
processes, no hash randomisation).  Cost: O(rows given); a payload cell never decodes more
than :mod:`.preview` allows.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import orjson

from .preview import PREVIEW_SCAN_BYTES, preview, preview_json

__all__ = ["CSS", "PALETTE", "color", "render_status", "render_table"]

PALETTE = (
    "#3b6ea5",
    "#d9730d",
    "#c43d3d",
    "#3a8f8a",
    "#3f8f3a",
    "#a8870f",
    "#8a5a9e",
    "#c2527a",
    "#7a5a44",
    "#5f6b78",
)
#: Fixed colours for the agent-hook event types (others get a palette colour by name).
_TYPE_COLORS = {
    "PreToolUse": "#3b6ea5",
    "PostToolUse": "#3f8f3a",
    "UserPromptSubmit": "#8a5a9e",
    "Notification": "#d9730d",
    "Stop": "#c43d3d",
    "SubagentStop": "#a33d6b",
    "SessionStart": "#3a8f8a",
    "SessionEnd": "#5f6b78",
    "PreCompact": "#7a5a44",
}

CSS = """<style>
.wsn-monitor { font-family: var(--jp-ui-font-family, sans-serif); }
.wsn-status { font-size: 12.5px; padding: 4px 8px; border-radius: 4px;
  background: var(--jp-layout-color2, #f3f3f3); color: var(--jp-ui-font-color1, #222); }
.wsn-status .wsn-kv { margin-right: 14px; white-space: nowrap; }
.wsn-status .wsn-k { color: var(--jp-ui-font-color2, #666); }
.wsn-status .wsn-v { font-weight: 600; font-variant-numeric: tabular-nums; }
.wsn-status .wsn-state { display: inline-block; padding: 0 7px; border-radius: 9px; color: #fff;
  margin-right: 14px; font-weight: 600; }
.wsn-state-open, .wsn-state-serving { background: #2e7d32; }
.wsn-state-connecting, .wsn-state-reconnecting { background: #ef6c00; }
.wsn-state-closed, .wsn-state-stopped { background: #c62828; }
.wsn-state-frame, .wsn-state-paused { background: #546e7a; }
.wsn-status .widget-html-content, .wsn-table .widget-html-content { line-height: 1.4; }
.wsn-table table { border-collapse: collapse; width: 100%; font-size: 12px;
  font-variant-numeric: tabular-nums; table-layout: auto; }
.wsn-table th { text-align: left; white-space: nowrap; padding: 3px 8px; position: sticky; top: 0;
  background: var(--jp-layout-color2, #eee); border-bottom: 1px solid #ccc; }
.wsn-table td { padding: 2px 8px; border-bottom: 1px solid var(--jp-border-color2, #e5e5e5);
  vertical-align: middle; white-space: nowrap; line-height: 1.4; }
.wsn-table .wsn-num { text-align: right; }
.wsn-table tr:nth-child(even) td { background: var(--jp-layout-color1, #fafafa); }
.wsn-table td.wsn-text { width: 100%; }
.wsn-table td.wsn-text div { max-width: 640px; overflow: hidden; text-overflow: ellipsis;
  white-space: nowrap; font-family: var(--jp-code-font-family, monospace); font-size: 11.5px; }
.wsn-table .wsn-type { display: inline-block; padding: 0 7px; border-radius: 8px; color: #fff;
  font-size: 11px; line-height: 17px; }
.wsn-table .wsn-empty { color: var(--jp-ui-font-color2, #777); font-style: italic; padding: 6px; }
</style>"""


def _esc(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return html.escape(str(value), quote=True)


def color(name: str) -> str:
    """The colour of an event type (a table badge, a chart line)."""
    # stable per name within a process and across processes (no hash randomisation)
    return _TYPE_COLORS.get(name) or PALETTE[sum(name.encode()) % len(PALETTE)]


def _fmt_time(value: Any) -> str:
    try:
        if value is None or value != value:  # NaT / NaN
            return ""
        return str(value.strftime("%H:%M:%S.%f")[:-3])
    except (AttributeError, ValueError, TypeError):
        return str(value)


def _fmt_ms(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    if math.isnan(v):
        return ""
    return f"{v:.1f}" if abs(v) < 100 else f"{v:.0f}"


def _short_id(value: str) -> str:
    """Long ids (UUIDs) shortened to their first 8 characters; the full id is the cell title."""
    return value[:8] + "…" if len(value) > 12 else value


def render_table(df: Any) -> str:
    """HTML table of ``df`` (rows oldest first, as ``frame.filter`` returns; or the frame's
    plain-columns equivalent, which the monitor uses), **newest first**.

    Columns: id, time (UTC), source_app, session_id (long ids cut to 8 characters, full id in the
    tooltip), hook_event_type, latency ms, summary (or the compact payload JSON without the keys
    every hook repeats, cut at ``MAX_CELL_CHARS``).  Every value is HTML-escaped.  O(len(df)).
    """
    head = (
        "<table class='wsn-events'><thead><tr><th>id</th><th>time (UTC)</th><th>source_app</th>"
        "<th>session_id</th><th>hook_event_type</th><th class='wsn-num'>latency ms</th>"
        "<th>summary / payload</th></tr></thead><tbody>"
    )
    n = 0 if df is None else len(df)
    if n == 0:
        return head + "</tbody></table><div class='wsn-empty'>no events yet</div>"
    cols = set(df.columns)

    def col(name: str) -> list[Any]:
        return list(df[name]) if name in cols else [None] * n

    ids, times = col("id"), col("timestamp")
    apps, sessions, types = col("source_app"), col("session_id"), col("hook_event_type")
    summaries, lats = col("summary"), col("latency_ms")
    # The monitor passes each payload's JSON text (previewed without decoding it); a DataFrame
    # from frame.filter() carries the decoded payloads.
    texts = col("payload_json") if "payload_json" in cols else None
    payloads = col("payload") if texts is None else texts
    parts = [head]
    for i in range(n - 1, -1, -1):
        ident = ids[i]
        ident_s = (
            "" if ident is None or (isinstance(ident, (int, np.integer)) and ident < 0) else ident
        )
        etype = "" if types[i] is None else str(types[i])
        session = "" if sessions[i] is None else str(sessions[i])
        summary = summaries[i]
        if texts is not None and not (isinstance(summary, str) and summary):
            raw = texts[i]
            # Small payloads decode faster (C) than the scanner reads them (Python, ~20 us a
            # cell); from PREVIEW_SCAN_BYTES on, decoding grows with the size, the scan does not.
            scanned = preview_json(raw) if len(raw) >= PREVIEW_SCAN_BYTES else None
            if scanned is None:
                try:
                    scanned = preview(None, orjson.loads(raw))
                except orjson.JSONDecodeError:  # see frame._decode_rows: shown as its text
                    scanned = preview(raw.decode("utf-8", "replace"), None)
            text = scanned
        else:
            text = preview(summary, payloads[i])
        parts.append(
            f"<tr><td>{_esc(ident_s)}</td><td>{_esc(_fmt_time(times[i]))}</td>"
            f"<td>{_esc(apps[i])}</td>"
            f"<td title='{_esc(session)}'>{_esc(_short_id(session))}</td>"
            f"<td><span class='wsn-type' style='background:{color(etype)}'>{_esc(etype)}</span>"
            f"</td><td class='wsn-num'>{_esc(_fmt_ms(lats[i]))}</td>"
            f"<td class='wsn-text'><div title='{_esc(text)}'>{_esc(text)}</div></td></tr>"
        )
    parts.append("</tbody></table>")
    return "".join(parts)


def _fmt_num(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.1f}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    return str(value)


_STATUS_LABELS = (
    ("clients", "clients"),
    ("events", "events"),
    ("live", "live"),
    ("backfill", "backfill"),
    ("events_per_s", "ev/s"),
    ("reconnects", "reconnects"),
    ("dropped", "dropped"),
    ("gaps", "gaps"),
    ("errors", "errors"),
    ("p50_ms", "p50 ms"),
    ("p99_ms", "p99 ms"),
)


def render_status(status: dict[str, Any]) -> str:
    """HTML status line from a status dict (keys: ``state``, ``clients``, ``events``,
    ``events_per_s``, ``reconnects``, ``dropped``, ``gaps``, ``errors``, ``p50_ms``, ``p99_ms``,
    ``note``).
    Missing keys are left out, ``None`` shows as "–"; every value is HTML-escaped."""
    state = str(status.get("state", ""))
    parts = [f"<span class='wsn-state wsn-state-{_esc(state)}'>{_esc(state)}</span>"]
    for key in ("reason", "url"):
        if status.get(key):
            parts.append(f"<span class='wsn-kv wsn-{key}'>{_esc(status[key])}</span>")
    for key, label in _STATUS_LABELS:
        if key in status:
            parts.append(
                f"<span class='wsn-kv wsn-{key}'><span class='wsn-k'>{label}</span> "
                f"<span class='wsn-v'>{_esc(_fmt_num(status[key]))}</span></span>"
            )
    note = status.get("note")
    if note:
        parts.append(f"<span class='wsn-kv wsn-note'>{_esc(note)}</span>")
    return "".join(parts)
