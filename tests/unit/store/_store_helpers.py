"""Small builders shared by the store tests (tests/unit/store/)."""

from __future__ import annotations

from typing import Any


def ev(**fields: Any) -> dict[str, Any]:
    """A valid hook event; ``fields`` override or add top-level fields."""
    base: dict[str, Any] = {
        "source_app": "app",
        "session_id": "s1",
        "hook_event_type": "PreToolUse",
        "payload": {},
    }
    base.update(fields)
    return base


def ids(stored: list[Any]) -> list[int]:
    """The ids of stored events, in order."""
    return [s.id for s in stored]
