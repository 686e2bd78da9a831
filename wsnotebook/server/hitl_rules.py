"""The rules of answering a human-in-the-loop question (pure, no I/O).

Owns: which ``responseWebSocketUrl`` the server may connect to (:func:`delivery_refusal`,
loopback only unless the ``hitl_hosts`` allow-list says otherwise; :func:`normalise_hitl_hosts`
checks that option), what an answer body must hold (:func:`check_answer`), the events a new
question is stored as (:func:`with_pending`), and the ``responded`` / ``timeout`` versions of a
question (:func:`responded`, :func:`timed_out`).

Bounds: ``hitl_hosts`` holds at most :data:`MAX_HITL_HOSTS` names of at most 253 characters;
an answer's ``response`` / ``choice`` / ``respondedBy`` strings are at most
:data:`MAX_ANSWER_CHARS` characters.
"""

from __future__ import annotations

import ipaddress
import operator
from collections.abc import Iterable
from itertools import repeat
from typing import Any
from urllib.parse import urlsplit

from ..errors import AnswerError, ConfigError
from ..events import Event
from ..events.hitl import HITL_FIELD, STATUS_FIELD, UPDATE_FIELD
from .hostcheck import valid_host_name

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_HITL_HOSTS",
    "check_answer",
    "delivery_refusal",
    "normalise_hitl_hosts",
    "responded",
    "timed_out",
    "with_pending",
]

MAX_HITL_HOSTS = 256
MAX_ANSWER_CHARS = 100_000
_ANSWER_KEYS = {"question": "response", "permission": "permission", "choice": "choice"}


def normalise_hitl_hosts(hosts: Iterable[str] | None) -> tuple[str, ...]:
    """The ``hitl_hosts`` option: host names (or ``"*"``: any host) the server may connect to
    besides loopback, lower case, sorted; ConfigError when malformed."""
    if hosts is None:
        return ()
    if isinstance(hosts, (str, bytes)):
        raise ConfigError("hitl_hosts: expected a list of host names, got a string")
    out: set[str] = set()
    for host in hosts:
        if not isinstance(host, str) or not host.strip() or len(host) > 253:
            raise ConfigError(f"hitl_hosts: expected host names (1..253 characters), got {host!r}")
        name = host.strip().lower().strip("[]")
        if name != "*" and not valid_host_name(name):
            raise ConfigError(f"hitl_hosts: expected host names or '*', got {host!r}")
        out.add(name)
    if len(out) > MAX_HITL_HOSTS:
        raise ConfigError(f"hitl_hosts: at most {MAX_HITL_HOSTS} names, got {len(out)}")
    return tuple(sorted(out))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def delivery_refusal(url: Any, hosts: tuple[str, ...]) -> str | None:
    """Why the server will not open ``url`` (None: it may).  Allowed: ``ws://`` / ``wss://``
    with a valid port on a loopback host (``localhost``, ``127.0.0.0/8``, ``::1``), or on a
    host named in ``hosts`` (``"*"``: any)."""
    if not isinstance(url, str) or not url:
        return "no responseWebSocketUrl"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # ValueError when out of range or not a number
    except ValueError:
        return f"malformed responseWebSocketUrl {url[:200]!r}"
    if parts.scheme not in ("ws", "wss"):
        return f"responseWebSocketUrl must be ws:// or wss://, got {url[:200]!r}"
    if not host:
        return f"responseWebSocketUrl has no host: {url[:200]!r}"
    if _loopback(host) or "*" in hosts or host in hosts:
        return None
    return f"host {host!r} is not loopback nor in hitl_hosts"


def _string(body: dict[str, Any], key: str) -> None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_ANSWER_CHARS):
        raise AnswerError(
            f"Invalid request: {key} must be a string of at most {MAX_ANSWER_CHARS} characters",
            status=400,
        )


def check_answer(question: dict[str, Any], body: Any, event_id: int) -> dict[str, Any]:
    """The answer ``body`` checked against the question (AnswerError 400 naming the problem):
    an object; ``permission`` a boolean, ``response`` / ``choice`` / ``respondedBy`` strings;
    the field of the question's type present (``permission`` for a permission question,
    ``response`` for a question, ``choice`` for a choice, one of ``choices`` when listed; any
    one of them for another type); ``hookEvent`` an object when given."""
    if not isinstance(body, dict):
        raise AnswerError("Invalid request: the body must be a JSON object", status=400)
    for key in ("response", "choice", "respondedBy"):
        _string(body, key)
    permission = body.get("permission")
    if permission is not None and not isinstance(permission, bool):
        raise AnswerError("Invalid request: permission must be true or false", status=400)
    hook = body.get("hookEvent")
    if hook is not None and not isinstance(hook, dict):
        raise AnswerError("Invalid request: hookEvent must be an object", status=400)
    kind = question.get("type")
    needed = _ANSWER_KEYS.get(kind) if isinstance(kind, str) else None
    given = [k for k in ("response", "permission", "choice") if body.get(k) is not None]
    if needed is not None and needed not in given:
        raise AnswerError(
            f"Invalid request: a {kind} question of event {event_id} is answered with {needed!r}",
            status=400,
        )
    if not given:
        raise AnswerError(
            "Invalid request: an answer needs response, permission or choice", status=400
        )
    choices = question.get("choices")
    choice = body.get("choice")
    if choice is not None and isinstance(choices, list) and choices and choice not in choices:
        raise AnswerError(
            f"Invalid request: choice {choice[:200]!r} is not one of {choices[:20]!r}", status=400
        )
    return body


def with_pending(events: list[Event]) -> list[Event]:
    """``events`` with every question lacking a status given ``{"status": "pending"}`` (new
    dicts for those; the list itself when none needs it).  One C-level pass when there is no
    question at all."""
    if not any(map(operator.contains, events, repeat(HITL_FIELD))):
        return events
    out = list(events)
    for i, event in enumerate(out):
        if isinstance(event.get(HITL_FIELD), dict) and event.get(STATUS_FIELD) is None:
            out[i] = {**event, STATUS_FIELD: {"status": "pending"}}
    return out


def _base(event: Event) -> Event:
    out = dict(event)
    out.pop(UPDATE_FIELD, None)
    return out


def responded(event: Event, response: dict[str, Any], responded_at: int) -> Event:
    """The ``responded`` version of question ``event`` (the seed's stored status)."""
    out = _base(event)
    out[STATUS_FIELD] = {"status": "responded", "respondedAt": responded_at, "response": response}
    return out


def timed_out(event: Event, at_ms: int) -> Event:
    """The ``timeout`` version of question ``event``."""
    out = _base(event)
    out[STATUS_FIELD] = {"status": "timeout", "timedOutAt": at_ms}
    return out
