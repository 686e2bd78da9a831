"""The monitor's view-model: what the status line, table, dropdowns and chart show, computed
from the monitored frame (and its client/server metrics) and the filter state.

Pure of widgets: nothing here imports ipywidgets or bqplot, so any front end (the ipywidgets
view in :mod:`.view`, an anywidget one) can drive it.  It reads the frame and the metrics of the
client and server; it never writes to them (``clear`` is the view's action).

Owns: the option bounds (``MAX_ROWS``, refresh rate, ``WINDOWS``), the filter query, the change
bookkeeping that keeps a tick O(rows shown) (the table is recomputed only when
``frame.version`` or the query changed, or after :meth:`MonitorModel.mark_table_stale`; the slow
part, i.e. dropdowns, latency and chart, at most once a second), the events/s meter and the
status dict.  Bounds: a search scans at most the newest ``SEARCH_SCAN_ROWS`` rows, a dropdown
offers at most ``MAX_OPTIONS`` values, latency percentiles use the newest ``LATENCY_SAMPLE``
rows.  Not thread-safe by itself: the view calls it with its lock held.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validate import Clock, integer
from ..errors import ConfigError
from ..stats import RateMeter

log = logging.getLogger("wsnotebook")

__all__ = [
    "ALL",
    "DEFAULT_REFRESH_HZ",
    "DEFAULT_ROWS",
    "FILTERS",
    "LATENCY_SAMPLE",
    "MAX_OPTIONS",
    "MAX_REFRESH_HZ",
    "MAX_ROWS",
    "MIN_REFRESH_HZ",
    "SEARCH_SCAN_ROWS",
    "WINDOWS",
    "MonitorModel",
    "Query",
    "chart_range",
    "check_options",
    "client_options",
    "dropdown_options",
    "nice_ceiling",
    "resolve",
    "search_regex",
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

ALL = ""  # dropdown value meaning "no filter"
#: The filter dropdowns: (column, label of its "all ..." entry).
FILTERS = (("source_app", "apps"), ("session_id", "sessions"), ("hook_event_type", "types"))


class Query(NamedTuple):
    """The table's filter state: ``None`` means "no filter"; ``search`` is a regex."""

    source_app: str | None
    session_id: str | None
    hook_event_type: str | None
    search: str | None
    limit: int


def check_options(
    rows: Any, refresh_hz: Any, window: Any, split_by_type: Any, chart: Any
) -> tuple[int, float]:
    """The monitor's options checked (:class:`ConfigError` naming the bad one): ``rows`` as an
    int and ``refresh_hz`` as a float."""
    rows = integer("rows", rows, 1, MAX_ROWS)
    # np.number too (a np.float32 rate is fine), which _validate.bounded does not take
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
    return rows, float(refresh_hz)


def resolve(target: Any) -> tuple[Any, Any, Any]:
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


def client_options(server: Any, ssl: Any) -> dict[str, Any]:
    """``connect()`` options for the monitor's own loopback client of ``server``: its token,
    and for a TLS server ``ssl`` or else the server's own client-side context."""
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
    return options


def search_regex(box: str) -> str | None:
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


def dropdown_options(label: str, values: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """(text, value) pairs of a filter dropdown: "all <label>" first."""
    return ((f"all {label}", ALL), *((str(v), str(v)) for v in values))


def nice_ceiling(value: float) -> float:
    """The smallest 1/2/5 x 10^k at or above ``value`` (at least 1): a steady chart top."""
    if not value > 1.0 or not math.isfinite(value):
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * exp >= value:
            return m * exp
    return 10.0 * exp


def chart_range(
    x: np.ndarray, y: np.ndarray, window_s: int
) -> tuple[np.datetime64, np.datetime64, float] | None:
    """(x start, x end, y top) of the chart: the whole window ending at the newest bin (it
    moves only when the data moves), a 1/2/5 top above the highest rate; ``None`` if no bins."""
    if not len(x):
        return None
    end = x[-1] + np.timedelta64(1, "s")
    start = end - np.timedelta64(window_s, "s")
    top = float(np.nanmax(y)) if y.size else 0.0
    return start, end, nice_ceiling(top * 1.15)


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


def _no_chart() -> tuple[np.ndarray, np.ndarray, list[str]]:
    return np.array([], dtype="datetime64[ms]"), np.array([], dtype=float), []


class MonitorModel:
    """What one monitor shows of a frame (and of the client/server feeding it)."""

    def __init__(self, frame: Any, client: Any, server: Any, clock: Clock) -> None:
        self.frame, self.client, self.server = frame, client, server
        self.paused = False
        self.regex_error: str | None = None
        self.latency: tuple[float | None, float | None] = (None, None)
        self._dirty = True
        self._last_version: Any = None
        self._last_query: Query | None = None
        self._last_slow = -math.inf
        self._slow_version: Any = None
        self._rate = RateMeter(window=5.0, clock=clock)
        self._last_total: int | None = None
        self._cat_keys: dict[str, Any] = {}

    def use_client(self, client: Any) -> None:
        """Show ``client``'s frame from now on (a restarted Server monitor's new client)."""
        self.client, self.frame = client, client.frame
        self.mark_table_stale()
        self.mark_chart_stale()

    def mark_table_stale(self) -> None:
        """Recompute the table (and dropdowns) on the next tick, whatever changed."""
        self._dirty = True

    def mark_chart_stale(self) -> None:
        """Run the slow part (dropdowns, latency, chart) on the next tick."""
        self._last_slow = -math.inf

    # ----------------------------------------------------------------- per tick
    def count_total(self) -> int:
        """``frame.total`` now; the growth since the last call feeds the events/s meter."""
        frame = self.frame
        total = int(getattr(frame, "total", len(frame)))
        if self._last_total is not None and total > self._last_total:
            self._rate.add(total - self._last_total)
        self._last_total = total
        return total

    def query(
        self, source_app: str, session_id: str, hook_event_type: str, search_box: str, rows: int
    ) -> Query:
        """The query for the filter widgets' values; a search regex that does not compile is
        left out and its error kept in ``regex_error`` (shown, never raised)."""
        search = search_regex(search_box)
        self.regex_error = None
        if search:
            try:
                re.compile(search)
            except re.error as exc:
                self.regex_error = f"bad regex: {exc}"
                search = None
        return Query(
            source_app or None, session_id or None, hook_event_type or None, search, int(rows)
        )

    def filters_due(self, query: Query) -> bool:
        return self._dirty or query != self._last_query

    def table_due(self, version: Any, query: Query) -> bool:
        return self._dirty or version != self._last_version or query != self._last_query

    def table_rows(self, query: Query) -> Any:
        """The newest ``query.limit`` matching rows, as plain columns (no DataFrame)."""
        return self.frame.plain_table(
            query.source_app,
            query.session_id,
            query.hook_event_type,
            search=query.search,
            limit=query.limit,
            # a search that matches rarely would scan the whole frame every tick
            scan=SEARCH_SCAN_ROWS if query.search else None,
        )

    def table_shown(self, version: Any, query: Query) -> None:
        """The table now shows ``query`` at ``version``: no recompute until either changes."""
        self._last_version, self._last_query, self._dirty = version, query, False

    def slow_due(self, now: float) -> bool:
        return now - self._last_slow >= 1.0

    def slow_started(self, now: float) -> None:
        """The once-a-second part (dropdowns, latency, chart) runs at ``now``."""
        self._last_slow = now

    def refresh_latency(self, version: Any) -> None:
        """Recompute the latency percentiles if the frame changed since they were computed."""
        if version != self._slow_version:
            self.latency = self.latency_now()
            self._slow_version = version

    def filter_options(
        self, column: str, label: str, current: str
    ) -> tuple[tuple[str, str], ...] | None:
        """The options of ``column``'s dropdown from ``frame.categories``, or ``None`` when its
        categories (and ``current``) are as last time.  At most ``MAX_OPTIONS`` values: the
        newest first-seen ones (sessions newest first, apps and types sorted); ``current`` stays
        offered even after a clear."""
        try:
            seen = self.frame.categories(column)
        except Exception:
            seen = []
        key = (len(seen), seen[-1] if seen else None, current)
        if self._cat_keys.get(column) == key:
            return None  # same categories as last time: nothing to rebuild
        self._cat_keys[column] = key
        recent = [str(v) for v in seen[-MAX_OPTIONS:]]
        values = recent[::-1] if column == "session_id" else sorted(recent)
        if current and current not in values:
            values.append(current)  # keep the user's choice visible even after a clear
        return dropdown_options(label, values)

    # ----------------------------------------------------------------- slow part
    def latency_now(self) -> tuple[float | None, float | None]:
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

    def chart_data(self, window_s: int, split: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(x, y, labels): events/s per 1 s bin over the last ``window_s`` seconds; ``y`` is
        2-D (one row per ``hook_event_type`` in ``labels``) when ``split``, else ``["all"]``."""
        # The window ends now (+1 s of clock skew), not at the newest timestamp: one event with a
        # wrong clock (or microseconds sent as milliseconds) must not move the chart into the
        # future or past what datetime64 can hold.
        try:
            data = self.frame.throughput(
                "1s",
                window=f"{window_s}s",
                by="hook_event_type" if split else None,
                end=time.time() * 1000.0 + 1000.0,
            )
        except TypeError:  # a frame without window/by/end support
            data = self.frame.throughput("1s")
        if data is None or len(data) == 0:
            return _no_chart()
        data = data[data.index.notna()]
        if len(data) == 0:
            return _no_chart()
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

    # ----------------------------------------------------------------- status line
    def status(
        self, total: int, *, stopped: bool, errors: int, searching: bool, budget: dict[str, Any]
    ) -> dict[str, Any]:
        """The status dict :func:`~.render.render_status` shows.  ``errors`` are the view's
        tick errors; ``budget`` is ``runtime.loop.budget_stats()``."""
        cm = _metrics(self.client)
        sm = _metrics(self.server)
        if stopped:
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
        status["gaps"] = int(getattr(self.frame, "gaps_total", 0) or 0)
        status["errors"] = errors + _count(cm.get("errors")) + _count(sm.get("errors"))
        status["p50_ms"], status["p99_ms"] = self.latency
        notes = []
        if self.paused:
            notes.append("⏸ paused")
        if self.regex_error:
            notes.append(self.regex_error)
        elif searching and len(self.frame) > SEARCH_SCAN_ROWS:
            notes.append(f"search: newest {SEARCH_SCAN_ROWS:,} rows")
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
