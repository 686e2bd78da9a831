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
* **pause/resume** and **clear** buttons;
* the **questions** agents wait on (human in the loop, :mod:`.questions`), with answer controls.

This module is the ipywidgets view: the widgets, setting their traits, the tick's scheduling and
the monitor's lifetime.  What they show is computed by :mod:`.viewmodel` (no widgets), rendered
to HTML by :mod:`.render` and drawn on the chart by :mod:`.chart`.

How it refreshes
    A throttled tick (``refresh_hz``, default 4 Hz, bounds 0.2-30 Hz) is scheduled by the one
    background loop (:mod:`wsnotebook.runtime.loop`); its work runs in a worker thread so it
    never stalls the servers and clients on that loop.  The monitor keeps updating while the
    kernel is idle and while other cells run.  A tick is O(rows shown): the table is rebuilt
    only when ``frame.version`` or a filter changed, with ``frame.plain_table(..., limit=rows)``
    (a search scans at most the newest ``SEARCH_SCAN_ROWS`` rows: one that matches rarely would
    otherwise scan the whole frame every tick, ~90 ms at 500k rows here); the chart, the
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
import logging
import threading
import time
from typing import Any

from .._validate import Clock
from ..errors import ConfigError
from ..runtime import loop as _loop
from .chart import ThroughputChart
from .questions import QuestionPanel
from .render import CSS, render_status, render_table
from .running import register, unregister
from .traits import set_if_changed, walk
from .viewmodel import (
    DEFAULT_REFRESH_HZ,
    DEFAULT_ROWS,
    FILTERS,
    MAX_ROWS,
    WINDOWS,
    MonitorModel,
    check_options,
    client_options,
    dropdown_options,
    resolve,
)

log = logging.getLogger("wsnotebook")

__all__ = ["Monitor", "monitor"]


class Monitor:
    """A live monitor of one Client, Server or EventFrame (see the module docstring).

    Display it (it is the cell's value, or ``display(mon)``); the widget tree is ``mon.widget``.
    Counters: ``ticks`` (ticks run), ``renders`` (ticks that changed at least one trait),
    ``sends`` (trait values set), ``errors`` (tick errors, logged).  What it shows is computed
    by ``mon.model`` (a :class:`~.viewmodel.MonitorModel`).
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
        clock: Clock = time.monotonic,
    ) -> None:
        rows, self.refresh_hz = check_options(rows, refresh_hz, window, split_by_type, chart)
        self._owned_client: Any = None
        try:
            self._setup(target, ssl, clock)
            self._build_widgets(rows, window, bool(split_by_type), bool(chart))
            self._refresh_locked_safe()
            if start:
                self.start()
        except BaseException:
            # The monitor's own client (a Server target) must not outlive a failed construction.
            client, self._owned_client = self._owned_client, None
            if client is not None:
                client.close()
            raise

    def _setup(self, target: Any, ssl: Any, clock: Clock) -> None:
        self.target = target
        frame, client, server = resolve(target)
        if ssl is not None and server is None:
            raise ConfigError("ssl= applies only when monitoring a Server")
        self._client_options: dict[str, Any] = {}
        self.model = MonitorModel(frame, client, server, clock)
        if server is not None:
            self._client_options = client_options(server, ssl)
            self.model.use_client(self._open_client())
        self._clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._future: Any = None
        self._closed = False
        self._seen_views = False
        self.ticks = self.renders = self.sends = self.errors = 0

    def _open_client(self) -> Any:
        """A new loopback client of the monitored Server, owned (and closed) by the monitor."""
        from ..client import connect

        client = connect(self.model.server.url, **self._client_options)
        self._owned_client = client
        return client

    def _build_widgets(self, rows: int, window: str, split_by_type: bool, chart: bool) -> None:
        import ipywidgets as w

        self._css = w.HTML(CSS)
        self.status = w.HTML("")
        self.status.add_class("wsn-status")
        dd_layout = w.Layout(width="175px")
        self.source_app = w.Dropdown(options=dropdown_options("apps", []), layout=dd_layout)
        self.session_id = w.Dropdown(options=dropdown_options("sessions", []), layout=dd_layout)
        self.hook_event_type = w.Dropdown(options=dropdown_options("types", []), layout=dd_layout)
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

        self._throughput = ThroughputChart(self._set) if chart else None
        self.chart: Any = None if self._throughput is None else self._throughput.figure
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
        # human-in-the-loop questions, answered through the Server (or the Client) watched
        self.questions = QuestionPanel(self.model.server or self.model.client, self._set)
        children += [self.questions.widget, self.table]
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

    # ----------------------------------------------------------------- the monitored objects
    @property
    def frame(self) -> Any:
        """The monitored frame (a Server monitor's: its own client's)."""
        return self.model.frame

    @property
    def client(self) -> Any:
        return self.model.client

    @property
    def server(self) -> Any:
        return self.model.server

    # ----------------------------------------------------------------- callbacks (any thread)
    def _on_filter(self, change: Any) -> None:
        with self._lock:
            self.model.mark_table_stale()

    def _on_chart_option(self, change: Any) -> None:
        with self._lock:
            self.model.mark_chart_stale()

    def _on_pause(self, change: Any) -> None:
        with self._lock:
            paused = self.model.paused = bool(change["new"])
            self._set(self.pause_button, "description", "resume" if paused else "pause")
            self._set(self.pause_button, "icon", "play" if paused else "pause")
            self.model.mark_table_stale()

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
        return self.model.paused

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
            self.model.mark_table_stale()
            self.model.mark_chart_stale()

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
                self.model.use_client(self._open_client())
            self._future = _loop.submit(self._run())
        register(self)  # visible to stop_all() / %ws stop all again

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
        unregister(self)

    def close(self) -> None:
        """Stop, then close every widget of the monitor (views disappear)."""
        self.stop()
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for wid in walk(self.widget):
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
        """Set a trait only when its value differs, counting it in ``sends``."""
        if not set_if_changed(widget, name, value):
            return False
        self.sends += 1
        return True

    def _tick(self) -> bool:
        """One refresh; call with the lock held.  O(rows shown) except the <= 1 Hz slow part."""
        self.ticks += 1
        sends_before = self.sends
        now = self._clock()
        version = getattr(self.frame, "version", None)
        total = self.model.count_total()
        try:
            self._update_view(now, version)
            self.questions.refresh(self.frame, now)
        except Exception:
            self._count_error()
        self._set(self.status, "value", render_status(self._status(total)))
        changed = self.sends > sends_before
        if changed:
            self.renders += 1
        return changed

    def _update_view(self, now: float, version: Any) -> None:
        model = self.model
        query = model.query(
            self.source_app.value,
            self.session_id.value,
            self.hook_event_type.value,
            self.search.value,
            self.rows.value,
        )
        slow_due = model.slow_due(now)
        if model.paused:
            return
        if model.filters_due(query):
            self._update_filters()
        if model.table_due(version, query):
            self._set(self.table, "value", render_table(model.table_rows(query)))
            model.table_shown(version, query)
        if slow_due:
            model.slow_started(now)
            self._update_filters()
            model.refresh_latency(version)
            self._update_chart()

    def _update_filters(self) -> None:
        """Refresh the dropdowns' options (see :meth:`.MonitorModel.filter_options`)."""
        for column, label in FILTERS:
            wid = getattr(self, column)
            current = wid.value
            options = self.model.filter_options(column, label, current)
            if options is not None and tuple(wid.options) != options:
                wid.options = options
                self.sends += 1
                if wid.value != current:
                    wid.value = current

    def _update_chart(self) -> None:
        if self._throughput is None:
            return
        window_s = WINDOWS[self.window.value]
        x, y, labels = self.model.chart_data(window_s, bool(self.split.value))
        self._throughput.show(x, y, labels, window_s)

    def _status(self, total: int) -> dict[str, Any]:
        return self.model.status(
            total,
            stopped=self._stop.is_set(),
            errors=self.errors,
            searching=bool(self.search.value),
            budget=_loop.budget_stats(),
        )

    # ----------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        what = type(self.target).__name__
        return f"<wsnotebook.Monitor of {what} running={self.running} ticks={self.ticks}>"


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
    register(mon)
    return mon
