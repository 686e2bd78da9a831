"""Event builders shared by the protocol tests (tests/unit/protocol/)."""

from __future__ import annotations

from typing import Any


def ev(i: int | None, **fields: Any) -> dict[str, Any]:
    """A valid hook event with id ``i`` (none when ``None``); ``fields`` override or add."""
    event: dict[str, Any] = {
        "source_app": "app",
        "session_id": "s",
        "hook_event_type": "Stop",
        "payload": {"i": i},
    }
    if i is not None:
        event["id"] = i
    event.update(fields)
    return event
