"""Fixtures shared by every test suite (keep small: suite-specific ones live beside the suite).

* ``hook_event(i, **fields)`` -> a valid seed-style hook event with ``id == i`` and the three
  epoch-ms stamps (``timestamp``, ``server_received`` +1.5 ms, ``client_received`` +4 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

T0_MS = 1_760_000_000_000.0
HOOK_TYPES = ("PreToolUse", "PostToolUse", "Notification", "Stop")


def make_hook_event(i: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": i,
        "source_app": f"app{i % 2}",
        "session_id": f"session-{i % 3}",
        "hook_event_type": HOOK_TYPES[i % len(HOOK_TYPES)],
        "payload": {"tool_name": "Bash", "tool_input": {"command": f"echo {i}"}, "n": i},
        "timestamp": T0_MS + i,
        "server_received": T0_MS + i + 1.5,
        "client_received": T0_MS + i + 4.0,
    }
    event.update(fields)
    return event


@pytest.fixture
def hook_event() -> Callable[..., dict[str, Any]]:
    return make_hook_event
