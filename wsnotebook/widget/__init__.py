"""The live monitor: status line, table with filters and throughput chart on a throttled tick."""

from __future__ import annotations

from .view import Monitor, monitor, running_monitors, stop_all

__all__ = ["Monitor", "monitor", "running_monitors", "stop_all"]
