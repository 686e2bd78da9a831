"""Human-in-the-loop (HITL) questions in the event model (pure; the seed dashboard's contract).

A *question* is an event whose top-level ``humanInTheLoop`` is an object::

    {"question": str, "responseWebSocketUrl": "ws://...", "type": "question"|"permission"|"choice",
     "choices"?: [str], "timeout"?: seconds, "requiresResponse"?: bool}

Its state is ``humanInTheLoopStatus``: ``{"status": "pending"}``, then ``{"status":
"responded", "respondedAt": ms, "response": {...}}`` (or ``timeout`` / ``error``).  An *update*
of an event already sent carries ``update_seq`` (its position in the stream; ``id`` stays the
event's).  Owns the field names, :func:`is_question`, :func:`status_of`, :func:`deadline_ms`,
:func:`is_pending` and :func:`newer_state` (the rule deciding whether a version replaces
another).

Bounds: a question's ``timeout`` is taken in seconds, :data:`DEFAULT_TIMEOUT_S` when absent or
not a positive number, and clamped to :data:`MIN_TIMEOUT_S`..:data:`MAX_TIMEOUT_S`.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "HITL_FIELD",
    "MAX_TIMEOUT_S",
    "MIN_TIMEOUT_S",
    "STATUSES",
    "STATUS_FIELD",
    "TERMINAL",
    "UPDATE_FIELD",
    "deadline_ms",
    "is_pending",
    "is_question",
    "newer_state",
    "status_of",
]

HITL_FIELD = "humanInTheLoop"
STATUS_FIELD = "humanInTheLoopStatus"
UPDATE_FIELD = "update_seq"
STATUSES = ("pending", "responded", "timeout", "error")
#: States an answer can no longer change.
TERMINAL = frozenset({"responded", "timeout", "error"})
#: A question's ``timeout`` (seconds): default and clamp bounds.
DEFAULT_TIMEOUT_S = 300.0
MIN_TIMEOUT_S = 1.0
MAX_TIMEOUT_S = 7 * 86_400.0


def is_question(event: Any) -> bool:
    """Does ``event`` (a dict) carry a ``humanInTheLoop`` object?"""
    return isinstance(event, dict) and isinstance(event.get(HITL_FIELD), dict)


def status_of(event: Any) -> str | None:
    """The question's state (``pending`` when it has no valid status), None for a non-question."""
    if not is_question(event):
        return None
    status = event.get(STATUS_FIELD)
    value = status.get("status") if isinstance(status, dict) else None
    return value if value in STATUSES else "pending"


def timeout_s(question: Any) -> float:
    """The question's ``timeout`` in seconds, defaulted and clamped (see the module bounds)."""
    raw = question.get("timeout") if isinstance(question, dict) else None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not math.isfinite(raw):
        return DEFAULT_TIMEOUT_S
    if raw <= 0:
        return DEFAULT_TIMEOUT_S
    return min(max(float(raw), MIN_TIMEOUT_S), MAX_TIMEOUT_S)


def deadline_ms(event: dict[str, Any]) -> float | None:
    """When the question stops waiting (epoch ms): asked (``server_received``, else
    ``timestamp``) plus its timeout; None when the event has neither stamp."""
    asked = event.get("server_received")
    if not isinstance(asked, (int, float)) or isinstance(asked, bool):
        asked = event.get("timestamp")
    if not isinstance(asked, (int, float)) or isinstance(asked, bool):
        return None
    return float(asked) + 1000.0 * timeout_s(event.get(HITL_FIELD))


def is_pending(event: Any, now_ms: float) -> bool:
    """A question still waiting for an answer at ``now_ms`` (pending and not past its
    deadline)."""
    if status_of(event) != "pending":
        return False
    deadline = deadline_ms(event)
    return deadline is None or now_ms < deadline


def newer_state(old: Any, new: Any) -> bool:
    """May version ``new`` of an event replace version ``old``?  Yes, unless it would take a
    question back from a final state (responded / timeout / error) to pending."""
    return not (status_of(old) in TERMINAL and status_of(new) == "pending")
