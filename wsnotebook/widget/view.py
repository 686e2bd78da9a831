"""The live monitor widget: ``wsnotebook.monitor(client_or_server_or_frame)``.

One ipywidgets box with

* a **status line**: connection state, clients connected (server), events total, events/s,
  reconnects, dropped, gaps (losses recorded by the client), errors, p50/p99 latency;
* a **live table** of the newest N rows (newest first), filtered by ``source_app``,
  ``session_id``, ``hook_event_type`` (dropdowns fed by ``frame.categories``) and a search box:
  its text is searched literally, ``re:pattern`` is a regular expression (Python ``re``, no time
  limit: a pattern like ``re:(a+)+$`` can stall the kernel), in the newest ``SEARCH_SCAN_ROWS`` =
  50,000 rows' summary and payload JSON text; every value is HTML-escaped;
* a **throughput chart** (bqplot): events/s over the last 1 m / 5 m / 15 m, optionally one line per
  ``hook_event_type``;
* **pause/resume** and **clear** buttons.

How it refreshes
    A throttled tick (``refresh_hz``, default 4 Hz, bounds 0.2-30 Hz) is scheduled by the one
    background loop (:mod:`wsnotebook._loop`); its work runs in a worker thread so it never stalls
    the servers and clients on that loop.  The monitor keeps updating while the kernel is idle and
    while other cells run.  A tick is O(rows shown): the table is rebuilt only when
    ``frame.version`` or a filter changed, with ``frame.filter(..., limit=rows)`` (a search
    scans at most the newest ``SEARCH_SCAN_ROWS`` rows: one that matches rarely would otherwise
    scan the whole frame every tick, ~90 ms at 500k rows here); the chart, the
    latency percentiles and the filter dropdowns are refreshed at most once a second.  Nothing is
    sent to the front end when nothing changed: every trait is compared before it is set.  Only
    trait values are set from the background side (no ``print``/``Output`` from threads, which
    ipykernel 7 routes to the latest cell).

Threading
    Widget callbacks may run on a comm subshell thread (JupyterLab 4.6 ``commsOverSubshells``):
    they only record the new filter state under the monitor's lock; the tick does the work.
    Errors inside a tick are logged on the ``wsnotebook`` logger and counted (``errors``), never
    raised into a cell.

Lifetime
    The tick stops on :meth:`Monitor.stop` / :meth:`Monitor.close`, when ``monitor()`` is called
    again for the same target (the previous monitor is stopped: re-running a cell does not leak
    ticks), and when every view of the widget is closed (the box's ``_view_count`` trait is
    tracked, as streamz does; it restarts if a view appears again).  Monitoring a **Server** opens
    a loopback client ``connect(server.url)`` owned by the monitor and closed with it (with the
    server's token, and for a TLS server ``ssl=server.client_ssl_context()`` unless ``ssl`` is
    given); the status line then shows the server's connection count (which includes that
    client).
"""

from __future__ import annotations

import asyncio
import html
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from ..errors import ConfigError
from ..runtime import loop as _loop
from ..stats import RateMeter

log = logging.getLogger("wsnotebook")

__all__ = [
    "DEFAULT_REFRESH_HZ",
    "DEFAULT_ROWS",
    "MAX_ROWS",
    "WINDOWS",
    "Monitor",
    "monitor",
    "render_status",
    "render_table",
    "running_monitors",
    "stop_all",
]

#: Rows shown by default, and the bound (1..MAX_ROWS) on the adjustable row count.
DEFAULT_ROWS = 20
MAX_ROWS = 1000
#: Newest rows the search box looks at (``frame.filter(search=...)`` searches everything).
SEARCH_SCAN_ROWS = 50_000
#: Default tick rate and its bounds, in Hz.
DEFAULT_REFRESH_HZ = 4.0
MIN_REFRESH_HZ = 0.2
MAX_REFRESH_HZ = 30.0
#: Chart windows offered by the monitor (label -> seconds).
WINDOWS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900}
#: Most rows used for the p50/p99 latency shown in the status line (newest rows only).
LATENCY_SAMPLE = 2000
#: Most values offered by each filter dropdown (the newest ones; older values stay filterable
#: from code with ``frame.filter``).
MAX_OPTIONS = 200
#: Longest text shown in the table's ``summary / payload`` column (longer text ends with "…").
MAX_CELL_CHARS = 160
#: Payload JSON text from this size on is previewed by scanning only its first few hundred
#: bytes (:func:`_preview_json`) instead of decoding it whole.
PREVIEW_SCAN_BYTES = 16_384

_ALL = ""  # dropdown value meaning "no filter"
_FILTER_COLUMNS = ("source_app", "session_id", "hook_event_type")
_PALETTE = (
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
#: Payload keys every agent hook repeats; left out of the table's payload preview.
_BOILERPLATE_KEYS = frozenset(
    {"session_id", "transcript_path", "cwd", "hook_event_name", "permission_mode"}
)

_CSS = """<style>
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


# --------------------------------------------------------------------------- pure rendering


def _esc(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return html.escape(str(value), quote=True)


def _color(name: str) -> str:
    # stable per name within a process and across processes (no hash randomisation)
    return _TYPE_COLORS.get(name) or _PALETTE[sum(name.encode()) % len(_PALETTE)]


def _preview(summary: Any, payload: Any) -> str:
    if isinstance(summary, str) and summary:
        text = summary
    elif payload is None or (isinstance(payload, float) and math.isnan(payload)):
        text = ""
    else:
        if isinstance(payload, dict) and _BOILERPLATE_KEYS.intersection(payload):
            payload = {k: v for k, v in payload.items() if k not in _BOILERPLATE_KEYS}
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
_BOILERPLATE_RAW = frozenset(b'"' + k.encode() + b'"' for k in _BOILERPLATE_KEYS)
#: Tokens the scanner walks through one value before it gives up (a boilerplate key holding a
#: 100k-element array took 187 ms to skip token by token, 7.7 ms to decode).
_MAX_SKIP_TOKENS = 256


def _preview_json(text: bytes) -> str | None:
    """:func:`_preview` of a payload given as its compact JSON text (an object), reading only
    as much of the text as the cut cell needs: the monitor's table never decodes a whole
    payload (a 0.9 MB tool output cost ~1.2 ms to decode and re-encode per row and tick).
    Cost: ~20-40 us whatever the size (used from ``PREVIEW_SCAN_BYTES`` on).

    Returns the same string as ``_preview(None, orjson.loads(text))`` for orjson's compact JSON
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
            if tok is None or tokens > _MAX_SKIP_TOKENS:  # a huge skipped value: decode instead
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


def _search_regex(box: str) -> str | None:
    """The pattern the search box asks for: its text searched literally, or, after a ``re:``
    prefix, a regular expression.  Literal by default because Python's ``re`` has no time
    limit and holds the GIL: a pattern with nested quantifiers typed by accident (say
    ``(a+)+$``) could stall the whole kernel, and ``foo(`` or ``a+b`` would not even compile.
    (Not ``/pattern/``: searches for paths such as ``/tmp/a+b/`` are common in hook payloads.)
    """
    if not box:
        return None
    if box.startswith("re:"):
        return box[3:] or None
    return re.escape(box)


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
            scanned = _preview_json(raw) if len(raw) >= PREVIEW_SCAN_BYTES else None
            if scanned is None:
                try:
                    scanned = _preview(None, orjson.loads(raw))
                except orjson.JSONDecodeError:  # see frame._decode_rows: shown as its text
                    scanned = _preview(raw.decode("utf-8", "replace"), None)
            text = scanned
        else:
            text = _preview(summary, payloads[i])
        parts.append(
            f"<tr><td>{_esc(ident_s)}</td><td>{_esc(_fmt_time(times[i]))}</td>"
            f"<td>{_esc(apps[i])}</td>"
            f"<td title='{_esc(session)}'>{_esc(_short_id(session))}</td>"
            f"<td><span class='wsn-type' style='background:{_color(etype)}'>{_esc(etype)}</span>"
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


def _dropdown_options(label: str, values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return ((f"all {label}", _ALL), *((str(v), str(v)) for v in values))


# --------------------------------------------------------------------------- the widget


def _resolve(target: Any) -> tuple[Any, Any, Any]:
    """(frame, client, server) for a Client, Server or EventFrame (duck-typed, no heavy imports)."""
    from ..frame import EventFrame

    if isinstance(target, EventFrame):
        return target, None, None
    if hasattr(target, "frame") and hasattr(target, "state"):
        return target.frame, target, None
    if hasattr(target, "publish") and hasattr(target, "url"):
        return None, None, target
    raise ConfigError(
        f"monitor() needs a Client, Server or EventFrame, got {type(target).__name__}"
    )


def _metrics(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    try:
        m = obj.metrics()
    except Exception:
        log.debug("monitor: metrics() failed", exc_info=True)
        return {}
    return m if isinstance(m, dict) else {}


def _nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 x 10^k at or above ``value`` (at least 1): a steady chart top."""
    if not value > 1.0 or not math.isfinite(value):
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * exp >= value:
            return m * exp
    return 10.0 * exp


def _count(value: Any) -> int:
    """A metric as an int: numbers as is, dicts of counters summed, anything else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    return 0


class Monitor:
    """A live monitor of one Client, Server or EventFrame (see the module docstring).

    Display it (it is the cell's value, or ``display(mon)``); the widget tree is ``mon.widget``.
    Counters: ``ticks`` (ticks run), ``renders`` (ticks that changed at least one trait),
    ``sends`` (trait values set), ``errors`` (tick errors, logged).
    """

    def __init__(
        self,
        target: Any,
        *,
        rows: int = DEFAULT_ROWS,
        refresh_hz: float = DEFAULT_REFRESH_HZ,
        window: str = "1m",
        split_by_type: bool = False,
        chart: bool = True,
        ssl: Any = None,
        start: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if isinstance(rows, (bool, np.bool_)) or not isinstance(rows, (int, np.integer)):
            raise ConfigError(f"rows must be an int in 1..{MAX_ROWS}, got {rows!r}")
        rows = int(rows)
        if not 1 <= rows <= MAX_ROWS:
            raise ConfigError(f"rows must be an int in 1..{MAX_ROWS}, got {rows!r}")
        if isinstance(refresh_hz, bool) or not isinstance(refresh_hz, (int, float, np.number)):
            raise ConfigError(f"refresh_hz must be a number, got {refresh_hz!r}")
        if not MIN_REFRESH_HZ <= refresh_hz <= MAX_REFRESH_HZ:
            raise ConfigError(
                f"refresh_hz must be in {MIN_REFRESH_HZ}..{MAX_REFRESH_HZ}, got {refresh_hz!r}"
            )
        if window not in WINDOWS:
            raise ConfigError(f"window must be one of {list(WINDOWS)}, got {window!r}")
        for name, flag in (("split_by_type", split_by_type), ("chart", chart)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ConfigError(f"{name} must be True or False, got {flag!r}")
        self._owned_client: Any = None
        try:
            self._setup(target, rows, refresh_hz, window, bool(split_by_type), bool(chart), ssl,
                        start, clock)  # fmt: skip
        except BaseException:
            # The monitor's own client (a Server target) must not outlive a failed construction.
            client, self._owned_client = self._owned_client, None
            if client is not None:
                client.close()
            raise

    def _setup(
        self,
        target: Any,
        rows: int,
        refresh_hz: float,
        window: str,
        split_by_type: bool,
        chart: bool,
        ssl: Any,
        start: bool,
        clock: Callable[[], float],
    ) -> None:
        import ipywidgets as w

        self.target = target
        frame, client, server = _resolve(target)
        if ssl is not None and server is None:
            raise ConfigError("ssl= applies only when monitoring a Server")
        self._client_options: dict[str, Any] = {}
        if server is not None:
            from ..client import connect

            options: dict[str, Any] = {}
            token = getattr(server, "token", None)
            if token:
                options["token"] = token
            if ssl is None and str(server.url).startswith("wss:"):
                # a TLS server: its own client-side context (trusts its certificate)
                make_context = getattr(server, "client_ssl_context", None)
                ssl = make_context() if callable(make_context) else None
            if ssl is not None:
                options["ssl"] = ssl
            self._client_options = options
            client = connect(server.url, **options)
            self._owned_client = client
            frame = client.frame
        self.frame, self.client, self.server = frame, client, server
        self.refresh_hz = float(refresh_hz)
        self._clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._future: Any = None
        self._closed = False
        self._paused = False
        self._dirty = True
        self._seen_views = False
        self._last_version: Any = None
        self._last_query: Any = None
        self._last_slow = -math.inf
        self._slow_version: Any = None
        self._latency: tuple[float | None, float | None] = (None, None)
        self._rate = RateMeter(window=5.0, clock=clock)
        self._last_total: int | None = None
        self._regex_error: str | None = None
        self._cat_keys: dict[str, Any] = {}
        self.ticks = self.renders = self.sends = self.errors = 0

        # ---- widgets
        self._css = w.HTML(_CSS)
        self.status = w.HTML("")
        self.status.add_class("wsn-status")
        dd_layout = w.Layout(width="175px")
        self.source_app = w.Dropdown(options=_dropdown_options("apps", []), layout=dd_layout)
        self.session_id = w.Dropdown(options=_dropdown_options("sessions", []), layout=dd_layout)
        self.hook_event_type = w.Dropdown(options=_dropdown_options("types", []), layout=dd_layout)
        self.search = w.Text(
            placeholder="search summary / payload (re:regex)", layout=w.Layout(width="250px")
        )
        self.rows = w.BoundedIntText(
            value=rows, min=1, max=MAX_ROWS, description="rows", layout=w.Layout(width="120px")
        )
        self.rows.style.description_width = "36px"
        for wid, cls in (
            (self.source_app, "wsn-filter-source-app"),
            (self.session_id, "wsn-filter-session-id"),
            (self.hook_event_type, "wsn-filter-hook-event-type"),
            (self.search, "wsn-search"),
            (self.rows, "wsn-rows"),
        ):
            wid.add_class(cls)
        self.pause_button = w.ToggleButton(
            value=False, description="pause", icon="pause", layout=w.Layout(width="100px")
        )
        self.pause_button.add_class("wsn-pause")
        self.clear_button = w.Button(
            description="clear", icon="trash", layout=w.Layout(width="90px")
        )
        self.clear_button.add_class("wsn-clear")
        self.window = w.ToggleButtons(
            options=list(WINDOWS), value=window, style={"button_width": "52px"}
        )
        self.window.add_class("wsn-window")
        self.split = w.Checkbox(value=split_by_type, description="by type", indent=False)
        self.split.layout.width = "90px"
        # The layout given at construction: assigning one afterwards orphans the default one
        # (a widget model nobody closes).
        self.table = w.HTML(
            render_table(None), layout=w.Layout(max_height="520px", overflow="auto")
        )
        self.table.add_class("wsn-table")

        self.chart: Any = None
        self._lines: Any = None
        if chart:
            self._build_chart()
        controls = w.HBox(
            [self.source_app, self.session_id, self.hook_event_type, self.search],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        chart_bar = w.HBox(
            [
                self.pause_button,
                self.clear_button,
                self.rows,
                w.Label("throughput window", layout=w.Layout(margin="0 4px 0 16px")),
                self.window,
                self.split,
            ],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )
        children: list[Any] = [self._css, self.status, controls, chart_bar]
        if self.chart is not None:
            children.append(self.chart)
        children.append(self.table)
        self.widget = w.VBox(children)
        self.widget.add_class("wsn-monitor")

        for wid in (self.source_app, self.session_id, self.hook_event_type, self.search):
            wid.observe(self._on_filter, names="value")
        self.rows.observe(self._on_filter, names="value")
        self.window.observe(self._on_chart_option, names="value")
        self.split.observe(self._on_chart_option, names="value")
        self.pause_button.observe(self._on_pause, names="value")
        self.clear_button.on_click(self._on_clear)
        # count views (streamz's approach): the front end keeps _view_count up to date once set
        self.widget._view_count = 0
        self.widget.observe(self._on_view_count, names="_view_count")

        self._refresh_locked_safe()
        if start:
            self.start()

    # ----------------------------------------------------------------- chart
    def _build_chart(self) -> None:
        import bqplot as bq

        self._xscale = xs = bq.DateScale()
        # allow_padding=False: with padding allowed, the front end widens the y axis's domain by
        # the line's stroke padding (stroke_width / 2 px) at both ends, and bqplot spaces
        # num_ticks ticks from that widened lower end: the lowest tick read a small negative
        # rate (-0.00607 for 0..1 on the 150 px plot area).  Without it the domain is [0, max].
        self._yscale = ys = bq.LinearScale(min=0.0, max=1.0, allow_padding=False)
        self._lines = bq.Lines(
            x=np.array([], dtype="datetime64[ms]"),
            y=np.array([], dtype=float),
            scales={"x": xs, "y": ys},
            colors=[_PALETTE[0]],
            fill="bottom",
            fill_opacities=[0.12],
            stroke_width=1.8,
            interpolation="linear",
        )
        ax_x = bq.Axis(scale=xs, side="bottom", label="", tick_format="%H:%M:%S", num_ticks=7)
        ax_y = bq.Axis(
            scale=ys,
            side="left",
            label="events/s",
            label_offset="42px",
            tick_format=",.3~g",
            num_ticks=4,
            grid_color="#e6e6e6",
        )
        ax_x.grid_color = "#e6e6e6"
        self.chart = bq.Figure(
            marks=[self._lines],
            axes=[ax_x, ax_y],
            fig_margin={"top": 12, "bottom": 28, "left": 60, "right": 140},
            legend_location="top-right",
            legend_style={"stroke-width": 0},
            animation_duration=0,
            padding_x=0.0,
            padding_y=0.0,
            layout={"height": "190px", "width": "100%"},
        )
        self.chart.add_class("wsn-chart")

    def _chart_data(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        window = f"{WINDOWS[self.window.value]}s"
        split = bool(self.split.value)
        # The window ends now (+1 s of clock skew), not at the newest timestamp: one event with a
        # wrong clock (or microseconds sent as milliseconds) must not move the chart into the
        # future or past what datetime64 can hold.
        try:
            data = self.frame.throughput(
                "1s",
                window=window,
                by="hook_event_type" if split else None,
                end=time.time() * 1000.0 + 1000.0,
            )
        except TypeError:  # a frame without window/by/end support
            data = self.frame.throughput("1s")
        if data is None or len(data) == 0:
            return np.array([], dtype="datetime64[ms]"), np.array([], dtype=float), []
        data = data[data.index.notna()]
        if len(data) == 0:
            return np.array([], dtype="datetime64[ms]"), np.array([], dtype=float), []
        # bins of the second still in progress (and the skew second after it): left out, so no
        # false dip at the right edge
        cutoff = time.time() - 1.0
        while len(data) > 1 and data.index[-1].timestamp() > cutoff:
            data = data.iloc[:-1]
        index = data.index
        if getattr(index, "tz", None) is not None:
            index = index.tz_convert(None)
        x = np.asarray(index, dtype="datetime64[ms]")
        if getattr(data, "ndim", 1) == 2:
            labels = [str(c) for c in data.columns]
            y = np.asarray(data.to_numpy(dtype=float).T, dtype=float)
            return x, y, labels
        return x, np.asarray(data.to_numpy(dtype=float), dtype=float), ["all"]

    def _update_chart(self) -> None:
        if self._lines is None:
            return
        x, y, labels = self._chart_data()
        lines = self._lines
        multi = y.ndim == 2
        colors = [_color(lb) for lb in labels] if multi else [_PALETTE[0]]
        with lines.hold_sync():
            self._set(lines, "labels", labels if multi else [])
            self._set(lines, "colors", colors)
            self._set(lines, "fill", "none" if multi else "bottom")
            self._set(lines, "display_legend", multi)
            self._set(lines, "x", x)
            self._set(lines, "y", y)
        # show the whole window, ending at the newest bin (moves only when the data moves)
        if len(x):
            end = x[-1] + np.timedelta64(1, "s")
            start = end - np.timedelta64(WINDOWS[self.window.value], "s")
            with self._xscale.hold_sync():
                self._set(self._xscale, "min", start)
                self._set(self._xscale, "max", end)
            top = float(np.nanmax(y)) if y.size else 0.0
            self._set(self._yscale, "max", _nice_ceiling(top * 1.15))

    # ----------------------------------------------------------------- callbacks (any thread)
    def _on_filter(self, change: Any) -> None:
        with self._lock:
            self._dirty = True

    def _on_chart_option(self, change: Any) -> None:
        with self._lock:
            self._last_slow = -math.inf

    def _on_pause(self, change: Any) -> None:
        with self._lock:
            self._paused = bool(change["new"])
            self._set(self.pause_button, "description", "resume" if self._paused else "pause")
            self._set(self.pause_button, "icon", "play" if self._paused else "pause")
            self._dirty = True

    def _on_clear(self, _button: Any = None) -> None:
        self.clear()

    def _on_view_count(self, change: Any) -> None:
        new = change["new"]
        if new is None:
            return
        if new > 0:
            self._seen_views = True
            if not self._closed and not self._stop.is_set() and self._future is None:
                self.start()
        elif self._seen_views:  # every view was closed
            self._halt_tick()

    # ----------------------------------------------------------------- public control
    @property
    def running(self) -> bool:
        """True while the background tick is scheduled."""
        fut = self._future
        return fut is not None and not fut.done()

    @property
    def paused(self) -> bool:
        return self._paused

    def pause(self) -> None:
        """Freeze the table and chart (the status line keeps updating)."""
        self.pause_button.value = True

    def resume(self) -> None:
        self.pause_button.value = False

    def clear(self) -> None:
        """Clear the monitored frame (its rows; counters such as ``total`` keep counting)."""
        with self._lock:
            try:
                self.frame.clear()
            except Exception:
                self.errors += 1
                log.exception("monitor: clear failed")
            self._dirty = True
            self._last_slow = -math.inf

    def start(self) -> None:
        """(Re)start the background tick; idempotent."""
        with self._lock:
            if self._closed:
                raise ConfigError("this monitor is closed; call wsnotebook.monitor() again")
            self._stop.clear()
            if self.running:
                return
            if self.server is not None and self._owned_client is None:
                # stop() closed the monitor's own client: a restarted Server monitor gets a new
                # one (and shows its frame) instead of a client that stays "closed" for good.
                from ..client import connect

                client = connect(self.server.url, **self._client_options)
                self._owned_client = self.client = client
                self.frame = client.frame
                self._dirty = True
                self._last_slow = -math.inf
            self._future = _loop.submit(self._run())
        _register(self)  # visible to stop_all() / %ws stop all again

    def _halt_tick(self) -> None:
        fut = self._future
        self._future = None
        if fut is not None:
            fut.cancel()

    def stop(self) -> None:
        """Stop the tick (the widget keeps its last values) and close the monitor's own client."""
        self._stop.set()
        with self._lock:
            self._halt_tick()
            client, self._owned_client = self._owned_client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.debug("monitor: closing its client failed", exc_info=True)
        _unregister(self)

    def close(self) -> None:
        """Stop, then close every widget of the monitor (views disappear)."""
        self.stop()
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for wid in _walk(self.widget):
            try:
                wid.close()
            except Exception:
                log.debug("monitor: closing a widget failed", exc_info=True)

    def refresh(self) -> bool:
        """Run one tick now (any thread); True when at least one trait changed."""
        with self._lock:
            return self._tick()

    # ----------------------------------------------------------------- the tick
    async def _run(self) -> None:
        period = 1.0 / self.refresh_hz
        while not self._stop.is_set():
            await asyncio.sleep(period)
            if self._stop.is_set():
                break
            # the work runs in a worker thread so a slow tick (chart on a huge frame) never
            # stalls the servers and clients that share the loop; one tick at a time
            await asyncio.to_thread(self._refresh_locked_safe)

    def _refresh_locked_safe(self) -> None:
        try:
            # Rendering runs in a worker thread: charge its CPU to the background budget too.
            with _loop.background_work(), self._lock:
                self._tick()
        except Exception:
            self._count_error()

    def _count_error(self) -> None:
        """Count a tick error; log it with its traceback (the first 3, then every 100th)."""
        n = self.errors + 1
        if n <= 3 or n % 100 == 0:
            log.exception("monitor tick failed (%d errors so far, counted in Monitor.errors)", n)
        self.errors = n  # after logging: whoever sees the count can rely on the log record

    def _set(self, widget: Any, name: str, value: Any) -> bool:
        """Set a trait only when its value differs (so nothing is sent when nothing changed)."""
        old = getattr(widget, name)
        if isinstance(value, np.ndarray) or isinstance(old, np.ndarray):
            # bqplot squeezes arrays it stores: compare squeezed shapes
            same = (
                isinstance(old, np.ndarray)
                and isinstance(value, np.ndarray)
                and old.dtype == value.dtype
                and np.squeeze(old).shape == np.squeeze(value).shape
                and bool(np.array_equal(np.squeeze(old), np.squeeze(value)))
            )
        else:
            try:
                same = bool(old == value)
            except Exception:
                same = False
        if same:
            return False
        setattr(widget, name, value)
        self.sends += 1
        return True

    def _query(self) -> tuple[Any, ...]:
        search = _search_regex(self.search.value)
        self._regex_error = None
        if search:
            try:
                re.compile(search)
            except re.error as exc:
                self._regex_error = f"bad regex: {exc}"
                search = None
        return (
            self.source_app.value or None,
            self.session_id.value or None,
            self.hook_event_type.value or None,
            search,
            int(self.rows.value),
        )

    def _tick(self) -> bool:
        """One refresh; call with the lock held.  O(rows shown) except the <= 1 Hz slow part."""
        self.ticks += 1
        sends_before = self.sends
        frame = self.frame
        now = self._clock()
        version = getattr(frame, "version", None)
        total = int(getattr(frame, "total", len(frame)))
        if self._last_total is not None and total > self._last_total:
            self._rate.add(total - self._last_total)
        self._last_total = total

        try:
            self._update_view(now, version)
        except Exception:
            self._count_error()
        self._set(self.status, "value", render_status(self._status(total)))
        changed = self.sends > sends_before
        if changed:
            self.renders += 1
        return changed

    def _update_view(self, now: float, version: Any) -> None:
        frame = self.frame
        query = self._query()
        slow_due = now - self._last_slow >= 1.0
        if not self._paused:
            if self._dirty or query != self._last_query:
                self._update_filters()
            if self._dirty or version != self._last_version or query != self._last_query:
                source_app, session_id, hook_event_type, search, limit = query
                rows = frame.plain_table(  # filter() without building a DataFrame
                    source_app,
                    session_id,
                    hook_event_type,
                    search=search,
                    limit=limit,
                    # a search that matches rarely would scan the whole frame every tick
                    scan=SEARCH_SCAN_ROWS if search else None,
                )
                self._set(self.table, "value", render_table(rows))
                self._last_version, self._last_query, self._dirty = version, query, False
            if slow_due:
                self._last_slow = now
                self._update_filters()
                if version != self._slow_version:
                    self._latency = self._latency_now()
                    self._slow_version = version
                self._update_chart()

    def _update_filters(self) -> None:
        """Refresh the dropdowns from ``frame.categories`` (at most once a second, or when a
        filter changed).  Each offers at most ``MAX_OPTIONS`` values: the newest first-seen ones
        (sessions newest first, apps and types sorted)."""
        for wid, column, label in (
            (self.source_app, "source_app", "apps"),
            (self.session_id, "session_id", "sessions"),
            (self.hook_event_type, "hook_event_type", "types"),
        ):
            try:
                seen = self.frame.categories(column)
            except Exception:
                seen = []
            key = (len(seen), seen[-1] if seen else None, wid.value)
            if self._cat_keys.get(column) == key:
                continue  # same categories as last time: nothing to rebuild
            self._cat_keys[column] = key
            recent = [str(v) for v in seen[-MAX_OPTIONS:]]
            values = recent[::-1] if column == "session_id" else sorted(recent)
            current = wid.value
            if current and current not in values:
                values.append(current)  # keep the user's choice visible even after a clear
            options = _dropdown_options(label, values)
            if tuple(wid.options) != options:
                wid.options = options
                self.sends += 1
                if wid.value != current:
                    wid.value = current

    def _latency_now(self) -> tuple[float | None, float | None]:
        """p50/p99 of ``client_received - timestamp`` over the last ``LATENCY_SAMPLE`` rows
        (linear interpolation), from the numeric columns alone: no DataFrame, no payloads."""
        try:
            cols, _ = self.frame.numeric_columns(
                ["timestamp", "client_received"], last=LATENCY_SAMPLE
            )
            lat = cols["client_received"] - cols["timestamp"]
            lat = lat[np.isfinite(lat)]
            if len(lat) == 0:
                return (None, None)
            p50, p99 = np.percentile(lat, [50, 99])
            return (float(p50), float(p99))
        except Exception:
            log.debug("monitor: latency failed", exc_info=True)
            return (None, None)

    def _status(self, total: int) -> dict[str, Any]:
        cm = _metrics(self.client)
        sm = _metrics(self.server)
        if self._stop.is_set():
            state = "stopped"
        elif self.client is not None:
            state = str(getattr(self.client, "state", "?"))
        else:
            state = "frame"
        status: dict[str, Any] = {"state": state}
        if self.server is not None:
            status["clients"] = sm.get("connections")
        status["events"] = total
        status["events_per_s"] = float(self._rate.rate())
        if self.client is not None:
            status["reconnects"] = cm.get("reconnects", 0)
        # dropped: rows the frame evicted + slow clients the server dropped
        status["dropped"] = (
            int(getattr(self.frame, "dropped", 0) or 0)
            + _count(cm.get("dropped"))
            + _count(sm.get("dropped_slow_clients", sm.get("dropped")))
        )
        # losses the client recorded (frame.mark_gap): shown, never hidden
        status["gaps"] = int(getattr(self.frame, "_gaps_total", 0) or 0)
        status["errors"] = self.errors + _count(cm.get("errors")) + _count(sm.get("errors"))
        status["p50_ms"], status["p99_ms"] = self._latency
        notes = []
        if self._paused:
            notes.append("⏸ paused")
        if self._regex_error:
            notes.append(self._regex_error)
        elif self.search.value and len(self.frame) > SEARCH_SCAN_ROWS:
            notes.append(f"search: newest {SEARCH_SCAN_ROWS:,} rows")
        budget = _loop.budget_stats()
        if (
            budget.get("throttle_pauses")
            or budget.get("producer_waits")
            or budget.get("coalesced_ticks")
        ):
            # The CPU budget deferred background work to keep the kernel responsive: say so.
            notes.append(
                f"CPU budget {budget.get('cpu_budget', 0):g} core: "
                f"throttled {budget.get('throttled_s', 0):.1f} s, "
                f"producers held {budget.get('producer_wait_s', 0):.1f} s, "
                f"{budget.get('coalesced_ticks', 0)} sends batched"
            )
        if notes:
            status["note"] = " · ".join(notes)
        return status

    # ----------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        what = type(self.target).__name__
        return f"<wsnotebook.Monitor of {what} running={self.running} ticks={self.ticks}>"


def _walk(widget: Any) -> list[Any]:
    """``widget`` and every widget model it references (children, layouts, styles, a chart's
    marks, axes and scales ...), each once: closing only the children left ~2/3 of a monitor's
    models open in the kernel."""
    import ipywidgets

    out: list[Any] = []
    seen: set[int] = set()
    stack = [widget]
    while stack:
        w = stack.pop()
        if id(w) in seen:
            continue
        seen.add(id(w))
        out.append(w)
        for name in w.keys:
            value = getattr(w, name, None)
            for v in value if isinstance(value, (list, tuple)) else (value,):
                if isinstance(v, ipywidgets.Widget) and id(v) not in seen:
                    stack.append(v)
    return out


# --------------------------------------------------------------------------- registry

_registry_lock = threading.Lock()
_registry: dict[int, Monitor] = {}
_hook_installed = False


def _register(mon: Monitor) -> None:
    global _hook_installed
    with _registry_lock:
        old = _registry.get(id(mon.target))
        _registry[id(mon.target)] = mon
        if not _hook_installed:
            _loop.add_shutdown_hook(stop_all)
            _hook_installed = True
    if old is not None and old is not mon:
        old.stop()


def _unregister(mon: Monitor) -> None:
    with _registry_lock:
        if _registry.get(id(mon.target)) is mon:
            del _registry[id(mon.target)]


def running_monitors() -> list[Monitor]:
    """Monitors whose tick is running (one per target at most)."""
    with _registry_lock:
        return [m for m in _registry.values() if m.running]


def stop_all() -> None:
    """Stop every monitor (registered at exit, and used by ``%unload_ext wsnotebook``)."""
    with _registry_lock:
        mons = list(_registry.values())
    for m in mons:
        try:
            m.stop()
        except Exception:
            log.debug("monitor: stop failed", exc_info=True)


def monitor(
    target: Any,
    *,
    rows: int = DEFAULT_ROWS,
    refresh_hz: float = DEFAULT_REFRESH_HZ,
    window: str = "1m",
    split_by_type: bool = False,
    chart: bool = True,
    ssl: Any = None,
) -> Monitor:
    """A live monitor widget for a Client, Server or EventFrame; returns at once.

    Parameters (keyword-only after ``target``):

    - ``rows``: newest rows shown, 1..1000 (default 20; adjustable in the widget).
    - ``refresh_hz``: tick rate, 0.2..30 Hz (default 4).  A tick is O(rows shown) and sends
      nothing when nothing changed; chart and latency are recomputed at most once a second.
    - ``window``: throughput chart window, one of ``"1m"``, ``"5m"``, ``"15m"`` (default ``"1m"``).
    - ``split_by_type``: one chart line per ``hook_event_type`` (default False).
    - ``chart``: include the bqplot chart (default True).
    - ``ssl``: for a Server only, the :class:`ssl.SSLContext` of the monitor's own client.  Default:
      ``server.client_ssl_context()`` for a TLS server (trusts the certificate it loaded from
      ``certfile``; the system trust store for one given an ``ssl_context``).

    A Server is monitored through a loopback client ``connect(server.url)`` owned (and closed) by
    the monitor.  Calling ``monitor()`` again for the same target stops the previous monitor.
    Raises :class:`~wsnotebook.ConfigError` for a bad target or option.
    """
    mon = Monitor(
        target,
        rows=rows,
        refresh_hz=refresh_hz,
        window=window,
        split_by_type=split_by_type,
        chart=chart,
        ssl=ssl,
    )
    _register(mon)
    return mon
