"""The demo's event generator: agent-hook events built from the corpus (pure, seeded).

Owns :func:`make_event` (one event shaped like what a Claude Code hook script posts to
``/events``: ``source_app``, ``session_id``, ``hook_event_type``, ``payload`` with ``tool_name``
/ ``tool_input`` / ``tool_response`` / ``prompt`` ..., sometimes ``summary`` and
``model_name``) and :class:`EventGenerator`, a deterministic iterator (given ``seed`` and
``clock``) that runs a few concurrent agent *sessions* through a state machine::

    SessionStart -> UserPromptSubmit -> (PreToolUse -> PostToolUse)* [Notification]
                 -> Stop -> (UserPromptSubmit ...)* -> SessionEnd

with occasional ``SubagentStop`` (after a ``Task`` tool), ``PreCompact`` and ``Notification``.
Typical events encode to ~300-600 bytes; about 3 % of ``PostToolUse`` events carry a large
tool output (4-32 KiB), like a ``Read`` of a big file or a verbose ``Bash`` command.

Invariants: no I/O; every event passes ``validate_event``; events are fresh dicts (editing
one never changes another); every PreToolUse is followed by its session's PostToolUse (a
``Task``'s SubagentStop in between).  Bounds: 1..100 sessions, probabilities in 0..1.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from math import floor
from typing import Any

from .._validate import bounded, integer
from ..errors import ConfigError
from ..events import Event, now_ms
from .corpus import (
    COMMANDS,
    CWD,
    END_REASONS,
    GLOBS,
    HOOK_EVENT_TYPES,
    LARGE_OUTPUT_TOOLS,
    MODEL_NAMES,
    NOTIFICATIONS,
    PROMPTS,
    SESSION_SOURCES,
    SOURCE_APPS,
    SRC_FILES,
    SUBAGENT_TYPES,
    TODO_STATES,
    TOOL_HOOKS,
    WORDS,
    code_lines,
    file_path,
    pick,
    pick_tool,
    randint,
    text,
    uuid,
)

__all__ = ["EventGenerator", "make_event"]


def _tool_input(rng: random.Random, tool: str, cwd: str) -> dict[str, Any]:
    # Branches in order of ``TOOL_WEIGHTS`` (most frequent first); a path is drawn only for
    # the tools that use one.
    if tool == "Read":
        return {"file_path": file_path(rng, cwd)}
    if tool == "Bash":
        return {"command": pick(rng, COMMANDS), "description": text(rng, 4)}
    if tool == "Edit":
        return {
            "file_path": file_path(rng, cwd),
            "old_string": text(rng, randint(rng, 2, 8)),
            "new_string": text(rng, randint(rng, 2, 10)),
        }
    if tool == "Grep":
        return {"pattern": pick(rng, WORDS), "path": cwd, "output_mode": "content"}
    if tool == "Glob":
        return {"pattern": pick(rng, GLOBS)}
    if tool == "Write":
        return {
            "file_path": file_path(rng, cwd),
            "content": code_lines(rng, randint(rng, 80, 400))[0],
        }
    if tool == "Task":
        return {
            "description": text(rng, 3),
            "prompt": text(rng, randint(rng, 10, 30)),
            "subagent_type": pick(rng, SUBAGENT_TYPES),
        }
    if tool == "WebFetch":
        return {"url": "https://example.com/docs/websocket", "prompt": text(rng, 6)}
    return {
        "todos": [
            {"content": text(rng, 5), "status": pick(rng, TODO_STATES)}
            for _ in range(randint(rng, 1, 4))
        ]
    }


def _tool_response(
    rng: random.Random, tool: str, tool_input: dict[str, Any], large: bool
) -> dict[str, Any]:
    if tool in ("Edit", "Write"):  # no output body: do not draw one
        return {"filePath": tool_input["file_path"], "success": True}
    body, lines = code_lines(rng, randint(rng, 4096, 32768) if large else randint(rng, 20, 120))
    if tool == "Read":
        return {
            "type": "text",
            "file": {
                "filePath": tool_input["file_path"],
                "content": body,
                "numLines": lines,
            },
        }
    if tool == "Bash":
        return {"stdout": body, "stderr": "", "interrupted": False, "isImage": False}
    if tool in ("Grep", "Glob"):
        return {
            "filenames": [
                pick(rng, SRC_FILES),
                pick(rng, SRC_FILES),
                pick(rng, SRC_FILES),
            ],
            "content": body,
        }
    if tool == "Task":
        return {
            "content": [{"type": "text", "text": body}],
            "totalDurationMs": randint(rng, 2000, 90000),
        }
    return {"result": body}


def _summary(kind: str, payload: dict[str, Any]) -> str | None:
    """The one-line ``summary`` a seed hook with ``--summarize`` would add (None: unknown kind)."""
    if kind in TOOL_HOOKS:
        tin = payload["tool_input"]
        target = tin.get("file_path") or tin.get("command") or tin.get("pattern") or ""
        verb = "Running" if kind == "PreToolUse" else "Finished"
        return f"{verb} {payload['tool_name']} {target}".strip()
    if kind == "UserPromptSubmit":
        return f"User asked: {payload['prompt'][:60]}"
    if kind == "Notification":
        message: str = payload["message"]
        return message
    if kind == "Stop":
        return "Agent finished responding"
    if kind == "SubagentStop":
        return "Subagent finished its task"
    if kind == "PreCompact":
        return "Compacting the conversation"
    if kind == "SessionStart":
        return "Session started"
    if kind == "SessionEnd":
        return "Session ended"
    return None


def _build_event(
    rng: random.Random,
    kind: str,
    app: str,
    sid: str,
    transcript_path: str,
    tool: str | None,
    tin: dict[str, Any] | None,
    model: str,
    large: bool,
    summary_prob: float,
    timestamp: float | None,
    cwd: str,
) -> Event:
    """:func:`make_event` once the session fields are known.  The generator calls this directly
    with its session's cached ``transcript_path``: going through ``make_event``'s keyword
    arguments and formatting the path per event cost ~0.2 us of every event."""
    payload: dict[str, Any]
    if kind in TOOL_HOOKS:
        if not tool:
            tool = pick_tool(rng)
        if tin is None:
            tin = _tool_input(rng, tool, cwd)
        # One literal, not four keys added one by one: the dict is sized once (adding keys grew
        # it past its first size on every tool event).
        payload = {
            "session_id": sid,
            "transcript_path": transcript_path,
            "cwd": cwd,
            "hook_event_name": kind,
            "permission_mode": "default",
            "tool_name": tool,
            "tool_input": tin,
        }
        if kind == "PostToolUse":
            payload["tool_response"] = _tool_response(rng, tool, tin, large)
    else:
        payload = {
            "session_id": sid,
            "transcript_path": transcript_path,
            "cwd": cwd,
            "hook_event_name": kind,
        }
        if kind == "UserPromptSubmit":
            payload["prompt"] = pick(rng, PROMPTS)
        elif kind == "Stop" or kind == "SubagentStop":
            payload["stop_hook_active"] = False
        elif kind == "SessionStart":
            payload["source"] = pick(rng, SESSION_SOURCES)
        elif kind == "SessionEnd":
            payload["reason"] = pick(rng, END_REASONS)
        elif kind == "Notification":
            payload["message"] = pick(rng, NOTIFICATIONS)
        elif kind == "PreCompact":
            payload["trigger"] = pick(rng, ("auto", "manual"))
            payload["custom_instructions"] = ""
    event: Event = {
        "source_app": app,
        "session_id": sid,
        "hook_event_type": kind,
        "payload": payload,
    }
    if timestamp is not None:
        event["timestamp"] = timestamp
    # The summary string is built only for the events that get one (``summary_prob``, 25 %).
    if rng.random() < summary_prob:
        summary = _summary(kind, payload)
        if summary is not None:
            event["summary"] = summary
    event["model_name"] = model
    return event


def make_event(
    rng: random.Random,
    *,
    hook_event_type: str | None = None,
    source_app: str | None = None,
    session_id: str | None = None,
    tool_name: str | None = None,
    tool_input: dict[str, Any] | None = None,
    model_name: str | None = None,
    large: bool = False,
    summary_prob: float = 0.25,
    timestamp: float | None = None,
    cwd: str = CWD,
) -> Event:
    """Build one agent-hook event: a plain dict that passes ``validate_event``.

    Anything not given is drawn from ``rng``.  ``large`` gives a ``PostToolUse`` a 4-32 KiB tool
    output.  ``summary_prob`` (0..1) is the chance the event carries a one-line ``summary`` (the
    seed's hooks add one with ``--summarize``).  ``timestamp`` (epoch ms) is omitted when ``None``
    (the server then fills it).  The payload mirrors Claude Code's hook input: ``session_id``,
    ``transcript_path``, ``cwd``, ``hook_event_name`` and the per-hook fields.
    """
    kind = hook_event_type or pick(rng, HOOK_EVENT_TYPES)
    app = source_app or pick(rng, SOURCE_APPS)
    sid = session_id or uuid(rng)
    model = model_name if model_name is not None else pick(rng, MODEL_NAMES)
    return _build_event(
        rng,
        kind,
        app,
        sid,
        _transcript_path(app, sid),
        tool_name,
        tool_input,
        model,
        large,
        summary_prob,
        timestamp,
        cwd,
    )


def _transcript_path(app: str, sid: str) -> str:
    return f"~/.claude/projects/{app}/{sid[:8]}.jsonl"


@dataclass(slots=True)
class _Session:
    """One agent session's state in the generator's state machine."""

    app: str
    session_id: str
    model: str
    transcript_path: str  # fixed for the session: built once, not per event
    state: str = "start"  # start -> prompt -> tools -> stopped -> (prompt | end) -> done
    tools_left: int = 0
    turns_left: int = 1
    # The PreToolUse awaiting its PostToolUse, as (tool, input, its subagent has stopped): at
    # most one, as a session's next steps after a PreToolUse are its SubagentStop (a Task only)
    # and its PostToolUse.  The marker lives here, not in the input dict, so the PostToolUse
    # needs no filtered copy of the input.
    pending: tuple[str, dict[str, Any], bool] | None = None


class EventGenerator(Iterator[Event]):
    """Deterministic infinite iterator of agent-hook events from concurrent sessions.

    ``seed`` fixes the sequence (``None``: random).  ``clock`` gives each event's ``timestamp``
    in epoch ms (default wall clock; ``None`` omits timestamps so the server fills them).
    ``sessions`` (1..100, default 3) concurrent sessions interleave; a finished session is
    replaced by a new one.  ``apps`` are the ``source_app`` names.  ``large_output_prob`` (0..1,
    default 0.03) is the chance a ``PostToolUse`` carries a 4-32 KiB output; ``summary_prob``
    (0..1, default 0.25) the chance an event has a ``summary``.  Counters: :attr:`count`,
    :attr:`sessions_started`, :attr:`sessions_finished`.
    """

    def __init__(
        self,
        seed: int | None = None,
        *,
        sessions: int = 3,
        apps: Sequence[str] = SOURCE_APPS,
        large_output_prob: float = 0.03,
        summary_prob: float = 0.25,
        clock: Callable[[], float] | None = now_ms,
    ) -> None:
        integer("sessions", sessions, 1, 100)
        if not apps or not all(isinstance(a, str) and a for a in apps):
            raise ConfigError("apps must be a non-empty sequence of non-empty strings")
        bounded("large_output_prob", large_output_prob, 0.0, 1.0)
        bounded("summary_prob", summary_prob, 0.0, 1.0)
        self.rng = random.Random(seed)
        self.apps = tuple(apps)
        self.large_output_prob = large_output_prob
        self.summary_prob = summary_prob
        self.clock = clock
        self.count = 0
        self.sessions_started = 0
        self.sessions_finished = 0
        self._sessions = [self._new_session() for _ in range(sessions)]

    def _new_session(self) -> _Session:
        rng = self.rng
        self.sessions_started += 1
        app = pick(rng, self.apps)
        sid = uuid(rng)
        return _Session(
            app=app,
            session_id=sid,
            model=pick(rng, MODEL_NAMES),
            transcript_path=_transcript_path(app, sid),
            turns_left=randint(rng, 1, 3),
        )

    def __iter__(self) -> EventGenerator:
        return self

    def __next__(self) -> Event:
        rng = self.rng
        sessions = self._sessions
        idx = floor(rng.random() * len(sessions))
        s = sessions[idx]
        kind, tool, tin, large = self._step(s)
        clock = self.clock
        event = _build_event(
            rng,
            kind,
            s.app,
            s.session_id,
            s.transcript_path,
            tool,
            tin,
            s.model,
            large,
            self.summary_prob,
            clock() if clock is not None else None,
            CWD,
        )
        if s.state == "done":
            self.sessions_finished += 1
            sessions[idx] = self._new_session()
        self.count += 1
        return event

    def take(self, n: int) -> list[Event]:
        """The next ``n`` events as a list."""
        step = self.__next__  # a bound method: ``next(self)`` goes through the type slot
        return [step() for _ in range(n)]

    def _step(self, s: _Session) -> tuple[str, str | None, dict[str, Any] | None, bool]:
        """Advance session ``s``; return (hook type, tool, tool input, large output)."""
        rng = self.rng
        state = s.state
        if state == "tools":
            pending = s.pending
            if pending is not None:  # every PreToolUse is followed by its PostToolUse
                tool, tin, subagent_done = pending
                if tool == "Task" and not subagent_done:
                    # A Task tool runs a subagent: its SubagentStop precedes the PostToolUse.
                    s.pending = (tool, tin, True)
                    return "SubagentStop", None, None, False
                s.pending = None
                large = tool in LARGE_OUTPUT_TOOLS and rng.random() < self.large_output_prob
                # A copy, not the PreToolUse's own dict: events are plain dicts a user may edit,
                # and editing one must not change another (sharing saved ~12 % of allocations).
                return "PostToolUse", tool, dict(tin), large
            if s.tools_left > 0:
                s.tools_left -= 1
                r = rng.random()
                if r < 0.04:
                    return "Notification", None, None, False
                if r < 0.06:
                    return "PreCompact", None, None, False
                tool = pick_tool(rng)
                tin = _tool_input(rng, tool, CWD)
                s.pending = (tool, tin, False)
                return "PreToolUse", tool, tin, False
            s.state = "stopped"
            return "Stop", None, None, False
        if state == "start":
            s.state = "prompt"
            return "SessionStart", None, None, False
        if state == "prompt":
            s.state = "tools"
            s.tools_left = randint(rng, 1, 8)
            return "UserPromptSubmit", None, None, False
        if state == "stopped":
            s.turns_left -= 1
            if s.turns_left > 0:
                s.state = "tools"
                s.tools_left = randint(rng, 1, 8)
                return "UserPromptSubmit", None, None, False
            s.state = "done"
            return "SessionEnd", None, None, False
        raise AssertionError(f"unknown session state {state!r}")  # pragma: no cover
