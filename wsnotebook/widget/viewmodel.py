"""The monitor's view-model: which rows, dictionary values, search matches and status the
browser gets next, computed from the monitored frame (and its client/server metrics).

Sans-I/O: nothing here imports ipywidgets or anywidget, sends a message or reads the wall
clock (the clock is injected).  :meth:`MonitorModel.messages` returns the messages of one tick
as ``(header, buffers)`` pairs; the view (:mod:`.view`) sends them.

What a tick sends (see ``docs/design.md``, "The monitor"):

* **only the rows added since the last tick**, as column buffers (:mod:`.packing`), each batch
  tagged with the frame-wide index of its first row (``first``: ``frame.total`` counts every
  row ever added, so indices never repeat).  Cost per tick: O(new rows), whatever the number
  of rows the browser holds or shows.
* after a **reset** (the first tick, a browser that (re)loaded the widget, a ``clear``): the
  newest :data:`RESET_ROWS` rows with the throughput history of every retained row, then
  older pages of :data:`PAGE_ROWS` rows, one per tick, until the browser's window
  (:data:`WINDOW_ROWS`) is full or the frame has no older row.
* while a **search** is active (literal text, or ``re:`` regex; :func:`search_regex`): the ids
  of the matching rows among the window once, then among each tick's new rows.

Not thread-safe by itself: the view calls it with its lock held.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any

import numpy as np

from .._validate import Clock
from ..errors import ConfigError
from ..stats import RateMeter
from .packing import CATEGORY_COLUMNS, CodeMap, histogram, pack_rows

log = logging.getLogger("wsnotebook")

__all__ = [
    "DEFAULT_REFRESH_HZ",
    "LATENCY_SAMPLE",
    "MAX_REFRESH_HZ",
    "MIN_REFRESH_HZ",
    "PAGE_ROWS",
    "RESET_ROWS",
    "WINDOWS",
    "WINDOW_ROWS",
    "Message",
    "MonitorModel",
    "check_options",
    "client_options",
    "reason_text",
    "resolve",
    "search_regex",
]

#: Rows the browser keeps (the newest); older ones leave its window.
WINDOW_ROWS = 100_000
#: Rows sent by the first tick after a reset, then per older page.
RESET_ROWS = 20_000
PAGE_ROWS = 20_000
#: Default tick rate and its bounds, in Hz.
DEFAULT_REFRESH_HZ = 4.0
MIN_REFRESH_HZ = 0.2
MAX_REFRESH_HZ = 30.0
#: Chart windows offered by the monitor (label -> seconds).
WINDOWS: dict[str, int] = {"1m": 60, "5m": 300, "15m": 900, "all": 0}
#: Most rows used for the latency percentiles of a bare frame (a client's come from its
#: live events only).
LATENCY_SAMPLE = 2000

#: One message to the browser: a JSON header and binary buffers.
Message = tuple[dict[str, Any], list[bytes]]


def check_options(refresh_hz: Any, window: Any, split_by_type: Any) -> float:
    """The monitor's options checked (:class:`ConfigError` naming the bad one)."""
    if isinstance(refresh_hz, bool) or not isinstance(refresh_hz, (int, float, np.number)):
        raise ConfigError(f"refresh_hz must be a number, got {refresh_hz!r}")
    if not MIN_REFRESH_HZ <= refresh_hz <= MAX_REFRESH_HZ:
        raise ConfigError(
            f"refresh_hz must be in {MIN_REFRESH_HZ}..{MAX_REFRESH_HZ}, got {refresh_hz!r}"
        )
    if window not in WINDOWS:
        raise ConfigError(f"window must be one of {list(WINDOWS)}, got {window!r}")
    if not isinstance(split_by_type, (bool, np.bool_)):
        raise ConfigError(f"split_by_type must be True or False, got {split_by_type!r}")
    return float(refresh_hz)


def resolve(target: Any) -> tuple[Any, Any, Any]:
    """(frame, client, server) for a Client, Server or EventFrame (duck-typed)."""
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


def client_options(server: Any, ssl: Any) -> dict[str, Any]:
    """``connect()`` options for the monitor's own client of ``server``: in-process (the
    server is in this process by construction: no socket, no WebSocket framing, no JSON
    round trip; ~0.8x the CPU per event, see benchmarks/README.md "Issue 20"; it falls back to
    the loopback socket when the server cannot take it), its token, and for a TLS server ``ssl``
    or else the server's own client-side context (used by that fallback)."""
    options: dict[str, Any] = {"in_process": True}
    token = getattr(server, "token", None)
    if token:
        options["token"] = token
    if ssl is None and str(server.url).startswith("wss:"):
        make_context = getattr(server, "client_ssl_context", None)
        ssl = make_context() if callable(make_context) else None
    if ssl is not None:
        options["ssl"] = ssl
    return options


def search_regex(box: str) -> str | None:
    """The pattern the search box asks for: its text searched literally, or, after a ``re:``
    prefix, a regular expression (Python ``re`` has no time limit: literal by default)."""
    if not box:
        return None
    if box.startswith("re:"):
        return box[3:] or None
    return re.escape(box)


_REASONS = (
    ("Connect call failed", "connection refused"),
    ("Connection refused", "connection refused"),
    ("Name or service not known", "host not found"),
    ("nodename nor servname", "host not found"),
    ("Temporary failure in name resolution", "host not found"),
    ("timed out", "timed out"),
    ("HTTP 401", "unauthorized (token?)"),
    ("HTTP 403", "forbidden (token?)"),
    ("HTTP 404", "no stream at this URL (404)"),
    ("certificate", "TLS certificate rejected"),
)


def reason_text(last_disconnect: Any) -> str | None:
    """A short, readable reason for a client's last failure (``metrics()["last_disconnect"]``,
    e.g. ``"refused: [Errno 111] Connect call failed ..."`` -> ``"connection refused"``)."""
    if not last_disconnect:
        return None
    text = str(last_disconnect)
    for needle, reason in _REASONS:
        if needle.lower() in text.lower():
            return reason
    return text[:120]


def _metrics(obj: Any) -> dict[str, Any]:
    if obj is None:
        return {}
    try:
        m = obj.metrics()
    except Exception:
        log.debug("monitor: metrics() failed", exc_info=True)
        return {}
    return m if isinstance(m, dict) else {}


def _count(value: Any) -> int:
    """A metric as an int: numbers as is, dicts of counters summed, anything else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    if isinstance(value, dict):
        return sum(_count(v) for v in value.values())
    return 0


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


#: Seconds the status bar keeps the CPU budget's note after its counters last moved (a note
#: shown for good after one throttle at start-up read as a standing problem).
BUDGET_NOTE_S = 30.0


class MonitorModel:
    """What one monitor sends to the browser, tick by tick (see the module docstring)."""

    def __init__(
        self, frame: Any, client: Any, server: Any, clock: Clock, *, window_rows: int = WINDOW_ROWS
    ) -> None:
        self.frame, self.client, self.server = frame, client, server
        self.window_rows = window_rows
        self.paused = False
        self.search_error: str | None = None
        self._pattern: str | None = None
        self._search_dirty = False
        self._rate = RateMeter(window=5.0, clock=clock)
        self._clock = clock
        self._metrics_at = -math.inf
        self._cm: dict[str, Any] = {}
        self._sm: dict[str, Any] = {}
        self._last_total: int | None = None
        # the CPU budget's counters when last seen, and when they last moved (see status)
        self._budget_seen: tuple[Any, ...] | None = None
        self._budget_moved_at = -math.inf
        self.request_reset()

    def use_client(self, client: Any) -> None:
        """Show ``client``'s frame from now on (a Server monitor's own client)."""
        self.client, self.frame = client, client.frame
        self._metrics_at = -math.inf
        self.request_reset()

    def request_reset(self) -> None:
        """Send the browser a fresh window at the next tick (new dictionaries too)."""
        self.maps = {short: CodeMap() for _, short in CATEGORY_COLUMNS}
        self._reset = True
        self._seen: int | None = None  # frame.total when the newest row was sent
        self._seen_len = 0
        self._seen_dropped = 0
        self._oldest: int | None = None  # frame index of the oldest row sent
        self._search_dirty = self._pattern is not None

    # ----------------------------------------------------------------- search
    def set_search(self, box: str) -> str | None:
        """Use the search box's text from the next tick; a regex that does not compile is
        left out and its message returned (shown in the widget, never raised): the search in
        use stays as it was (a regex is often incomplete while it is typed, and showing every
        row would read as "everything matched")."""
        pattern = search_regex(box or "")
        self.search_error = None
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.search_error = f"bad regex: {exc}"
                return self.search_error
        if pattern != self._pattern:
            self._pattern = pattern
            self._search_dirty = True
        return self.search_error

    @property
    def pattern(self) -> str | None:
        """The search pattern in use (a regex), or None."""
        return self._pattern

    @property
    def searching(self) -> bool:
        return self._pattern is not None

    def _matches(self, scan: int) -> np.ndarray:
        return np.asarray(self.frame.match_ids(search=self._pattern, scan=scan), dtype=np.int64)

    # ----------------------------------------------------------------- the tick
    def messages(self) -> list[Message]:
        """The messages of one tick, in order (empty when nothing changed)."""
        if self.paused or self.frame is None:
            return []
        out: list[Message] = []
        frame = self.frame
        if not self._reset and self._seen is not None:
            tail = frame.tail_columns(self.window_rows, since=self._seen)
            expected = (
                self._seen_len + (tail.total - self._seen) - (tail.dropped - self._seen_dropped)
            )
            if tail.retained < expected or tail.total < self._seen:  # cleared: start over
                self.request_reset()
        if self._reset or self._seen is None:
            tail = frame.tail_columns(min(RESET_ROWS, self.window_rows))
            out.append(self._reset_message(tail))
            self._search_dirty = False
        elif len(tail):
            match = self._matches(len(tail)) if self._pattern is not None else None
            out.append(self._rows_message("rows", tail, match))
        self._seen, self._seen_len, self._seen_dropped = tail.total, tail.retained, tail.dropped
        self._count(tail.total)
        if self._search_dirty:
            self._search_dirty = False
            out.append(self._match_message())
        page = self._older_page()
        if page is not None:
            out.append(page)
        return out

    def _count(self, total: int) -> None:
        if self._last_total is not None and total > self._last_total:
            self._rate.add(total - self._last_total)
        self._last_total = total

    def _rows_message(self, kind: str, tail: Any, match: np.ndarray | None) -> Message:
        header, buffers = pack_rows(tail, self.maps, match)
        header["kind"] = kind
        header["first"] = tail.total - len(tail)
        header["total"] = tail.total
        return header, buffers

    def _reset_message(self, tail: Any) -> Message:
        self._reset = False
        header, buffers = pack_rows(
            tail, self.maps, self._matches(self.window_rows) if self._pattern else None
        )
        header["kind"] = "reset"
        header["first"] = tail.total - len(tail)
        header["total"] = tail.total
        header["window"] = self.window_rows
        header["searching"] = self._pattern is not None
        self._oldest = tail.total - len(tail)
        # the chart's history: every retained row, binned per second and type
        cols, values = self.frame.numeric_columns(["timestamp", "hook_event_type"])
        codes, new = self.maps["type"].remap(cols["hook_event_type"], values[2])
        if new:
            header["dicts"].setdefault("type", [])
            known = set(header["dicts"]["type"])
            header["dicts"]["type"] += [v for v in new if v not in known]
        h_header, h_buffers = histogram(cols["timestamp"], codes)
        header["hist"] = h_header
        header["buffers"] = header["buffers"] + ["hist_" + b for b in h_header["buffers"]]
        return header, buffers + h_buffers

    def _match_message(self) -> Message:
        ids = self._matches(self.window_rows) if self._pattern is not None else np.empty(0)
        header = {
            "kind": "match",
            "searching": self._pattern is not None,
            "n": len(ids),
            "buffers": ["match"],
        }
        return header, [np.asarray(ids, dtype="<f8").tobytes()]

    def _older_page(self) -> Message | None:
        """The next older page of the window, if the browser's window is not full."""
        if self._oldest is None or self._seen is None:
            return None
        have = self._seen - self._oldest
        oldest_retained = self._seen - self._seen_len
        want = min(PAGE_ROWS, self.window_rows - have, self._oldest - oldest_retained)
        if want <= 0:
            return None
        tail = self.frame.tail_columns(want, skip=self._seen - self._oldest)
        if not len(tail) or tail.total != self._seen:  # the frame moved: next tick
            return None
        header, buffers = pack_rows(tail, self.maps)
        header["kind"] = "older"
        header["first"] = self._oldest - len(tail)
        self._oldest -= len(tail)
        return header, buffers

    # ----------------------------------------------------------------- status
    def status(
        self, *, stopped: bool, errors: int, budget: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The status bar's values (JSON-ready): the true state and its reason, the URL,
        events live and backfill apart, rates, losses and latency of live events."""
        # metrics() sorts the latency samples: at most twice a second (the counters below that
        # come from the frame are read every tick)
        now = self._clock()
        if now - self._metrics_at >= 0.5 or stopped:
            self._metrics_at = now
            self._cm, self._sm = _metrics(self.client), _metrics(self.server)
        cm, sm = self._cm, self._sm
        frame = self.frame
        total = int(getattr(frame, "total", 0) or 0) if frame is not None else 0
        if stopped and self._seen is not None:
            # a stopped view counts what it holds: rows a source still flushed into the frame
            # after the last send (a closing client's final burst) are not in it
            total = min(total, self._seen)
        if self._last_total is None:
            self._count(total)
        reason = None
        if stopped:
            state = "stopped"
        elif self.server is not None and not getattr(self.server, "running", True):
            state = "server stopped"
        elif self.client is not None:
            state = str(getattr(self.client, "state", "?"))
            if state in ("reconnecting", "connecting", "closed"):
                reason = reason_text(cm.get("last_disconnect"))
            error = getattr(self.client, "error", None)
            if error is not None and state == "closed":
                reason = reason_text(str(error)) or reason
        else:
            state = "frame"
        status: dict[str, Any] = {"state": state, "reason": reason}
        url = cm.get("url") or (getattr(self.server, "url", None) if self.server else None)
        status["url"] = str(url) if url else None
        if self.server is not None:
            status["clients"] = sm.get("connections")
        status["events"] = total
        status["rows"] = len(frame) if frame is not None else 0
        live = cm.get("live_events")
        if isinstance(live, int) and self.client is not None:
            received = _count(cm.get("events"))
            status["live"] = min(live, received)
            status["backfill"] = max(0, received - live)
        status["events_per_s"] = 0.0 if stopped else float(self._rate.rate())
        if self.client is not None:
            status["reconnects"] = _count(cm.get("reconnects"))
            lat = cm.get("latency_ms") or {}
            status["p50_ms"], status["p99_ms"] = _number(lat.get("p50")), _number(lat.get("p99"))
        elif frame is not None:
            status["p50_ms"], status["p99_ms"] = self.frame_latency()
        status["dropped"] = (
            int(getattr(frame, "dropped", 0) or 0)
            + _count(cm.get("dropped"))
            + _count(sm.get("dropped_slow_clients", sm.get("dropped")))
        )
        status["gaps"] = int(getattr(frame, "gaps_total", 0) or 0) if frame is not None else 0
        status["errors"] = errors + _count(cm.get("errors")) + _count(sm.get("errors"))
        status["paused"] = self.paused
        notes = []  # a bad regex is said once, at the search box (the monitor's notice)
        budget = budget or {}
        counters = tuple(
            budget.get(k) or 0 for k in ("throttle_pauses", "producer_waits", "coalesced_ticks")
        )
        seen = self._budget_seen
        # counters already non-zero when first seen moved before this monitor: not news; a
        # counter that went down was reset (set_cpu_budget): not news either
        if seen is not None and any(a > b for a, b in zip(counters, seen)):
            self._budget_moved_at = now
        self._budget_seen = counters
        if now - self._budget_moved_at < BUDGET_NOTE_S:
            # The CPU budget deferred background work to keep the kernel responsive: say so
            # while it does (the totals stay in wsnotebook.budget_stats()).
            # In the user's words: what it does and why, then the totals.
            notes.append(
                f"keeping to {budget.get('cpu_budget', 0):g} core so cells stay responsive: "
                f"paused {budget.get('throttled_s', 0):.1f} s, "
                f"producers held {budget.get('producer_wait_s', 0):.1f} s, "
                f"{budget.get('coalesced_ticks', 0)} sends merged"
            )
        if notes:
            status["note"] = " · ".join(notes)
        return status

    def frame_latency(self) -> tuple[float | None, float | None]:
        """p50/p99 of ``client_received - timestamp`` over the newest rows of a bare frame."""
        try:
            cols, _ = self.frame.numeric_columns(
                ["timestamp", "client_received"], last=LATENCY_SAMPLE
            )
            lat = cols["client_received"] - cols["timestamp"]
            lat = lat[np.isfinite(lat)]
            if not len(lat):
                return (None, None)
            p50, p99 = np.percentile(lat, [50, 99])
            return (float(p50), float(p99))
        except Exception:
            log.debug("monitor: latency failed", exc_info=True)
            return (None, None)
