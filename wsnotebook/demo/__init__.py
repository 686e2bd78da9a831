"""Public face of the synthetic agent-hook event generator.

Modules: ``corpus`` (vocabularies and text pools; pure) · ``generator`` (:func:`make_event`,
:class:`EventGenerator`; pure, seeded) · ``producer`` (:class:`DemoProducer`: pacing and
publishing on the background loop, the registry of running producers).

``start_demo(server_or_url, rate=50)`` feeds a server with realistic Claude Code hook events
(SessionStart, UserPromptSubmit, Pre/PostToolUse, SubagentStop, Notification, Stop...);
``EventGenerator`` and ``make_event`` produce them without any I/O, for tests and notebooks.
"""

from __future__ import annotations

from .generator import EventGenerator, make_event
from .producer import DemoProducer, active_producers, events_url, start_demo, stop_all

__all__ = [
    "DemoProducer",
    "events_url",
    "EventGenerator",
    "active_producers",
    "make_event",
    "start_demo",
    "stop_all",
]
