"""A realistic synthetic agent-hook event generator, and a paced producer for it.

Sans-I/O core
    :func:`make_event` builds one event shaped like what a Claude Code hook script posts to the
    seed's ``/events`` endpoint (``source_app``, ``session_id``, ``hook_event_type``, ``payload``
    with ``tool_name`` / ``tool_input`` / ``tool_response`` / ``prompt`` ..., sometimes ``summary``
    and ``model_name``).  :class:`EventGenerator` is a deterministic iterator (given ``seed`` and
    ``clock``) that runs a few concurrent agent *sessions* through a state machine::

        SessionStart -> UserPromptSubmit -> (PreToolUse -> PostToolUse)* [Notification]
                     -> Stop -> (UserPromptSubmit ...)* -> SessionEnd

    with occasional ``SubagentStop`` (after a ``Task`` tool), ``PreCompact`` and ``Notification``.
    Typical events encode to ~300-600 bytes; about 3 % of ``PostToolUse`` events carry a large
    tool output (4-32 KiB), like a ``Read`` of a big file or a verbose ``Bash`` command.

I/O shell
    :class:`DemoProducer` publishes generated events on the shared background loop
    (:mod:`wsnotebook._loop`) at a target rate, paced by a token bucket, either into an in-process
    server (``server.publish``) or over HTTP (``POST /events``) to a URL.  :func:`start_demo` is
    the one-line convenience; :func:`stop_all` stops every running producer (the ``%ws stop``
    magic uses it).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from math import floor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError
from ..events import Event, encode_json, now_ms
from ..runtime import loop as _loop

__all__ = [
    "HOOK_EVENT_TYPES",
    "SOURCE_APPS",
    "TOOL_NAMES",
    "MODEL_NAMES",
    "make_event",
    "EventGenerator",
    "TokenBucket",
    "DemoProducer",
    "start_demo",
    "stop_all",
    "active_producers",
    "events_url",
]

log = logging.getLogger("wsnotebook")

HOOK_EVENT_TYPES: tuple[str, ...] = (
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Notification",
    "Stop",
    "SubagentStop",
    "PreCompact",
    "SessionEnd",
)
SOURCE_APPS: tuple[str, ...] = ("cc-hook-multi-agent-obvs", "webapp-frontend", "data-pipeline")
MODEL_NAMES: tuple[str, ...] = ("claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5")
TOOL_NAMES: tuple[str, ...] = (
    "Read",
    "Edit",
    "Write",
    "Bash",
    "Grep",
    "Glob",
    "Task",
    "WebFetch",
    "TodoWrite",
)
# Relative frequency of tools (Read/Bash/Edit dominate real sessions).
_TOOL_WEIGHTS: tuple[int, ...] = (30, 18, 5, 22, 9, 6, 3, 2, 5)

_FILES = (
    "src/server/index.ts",
    "src/db.ts",
    "apps/client/src/composables/useWebSocket.ts",
    "apps/client/src/components/EventTimeline.vue",
    "pipeline/etl/load.py",
    "pipeline/etl/transform.py",
    "tests/test_ingest.py",
    "README.md",
    "pyproject.toml",
    "docs/protocol.md",
)
_COMMANDS = (
    "bun test",
    "git status --short",
    "pytest -q tests/test_ingest.py",
    "ls -la src",
    "bun run build",
    "git diff --stat",
    "rg -n 'WebSocket' src",
    "python -m pip list --format=freeze",
)
_PROMPTS = (
    "Add reconnection with exponential backoff to the dashboard's WebSocket composable.",
    "Why does the event timeline freeze when more than 500 events arrive?",
    "Write a test for the /events endpoint that checks the 400 error message.",
    "Refactor the ETL loader to stream rows instead of loading the whole file.",
    "Summarise the changes on this branch and open a PR description.",
    "The build fails with a type error in db.ts; fix it.",
    "Add an index on (source_app, timestamp) and measure the filter query.",
    "Make the chart show events per second per app.",
)
_NOTIFICATIONS = (
    "Claude needs your permission to use Bash",
    "Claude is waiting for your input",
    "Claude needs your permission to use WebFetch",
)
_WORD_TEXT = (
    "event stream socket client server payload batch latency frame index query timeline "
    "reconnect backoff buffer session hook agent filter chart store schema route handler "
    "config token origin limit queue metric window sample export parquet column"
)
_WORDS = tuple(_WORD_TEXT.split())
_CWD = "/home/dev/project"
_T = TypeVar("_T")


# Every draw below goes through ``rng.random()`` (C, ~0.03 us) instead of ``randint``/
# ``randrange``/``choice``/``choices``, which are Python code in ``random.py``: ``randint(1, 8)``
# cost 0.33 us against 0.11 us for ``_randint``, ``choice`` 0.22 us against 0.12 us for ``_pick``
# (cProfile put those methods at ~45 % of the generator's ~10 us/event, and the generator was most
# of a 10k ev/s demo producer's CPU).  ``floor(random() * n)`` is uniform on ``0..n-1`` (never
# ``n``: ``random() < 1``), exactly what ``random.choices`` does; ``floor`` is ~3x cheaper than
# ``int()`` on a float.  Only the exact sequence for a seed differs from the stdlib methods.
# These helpers work with any ``random.Random``, so ``make_event`` callers keep passing one.


def _randint(rng: random.Random, a: int, b: int) -> int:
    """Uniform integer in ``a..b``, both included (like ``Random.randint``)."""
    return a + floor(rng.random() * (b - a + 1))


def _pick(rng: random.Random, seq: Sequence[_T]) -> _T:
    """Uniform element of a non-empty sequence (like ``Random.choice``)."""
    return seq[floor(rng.random() * len(seq))]


# ``choices(TOOL_NAMES, weights=_TOOL_WEIGHTS)`` rebuilt the cumulative weights on every call
# (1.5 us against 0.12 us for ``_pick_tool``).  The weights are small integers, so a table
# holding each tool ``weight`` times gives exactly the same distribution with one uniform draw.
_TOOL_TABLE: tuple[str, ...] = tuple(
    name for name, weight in zip(TOOL_NAMES, _TOOL_WEIGHTS) for _ in range(weight)
)
_TOOL_HOOKS = frozenset(("PreToolUse", "PostToolUse"))
_LARGE_OUTPUT_TOOLS = frozenset(("Read", "Bash", "Grep", "Task"))
_SESSION_SOURCES = ("startup", "startup", "resume", "clear")  # "startup" twice as likely
_END_REASONS = ("prompt_input_exit", "logout", "clear", "other")
_GLOBS = ("**/*.ts", "**/*.py", "src/**/*.vue")
_SUBAGENT_TYPES = ("general-purpose", "code-reviewer", "test-runner")
_TODO_STATES = ("pending", "in_progress", "completed")


def _pick_tool(rng: random.Random) -> str:
    """A tool name drawn with the relative frequencies ``_TOOL_WEIGHTS``."""
    return _TOOL_TABLE[floor(rng.random() * len(_TOOL_TABLE))]


def _uuid(rng: random.Random) -> str:
    # One 120-bit draw sliced, not five draws and five formats: a v4-looking UUID.
    h = f"{rng.getrandbits(120):030x}"
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-a{h[15:18]}-{h[18:]}"


def _random_words(rng: random.Random, words: int) -> str:
    """``words`` independent uniform words (for building the pools below, not per event)."""
    rnd = rng.random
    n = len(_WORDS)
    return " ".join([_WORDS[floor(rnd() * n)] for _ in range(words)])


class _WordPool:
    """A fixed cyclic stream in which every word of ``_WORDS`` occurs equally often, shuffled.

    Joining ``words`` independent draws cost ~1-1.5 us a text (a list comprehension and a draw
    per word), about 0.3 us of every event on average; a text is now a window of the stream at a
    uniform random start: one draw and a slice.  Each word of a text is still exactly uniform over
    ``_WORDS`` (every start is equally likely and every word fills the same number of slots);
    only the pairing of neighbouring words is fixed by the stream, as in :class:`_LinePool`.
    """

    COPIES = 64  # 64 x 35 words: ~2200 distinct windows of each length
    MAX_WORDS = 32

    def __init__(self) -> None:
        rng = random.Random(4321)
        words = list(_WORDS) * self.COPIES
        rng.shuffle(words)
        self.size = len(words)
        stream = words + words[: self.MAX_WORDS]  # a window may wrap around the end
        self.text = " ".join(stream) + " "
        self.starts = list(accumulate((len(w) + 1 for w in stream), initial=0))

    def words(self, rng: random.Random, words: int) -> str:
        """``words`` (1..MAX_WORDS) words separated by single spaces."""
        if not 0 < words <= self.MAX_WORDS:
            return _random_words(rng, words)
        starts = self.starts
        first = floor(rng.random() * self.size)
        return self.text[starts[first] : starts[first + words] - 1]


_text = _WordPool().words


class _LinePool:
    """A fixed ~90 KB "file" of numbered source-like lines; tool outputs are slices of it.

    Drawing every word of a 32 KiB output from the RNG cost ~3 ms per large event, which made
    the demo producer the biggest CPU user of a kernel streaming 10k ev/s; a slice costs
    microseconds and still reads like a ``Read``/``Bash`` output (a random excerpt).
    """

    LINES = 1600

    def __init__(self) -> None:
        rng = random.Random(1234)
        lines = [
            f"{i:>5}\t{'    ' * _randint(rng, 0, 3)}{_random_words(rng, _randint(rng, 3, 10))}"
            for i in range(1, self.LINES + 1)
        ]
        self.text = "\n".join(lines) + "\n"
        self.starts = list(accumulate((len(line) + 1 for line in lines), initial=0))
        self.total = self.starts[-1]

    def excerpt(self, rng: random.Random, nbytes: int) -> tuple[str, int]:
        """Whole lines from a random line on, at least ``nbytes`` long (``nbytes`` <= ~88 KB),
        and how many lines that is (counting them in the text cost more than the slice)."""
        starts = self.starts
        total = self.total
        if nbytes > total:
            nbytes = total
        elif nbytes < 1:
            nbytes = 1
        # Lines 0..k-1 start early enough to hold ``nbytes``: k >= 1 as starts[0] == 0.
        first = floor(rng.random() * bisect.bisect_right(starts, total - nbytes))
        end = bisect.bisect_left(starts, starts[first] + nbytes)
        return self.text[starts[first] : starts[end] - 1], end - first


_line_pool: _LinePool | None = None


def _code_lines(rng: random.Random, nbytes: int) -> tuple[str, int]:
    """About ``nbytes`` of source-like text (what a big Read/Bash output looks like) and its
    number of lines."""
    global _line_pool
    if _line_pool is None:
        _line_pool = _LinePool()
    return _line_pool.excerpt(rng, nbytes)


# File paths are formatted once, not per event (the default ``cwd`` is the generator's).
_CWD_FILES = tuple(f"{_CWD}/{name}" for name in _FILES)
_SRC_FILES = tuple(f"src/{name}" for name in _FILES)


def _file_path(rng: random.Random, cwd: str) -> str:
    i = floor(rng.random() * len(_FILES))
    return _CWD_FILES[i] if cwd == _CWD else f"{cwd}/{_FILES[i]}"


def _tool_input(rng: random.Random, tool: str, cwd: str) -> dict[str, Any]:
    # Branches in order of ``_TOOL_WEIGHTS`` (most frequent first); a path is drawn only for
    # the tools that use one.
    if tool == "Read":
        return {"file_path": _file_path(rng, cwd)}
    if tool == "Bash":
        return {"command": _pick(rng, _COMMANDS), "description": _text(rng, 4)}
    if tool == "Edit":
        return {
            "file_path": _file_path(rng, cwd),
            "old_string": _text(rng, _randint(rng, 2, 8)),
            "new_string": _text(rng, _randint(rng, 2, 10)),
        }
    if tool == "Grep":
        return {"pattern": _pick(rng, _WORDS), "path": cwd, "output_mode": "content"}
    if tool == "Glob":
        return {"pattern": _pick(rng, _GLOBS)}
    if tool == "Write":
        return {
            "file_path": _file_path(rng, cwd),
            "content": _code_lines(rng, _randint(rng, 80, 400))[0],
        }
    if tool == "Task":
        return {
            "description": _text(rng, 3),
            "prompt": _text(rng, _randint(rng, 10, 30)),
            "subagent_type": _pick(rng, _SUBAGENT_TYPES),
        }
    if tool == "WebFetch":
        return {"url": "https://example.com/docs/websocket", "prompt": _text(rng, 6)}
    return {
        "todos": [
            {"content": _text(rng, 5), "status": _pick(rng, _TODO_STATES)}
            for _ in range(_randint(rng, 1, 4))
        ]
    }


def _tool_response(
    rng: random.Random, tool: str, tool_input: dict[str, Any], large: bool
) -> dict[str, Any]:
    if tool in ("Edit", "Write"):  # no output body: do not draw one
        return {"filePath": tool_input["file_path"], "success": True}
    body, lines = _code_lines(rng, _randint(rng, 4096, 32768) if large else _randint(rng, 20, 120))
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
                _pick(rng, _SRC_FILES),
                _pick(rng, _SRC_FILES),
                _pick(rng, _SRC_FILES),
            ],
            "content": body,
        }
    if tool == "Task":
        return {
            "content": [{"type": "text", "text": body}],
            "totalDurationMs": _randint(rng, 2000, 90000),
        }
    return {"result": body}


def _summary(kind: str, payload: dict[str, Any]) -> str | None:
    """The one-line ``summary`` a seed hook with ``--summarize`` would add (None: unknown kind)."""
    if kind in _TOOL_HOOKS:
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
    if kind in _TOOL_HOOKS:
        if not tool:
            tool = _pick_tool(rng)
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
            payload["prompt"] = _pick(rng, _PROMPTS)
        elif kind == "Stop" or kind == "SubagentStop":
            payload["stop_hook_active"] = False
        elif kind == "SessionStart":
            payload["source"] = _pick(rng, _SESSION_SOURCES)
        elif kind == "SessionEnd":
            payload["reason"] = _pick(rng, _END_REASONS)
        elif kind == "Notification":
            payload["message"] = _pick(rng, _NOTIFICATIONS)
        elif kind == "PreCompact":
            payload["trigger"] = _pick(rng, ("auto", "manual"))
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
    cwd: str = _CWD,
) -> Event:
    """Build one agent-hook event: a plain dict that passes ``validate_event``.

    Anything not given is drawn from ``rng``.  ``large`` gives a ``PostToolUse`` a 4-32 KiB tool
    output.  ``summary_prob`` (0..1) is the chance the event carries a one-line ``summary`` (the
    seed's hooks add one with ``--summarize``).  ``timestamp`` (epoch ms) is omitted when ``None``
    (the server then fills it).  The payload mirrors Claude Code's hook input: ``session_id``,
    ``transcript_path``, ``cwd``, ``hook_event_name`` and the per-hook fields.
    """
    kind = hook_event_type or _pick(rng, HOOK_EVENT_TYPES)
    app = source_app or _pick(rng, SOURCE_APPS)
    sid = session_id or _uuid(rng)
    model = model_name if model_name is not None else _pick(rng, MODEL_NAMES)
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
        if not 1 <= sessions <= 100:
            raise ConfigError(f"sessions must be in 1..100, got {sessions}")
        if not apps or not all(isinstance(a, str) and a for a in apps):
            raise ConfigError("apps must be a non-empty sequence of non-empty strings")
        for name, p in (("large_output_prob", large_output_prob), ("summary_prob", summary_prob)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"{name} must be in 0..1, got {p}")
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
        app = _pick(rng, self.apps)
        sid = _uuid(rng)
        return _Session(
            app=app,
            session_id=sid,
            model=_pick(rng, MODEL_NAMES),
            transcript_path=_transcript_path(app, sid),
            turns_left=_randint(rng, 1, 3),
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
            _CWD,
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
                large = tool in _LARGE_OUTPUT_TOOLS and rng.random() < self.large_output_prob
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
                tool = _pick_tool(rng)
                tin = _tool_input(rng, tool, _CWD)
                s.pending = (tool, tin, False)
                return "PreToolUse", tool, tin, False
            s.state = "stopped"
            return "Stop", None, None, False
        if state == "start":
            s.state = "prompt"
            return "SessionStart", None, None, False
        if state == "prompt":
            s.state = "tools"
            s.tools_left = _randint(rng, 1, 8)
            return "UserPromptSubmit", None, None, False
        if state == "stopped":
            s.turns_left -= 1
            if s.turns_left > 0:
                s.state = "tools"
                s.tools_left = _randint(rng, 1, 8)
                return "UserPromptSubmit", None, None, False
            s.state = "done"
            return "SessionEnd", None, None, False
        raise AssertionError(f"unknown session state {state!r}")  # pragma: no cover


# --------------------------------------------------------------------------- pacing


class TokenBucket:
    """Token-bucket pacing (sans-I/O: the caller passes the time).

    Tokens accrue at ``rate`` per second up to ``capacity`` (the largest burst after a stall, so
    a producer that fell behind never floods the server to "catch up").  ``take(n, now)`` returns
    how many tokens (<= n) were available and consumes them; ``wait_time(n, now)`` says how long
    until ``n`` tokens are available.  Bounds: ``rate > 0``, ``capacity >= 1``.
    """

    __slots__ = ("rate", "capacity", "_tokens", "_last")

    def __init__(self, rate: float, capacity: float, *, now: float) -> None:
        if not rate > 0:
            raise ConfigError(f"rate must be > 0, got {rate}")
        if capacity < 1:
            raise ConfigError(f"capacity must be >= 1, got {capacity}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._tokens = 0.0
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def take(self, n: int, now: float) -> int:
        self._refill(now)
        got = min(n, int(self._tokens))
        self._tokens -= got
        return got

    def wait_time(self, n: int, now: float) -> float:
        self._refill(now)
        need = min(float(n), self.capacity) - self._tokens
        return max(0.0, need / self.rate)


# --------------------------------------------------------------------------- I/O shell

_producers: weakref.WeakSet[DemoProducer] = weakref.WeakSet()
_registry_lock = threading.Lock()


def events_url(url: str) -> str:
    """The ``POST /events`` URL for a server URL (``ws://h:p/stream``, ``http://h:p``, ...).

    Keeps ``?token=`` if present.  Raises :class:`~wsnotebook.errors.ConfigError` on a URL that
    is not http(s)/ws(s).
    """
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https", "http": "http", "https": "https"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigError(f"expected an http(s):// or ws(s):// URL, got {url!r}")
    query = "&".join(q for q in parts.query.split("&") if q.startswith("token="))
    return urlunsplit((scheme, parts.netloc, "/events", query, ""))


class DemoProducer:
    """Publish synthetic agent events at a target rate on the background loop.

    ``target`` is an in-process server (anything with ``publish_async(events)`` or a loop-safe
    ``publish(events)``: events go through the same path as ``POST /events``) or a server URL
    (``http://host:port`` or ``ws://.../stream``; events are POSTed to ``/events``, one JSON
    array per batch, ``Authorization: Bearer token`` when ``token`` is given).

    Options (keyword-only):

    * ``rate`` events/s, 0 < rate <= 100_000 (default 50);
    * ``batch`` events per publish call, 1..10_000 (default 1; a batch goes out once the bucket
      holds that many tokens, so ``batch`` events are published every ``batch / rate`` s on
      average; below ``MIN_WAKE`` = 10 ms the batches that fell due go out back to back once
      per wake-up);
    * ``seed`` for the generator (default random), or ``generator`` to supply your own iterator;
    * ``max_events``: stop by itself after this many (default ``None``: until :meth:`stop`);
    * ``duration``: stop by itself after this many seconds (default ``None``).

    Pacing is a :class:`TokenBucket` holding at most ``max(batch, rate / 10)`` tokens: a producer
    that falls behind (slow server) does not queue events or burst to catch up; it simply sends
    fewer (:attr:`behind` counts the seconds lost).  Publishing errors are logged on the
    ``wsnotebook`` logger and counted in :attr:`errors` (events in a failed batch are counted in
    :attr:`failed`); after 50 consecutive errors the producer stops itself.  It never raises into
    the caller.  Counters: :attr:`sent`, :attr:`errors`, :attr:`failed`, :attr:`bytes_sent`
    (HTTP only), :attr:`wakeups` (timer sleeps), :attr:`yields` (yields to the loop and budget
    checks, see ``YIELD_EVERY``); :attr:`running`.
    """

    MAX_CONSECUTIVE_ERRORS = 50
    #: Shortest timer sleep between publishing rounds, in seconds.  A timer wake-up of the loop
    #: thread cost ~55 us of CPU here (more than generating ten events), so at high rates the
    #: producer wakes at most ~100 times a second and sends the batches that fell due back to
    #: back, each still ``batch`` events, yielding to the loop between them.  At 10k ev/s in
    #: batches of 10 this cut the producer-plus-server CPU from ~28 to ~18 us per event.
    MIN_WAKE = 0.01
    #: Longest stretch of back-to-back publishing before the producer yields to the loop (and
    #: to the CPU budget's backpressure), in seconds.  It also yields after every timer wake-up.
    #: Yielding after every batch cost a loop iteration each (~1000/s at 10k ev/s in batches of
    #: 10: ~3-4 us of CPU per event); 2 ms keeps the loop responsive well within its 5 ms
    #: budget burst.
    YIELD_EVERY = 0.002

    def __init__(
        self,
        target: Any,
        *,
        rate: float = 50.0,
        batch: int = 1,
        seed: int | None = None,
        generator: Iterator[Event] | None = None,
        max_events: int | None = None,
        duration: float | None = None,
        token: str | None = None,
    ) -> None:
        if not 0 < rate <= 100_000:
            raise ConfigError(f"rate must be in (0, 100000] events/s, got {rate}")
        if not 1 <= batch <= 10_000:
            raise ConfigError(f"batch must be in 1..10000, got {batch}")
        if max_events is not None and max_events < 1:
            raise ConfigError(f"max_events must be >= 1 or None, got {max_events}")
        if duration is not None and not duration > 0:
            raise ConfigError(f"duration must be > 0 s or None, got {duration}")
        if isinstance(target, str):
            self.url: str | None = events_url(target)
            self.server: Any = None
        elif callable(getattr(target, "publish", None)):
            self.url = None
            self.server = target
        else:
            raise ConfigError(
                "target must be a server (with .publish) or a URL string, "
                f"got {type(target).__name__}"
            )
        self.rate = float(rate)
        self.batch = int(batch)
        self.max_events = max_events
        self.duration = duration
        self.token = token
        self.generator: Iterator[Event] = generator or EventGenerator(seed)
        self.sent = 0
        self.errors = 0
        self.failed = 0
        self.bytes_sent = 0
        self.behind = 0.0
        self.wakeups = 0  # timer sleeps taken (see MIN_WAKE)
        self.yields = 0  # yields to the loop between batches (see YIELD_EVERY)
        self.last_error: str | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._future: Any = None
        with _registry_lock:
            _producers.add(self)
        self._future = _loop.submit(self._run())

    # -- public -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop publishing and wait (bounded by ``timeout``) until the task ended.  Idempotent."""
        self._stop.set()
        if not _loop.in_loop_thread():
            self._done.wait(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the producer stops by itself (``max_events``/``duration``) or is stopped."""
        return self._done.wait(timeout)

    def metrics(self) -> dict[str, Any]:
        """Counters and the achieved rate (events/s since start)."""
        start = self.started_at
        end = self.stopped_at or time.monotonic()
        elapsed = (end - start) if start is not None else 0.0
        return {
            "running": self.running,
            "target": self.url or type(self.server).__name__,
            "rate_target": self.rate,
            "batch": self.batch,
            "sent": self.sent,
            "errors": self.errors,
            "failed": self.failed,
            "bytes_sent": self.bytes_sent,
            "behind_s": round(self.behind, 3),
            "wakeups": self.wakeups,
            "yields": self.yields,
            "elapsed_s": round(elapsed, 3),
            "rate_achieved": (self.sent / elapsed) if elapsed > 0 else 0.0,
            "last_error": self.last_error,
        }

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DemoProducer {state} rate={self.rate:g}/s batch={self.batch} sent={self.sent}>"

    # -- background ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        session: Any = None
        try:
            if self.url is not None:
                import aiohttp

                headers = {"Content-Type": "application/json", "User-Agent": "wsnotebook-demo"}
                if self.token:
                    headers["Authorization"] = f"Bearer {self.token}"
                session = aiohttp.ClientSession(
                    headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                )
            start = loop.time()
            self.started_at = time.monotonic()
            bucket = TokenBucket(self.rate, max(float(self.batch), self.rate / 10), now=start)
            consecutive = 0
            yielded_at: float | None = None  # None: yield (and check the budget) now
            while not self._stop.is_set():
                now = loop.time()
                if yielded_at is None or now - yielded_at >= self.YIELD_EVERY:
                    # Backpressure from the kernel CPU budget; also yields, so an in-process
                    # publish (which never blocks) cannot starve the loop.
                    await _loop.budget_ready()
                    self.yields += 1
                    now = yielded_at = loop.time()
                if self.duration is not None and now - start >= self.duration:
                    break
                want = self.batch
                if self.max_events is not None:
                    want = min(want, self.max_events - self.sent)
                    if want <= 0:
                        break
                wait = bucket.wait_time(want, now)
                if wait > 0:
                    self.wakeups += 1
                    await asyncio.sleep(min(max(wait, self.MIN_WAKE), 0.25))
                    yielded_at = None
                    continue
                before = bucket.available(now)
                n = bucket.take(want, now)
                if before >= bucket.capacity:
                    # The bucket was full: we were late and lost tokens (slow publish).
                    self.behind += 1.0 / self.rate
                events = [next(self.generator) for _ in range(n)]
                try:
                    await self._publish(events, session)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.errors += 1
                    self.failed += len(events)
                    consecutive += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("demo producer: publish failed: %s", self.last_error)
                    if consecutive >= self.MAX_CONSECUTIVE_ERRORS:
                        log.error("demo producer: %d consecutive errors, stopping", consecutive)
                        break
                    await asyncio.sleep(min(1.0, 0.02 * consecutive))
                else:
                    consecutive = 0
                    self.sent += len(events)
        except Exception:  # pragma: no cover - defensive: never raise into the loop
            self.errors += 1
            log.exception("demo producer crashed")
        finally:
            if session is not None:
                await session.close()
            self.stopped_at = time.monotonic()
            self._done.set()

    async def _publish(self, events: list[Event], session: Any) -> None:
        if session is None:
            # On the loop thread a server's blocking publish() would deadlock: use its
            # coroutine (wsnotebook's Server.publish_async) when it has one.
            apublish = getattr(self.server, "_publish_count", None) or getattr(
                self.server, "publish_async", None
            )
            if apublish is not None:
                await apublish(events)
            else:
                self.server.publish(events)
            return
        assert self.url is not None
        body = encode_json(events if len(events) > 1 else events[0])
        async with session.post(self.url, data=body) as resp:
            text = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}: {text[:200].decode(errors='replace')}")
        self.bytes_sent += len(body)


def start_demo(
    target: Any,
    *,
    rate: float = 50.0,
    batch: int = 1,
    seed: int | None = None,
    max_events: int | None = None,
    duration: float | None = None,
    token: str | None = None,
) -> DemoProducer:
    """Start a :class:`DemoProducer` publishing into ``target`` (server or URL); returns at once.

    Same options and bounds as :class:`DemoProducer`.
    """
    return DemoProducer(
        target,
        rate=rate,
        batch=batch,
        seed=seed,
        max_events=max_events,
        duration=duration,
        token=token,
    )


def active_producers() -> list[DemoProducer]:
    """Producers that are still running."""
    with _registry_lock:
        return [p for p in _producers if p.running]


def stop_all(timeout: float = 5.0) -> int:
    """Stop every running producer; return how many were stopped."""
    running = active_producers()
    for p in running:
        p._stop.set()
    deadline = time.monotonic() + timeout
    if not _loop.in_loop_thread():
        for p in running:
            p._done.wait(max(0.0, deadline - time.monotonic()))
    return len(running)


_loop.add_shutdown_hook(stop_all)
