"""The live monitor: status line, table with filters and throughput chart on a throttled tick.

Modules: ``viewmodel`` (what is shown, from the frame and the filter state; no widgets) ·
``view`` (:class:`Monitor`: the ipywidgets, trait setting, tick scheduling, lifetime, and
:func:`monitor`) · ``render`` (HTML/CSS of the table and status line) · ``preview`` (cell text
of a payload, the JSON-text scanner) · ``chart`` (the bqplot throughput chart) · ``traits``
(set-if-changed, the widget tree walk) · ``running`` (the running monitors, one per target).
Other subpackages import only the names below.
"""

from __future__ import annotations

from .running import running_monitors, stop_all
from .view import Monitor, monitor

__all__ = ["Monitor", "monitor", "running_monitors", "stop_all"]
