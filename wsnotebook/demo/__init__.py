"""Public face of the synthetic agent-hook event generator (implementation in ``_demo``).

``start_demo(server_or_url, rate=50)`` feeds a server with realistic Claude Code hook events
(SessionStart, UserPromptSubmit, Pre/PostToolUse, SubagentStop, Notification, Stop...);
``EventGenerator`` and ``make_event`` produce them without any I/O, for tests and notebooks.
"""

from __future__ import annotations

from .producer import (
    DemoProducer,
    EventGenerator,
    active_producers,
    events_url,
    make_event,
    start_demo,
    stop_all,
)

__all__ = [
    "DemoProducer",
    "events_url",
    "EventGenerator",
    "active_producers",
    "make_event",
    "start_demo",
    "stop_all",
]
