"""The live monitor widget: ``wsnotebook.monitor(client_or_server_or_frame)``.

:class:`Monitor` **is** a widget (an ``anywidget.AnyWidget``: synced traits and one ES
module, ``static/monitor.js``, shipped in the package; no CDN, no build step), so it composes in
``VBox``/``Tab``/``HBox``.  The browser owns the rendering: a virtualized table of a bounded
window (:data:`~.viewmodel.WINDOW_ROWS` rows: sort by any column, column choice and resize,
"follow newest" that pauses while the user scrolls away), searchable app/session/type pickers,
a detail pane (pretty payload, the event's ``chat`` transcript), a canvas throughput chart
(total and by type, zoom, brush to filter the table to a time range) with per-agent swim lanes,
the status bar and the human-in-the-loop question panel.

What the kernel does (see :mod:`.viewmodel`): a throttled tick (``refresh_hz``, default 4 Hz,
never per event) on the background loop, its work in a worker thread, sends only the rows added
since the last tick as binary column buffers (custom messages, ``DataView`` in JavaScript), the
search matches, and the status / question traits when they changed.  Cost per tick: O(new
rows).  Payload text, an export (CSV/Parquet of the current filter) and answers are done on
request, off the comm thread.

Threading: widget callbacks may run on a comm subshell thread (JupyterLab 4.6
``commsOverSubshells``): they only record a request under the monitor's lock, or start a
daemon thread.  Errors inside a tick are logged on the ``wsnotebook`` logger and counted
(``errors``), never raised into a cell; bad input (a regex that does not compile, an
unwritable export path) is a message in the widget (``notice``).

Lifetime: the tick stops on :meth:`Monitor.stop` / :meth:`Monitor.close`, when ``monitor()``
is called again for the same target (the previous one is closed), at kernel shutdown, with
``%ws stop all`` and ``%unload_ext wsnotebook`` (:mod:`.running`).  A stopped monitor says
"stopped" in its status bar.  Monitoring a **Server** opens a loopback client owned by the
monitor and closed with it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

import anywidget
import traitlets as t

from .._validate import Clock
from ..errors import ConfigError
from ..runtime import loop as _loop
from . import actions
from .pacing import TickPacer
from .questions import QuestionPanel
from .render import CSS, render_status, render_table
from .running import register, unregister
from .viewmodel import (
    DEFAULT_REFRESH_HZ,
    WINDOW_ROWS,
    WINDOWS,
    MonitorModel,
    check_options,
    client_options,
    resolve,
)

log = logging.getLogger("wsnotebook")

__all__ = ["Monitor", "monitor"]

_STATIC = Path(__file__).parent / "static"


class Monitor(anywidget.AnyWidget):
    """A live monitor of one Client, Server or EventFrame (see the module docstring).

    Counters: ``ticks`` (ticks run), ``sends`` (messages sent), ``errors`` (tick errors,
    logged).  What it sends is computed by ``mon.model`` (a :class:`~.viewmodel.MonitorModel`).
    """

    _esm = _STATIC / "monitor.js"
    _css = _STATIC / "monitor.css"

    status = t.Dict().tag(sync=True)
    questions: t.List[Any] = t.List().tag(sync=True)
    question_note = t.Unicode("").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)
    #: ``notice`` reports a success (an export written), not a problem
    notice_ok = t.Bool(False).tag(sync=True)
    #: the search box's text does not compile as a regex (the search in use is unchanged)
    search_error = t.Unicode("").tag(sync=True)
    search = t.Unicode("").tag(sync=True)
    paused = t.Bool(False).tag(sync=True)
    window = t.Unicode("1m").tag(sync=True)
    split_by_type = t.Bool(False).tag(sync=True)
    window_rows = t.Int(WINDOW_ROWS).tag(sync=True)
    snapshot = t.Dict().tag(sync=True)  # set by the browser: what a saved notebook shows

    def __init__(
        self,
        target: Any,
        *,
        refresh_hz: float = DEFAULT_REFRESH_HZ,
        window: str = "1m",
        split_by_type: bool = False,
        window_rows: int = WINDOW_ROWS,
        ssl: Any = None,
        start: bool = True,
        new: bool = False,
        clock: Clock = time.monotonic,
        **kwargs: Any,
    ) -> None:
        self.refresh_hz = check_options(refresh_hz, window, split_by_type)
        frame, client, server = resolve(target)
        if ssl is not None and server is None:
            raise ConfigError("ssl= applies only when monitoring a Server")
        super().__init__(window=window, split_by_type=bool(split_by_type), **kwargs)
        self.target = target
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._future: Any = None
        self._closed = False
        self._seen_views = False
        self._clock = clock
        self._owned_client: Any = None
        self._client_options: dict[str, Any] = {}
        self.ticks = self.sends = self.errors = 0
        self.independent = bool(new)  # not replaced by a later monitor() of the same target
        self.model = MonitorModel(frame, client, server, clock, window_rows=int(window_rows))
        self.window_rows = int(window_rows)
        self.panel = QuestionPanel(server or client)
        try:
            if server is not None:
                self._client_options = client_options(server, ssl)
                if getattr(server, "running", True):
                    self.model.use_client(self._open_client())
            self.on_msg(self._on_msg)
            self.observe(self._on_search, names="search")
            self.observe(self._on_pause, names="paused")
            self.observe(self._on_view_count, names="_view_count")
            self._view_count = 0
            if start:
                self.start()
            else:
                self._set_status()
        except BaseException:
            # the monitor's own client (a Server target) must not outlive a failed construction
            client, self._owned_client = self._owned_client, None
            if client is not None:
                client.close()
            raise

    def _open_client(self) -> Any:
        from ..client import connect

        client = connect(self.model.server.url, **self._client_options)
        self._owned_client = client
        return client

    # ----------------------------------------------------------------- monitored objects
    @property
    def widget(self) -> Monitor:
        """The monitor itself (it is the widget; kept for code written for older versions)."""
        return self

    @property
    def frame(self) -> Any:
        return self.model.frame

    @property
    def client(self) -> Any:
        return self.model.client

    @property
    def server(self) -> Any:
        return self.model.server

    # ----------------------------------------------------------------- browser requests
    def _on_msg(self, _widget: Any, content: Any, buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        if kind == "hello":  # a view (re)loaded: it holds no rows
            with self._lock:
                self.model.request_reset()
                self.panel.invalidate()
        elif kind == "detail":
            self._background(self._send_detail, content.get("id"))
        elif kind == "answer":
            answer = {k: content[k] for k in ("permission", "choice", "response") if k in content}
            self.panel.answer(content.get("id"), self._question_done, **answer)
        elif kind == "export":
            self._background(self._export, content)
        elif kind == "clear":
            self.clear()

    def _background(self, fn: Any, arg: Any) -> None:
        threading.Thread(target=fn, args=(arg,), name="wsnotebook-monitor", daemon=True).start()

    def _send_detail(self, event_id: Any) -> None:
        frame = self.frame
        msg = (
            actions.detail(frame, event_id, self.model.pattern)
            if frame is not None
            else {"kind": "detail"}
        )
        self._push(msg, [])

    def _export(self, request: dict[str, Any]) -> None:
        if self.frame is None:
            self.notice = "export: nothing to export (no frame)"
            return
        request = dict(request)
        request["pattern"] = self.model.pattern
        ok, text = False, ""
        try:
            text, ok = actions.export(self.frame, request), True
        except actions.ExportError as exc:
            text = str(exc)
        except Exception as exc:
            text = f"export failed: {exc}"
        self.notice_ok = ok  # before the text: the browser draws both on the text's change
        self.notice = text

    def _question_done(self, text: str) -> None:
        self.question_note = text

    def _on_search(self, change: Any) -> None:
        with self._lock:
            error = self.model.set_search(str(change["new"] or ""))
        self.search_error = error or ""
        self.notice_ok = False
        self.notice = error or ""

    def _on_pause(self, change: Any) -> None:
        with self._lock:
            self.model.paused = bool(change["new"])
            if not self.model.paused:
                self.model.request_reset()

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

    def pause(self) -> None:
        """Freeze the table and chart (the status bar keeps updating)."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def clear(self) -> None:
        """Clear the monitored frame (its rows; counters such as ``total`` keep counting)."""
        with self._lock:
            try:
                if self.frame is not None:
                    self.frame.clear()
            except Exception:
                self.errors += 1
                log.exception("monitor: clear failed")
            self.model.request_reset()

    def start(self) -> None:
        """(Re)start the background tick; idempotent."""
        with self._lock:
            if self._closed:
                raise ConfigError("this monitor is closed; call wsnotebook.monitor() again")
            self._stop.clear()
            if self.running:
                return
            server = self.server
            if (
                server is not None
                and self._owned_client is None
                and getattr(server, "running", True)
            ):
                self.model.use_client(self._open_client())
            self._future = _loop.submit(self._run())
        register(self)

    def _halt_tick(self) -> None:
        fut, self._future = self._future, None
        if fut is not None:
            fut.cancel()

    def stop(self) -> None:
        """Stop the tick (the view keeps its rows and says "stopped"); close the monitor's own
        client."""
        self._stop.set()
        with self._lock:
            ticking = self._future is not None
            self._halt_tick()
            if ticking:
                self._send_rest()
            client, self._owned_client = self._owned_client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                log.debug("monitor: closing its client failed", exc_info=True)
        try:
            self._set_status()
        except Exception:
            log.debug("monitor: final status failed", exc_info=True)
        unregister(self)

    def _send_rest(self) -> None:
        """The rows added since the last tick, sent once more at stop (call with the lock held):
        the stopped view then holds every row its final status counts.  A failure (a kernel
        shutting down) is logged at debug level, not counted as a tick error."""
        try:
            for header, buffers in self.model.messages():
                self._push(header, buffers)
        except Exception:
            log.debug("monitor: the last rows were not sent at stop", exc_info=True)

    def close(self) -> None:
        """Stop, then close the widget (its views disappear)."""
        if not hasattr(self, "_lock"):  # a construction that failed (``Widget.__del__``)
            super().close()
            return
        self.stop()
        with self._lock:
            if self._closed:
                return
            self._closed = True
        super().close()

    def refresh(self) -> bool:
        """Run one tick now (any thread); True when something was sent."""
        with self._lock:
            return self._tick()

    # ----------------------------------------------------------------- the tick
    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pacer = TickPacer(1.0 / self.refresh_hz, loop.time())  # a fixed rate: see .pacing
        while not self._stop.is_set():
            await asyncio.sleep(pacer.delay(loop.time()))
            if self._stop.is_set():
                break
            await asyncio.to_thread(self._refresh_locked_safe)
            pacer.ticked(loop.time())

    def _refresh_locked_safe(self) -> None:
        try:
            with _loop.background_work(), self._lock:
                self._tick()
        except Exception:
            self._count_error()

    def _count_error(self) -> None:
        n = self.errors + 1
        if n <= 3 or n % 100 == 0:
            log.exception("monitor tick failed (%d errors so far, counted in Monitor.errors)", n)
        self.errors = n

    def _push(self, header: dict[str, Any], buffers: list[bytes]) -> None:
        if self.comm is None:
            return
        self.send(header, buffers)
        self.sends += 1

    def _tick(self) -> bool:
        """One refresh; call with the lock held.  O(new rows)."""
        self.ticks += 1
        before = self.sends
        try:
            for header, buffers in self.model.messages():
                self._push(header, buffers)
            shown = self.panel.refresh(self.frame, self._clock())
            if shown is not None:
                self.questions = shown
        except Exception:
            self._count_error()
        self._set_status()
        return self.sends > before

    def _set_status(self) -> None:
        status = self.model.status(
            stopped=self._stop.is_set(), errors=self.errors, budget=_loop.budget_stats()
        )
        status["pending"] = self.panel.pending
        if status != self.status:
            self.status = status

    # ----------------------------------------------------------------- display
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, plus a static HTML table for renderers without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        if isinstance(data, dict):
            try:
                rows = self.frame.plain_table(limit=20) if self.frame is not None else None
                status = dict(self.status or self.model.status(stopped=False, errors=0))
                data["text/html"] = CSS + render_status(status) + render_table(rows)
            except Exception:
                log.debug("monitor: static snapshot failed", exc_info=True)
        return bundle

    def __repr__(self) -> str:
        what = type(self.target).__name__
        return f"<wsnotebook.Monitor of {what} running={self.running} ticks={self.ticks}>"


def monitor(
    target: Any,
    *,
    refresh_hz: float = DEFAULT_REFRESH_HZ,
    window: str = "1m",
    split_by_type: bool = False,
    window_rows: int = WINDOW_ROWS,
    ssl: Any = None,
    new: bool = False,
) -> Monitor:
    """A live monitor widget for a Client, Server or EventFrame; returns at once.

    - ``refresh_hz``: tick rate, 0.2..30 Hz (default 4); a tick sends only the new rows.
    - ``window``: the chart's initial time window, one of ``"1m"``, ``"5m"``, ``"15m"``,
      ``"all"``.  ``split_by_type``: one chart line per ``hook_event_type`` at first.
    - ``window_rows``: rows the browser keeps, 1,000..1,000,000 (default 100,000, the newest).
    - ``ssl``: for a Server only, the ``SSLContext`` of the monitor's own loopback client.
    - ``new``: keep the running monitor of the same target (default: it is closed, so
      re-running a cell does not stack monitors).

    Raises :class:`~wsnotebook.ConfigError` for a bad target or option.
    """
    if window not in WINDOWS:
        raise ConfigError(f"window must be one of {list(WINDOWS)}, got {window!r}")
    if isinstance(window_rows, bool) or not isinstance(window_rows, int):
        raise ConfigError(f"window_rows must be an int, got {window_rows!r}")
    if not 1_000 <= window_rows <= 1_000_000:
        raise ConfigError(f"window_rows must be in 1000..1000000, got {window_rows!r}")
    mon = Monitor(
        target,
        refresh_hz=refresh_hz,
        window=window,
        split_by_type=split_by_type,
        window_rows=window_rows,
        ssl=ssl,
        new=new,
    )
    register(mon)
    return mon
