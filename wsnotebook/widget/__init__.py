"""The live monitor: an anywidget whose browser side (``static/monitor.js``) renders a
virtualized table, pickers, a throughput chart with a time brush, swim lanes, a detail pane and
the question panel, fed by a throttled tick that sends only the new rows as binary buffers.

Modules: ``viewmodel`` (what the next tick sends, sans-I/O) · ``packing`` (the binary column
layout, stable category codes, row texts) · ``view`` (:class:`Monitor`, the widget: traits,
tick scheduling, requests from the browser, lifetime, and :func:`monitor`) · ``actions``
(detail and export requests) · ``questions`` (human in the loop) · ``render`` (static HTML of
the table and status line, for renderers without widgets) · ``preview`` (cell text of a
payload) · ``running`` (the running monitors, one per target).
Other subpackages import only the names below.
"""

from __future__ import annotations

from .running import running_monitors, stop_all
from .view import Monitor, monitor

__all__ = ["Monitor", "monitor", "running_monitors", "stop_all"]
