"""The demo's corpus: the tables and text pools synthetic hook events are drawn from (pure).

Owns the vocabularies (:data:`HOOK_EVENT_TYPES`, :data:`SOURCE_APPS`, :data:`MODEL_NAMES`,
:data:`TOOL_NAMES` with their :data:`TOOL_WEIGHTS`, files, commands, prompts...), the cheap
draws every generator uses (:func:`randint`, :func:`pick`, :func:`pick_tool`, :func:`uuid`) and
the text generators (:func:`text`: words from :class:`WordPool`; :func:`code_lines`: excerpts
of :class:`LinePool`).

Invariants: no I/O and no global random state; every draw comes from the ``random.Random``
passed in, so a seeded caller gets the same sequence every time.  The pools are built once from
fixed seeds (the line pool lazily, on first use: ~90 KB).  Bounds: :func:`text` takes 1..
:attr:`WordPool.MAX_WORDS` words from the pool (more are drawn one by one); :func:`code_lines`
returns at most the whole pool (~88 KB).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence
from itertools import accumulate
from math import floor
from typing import TypeVar

__all__ = [
    "CWD",
    "HOOK_EVENT_TYPES",
    "MODEL_NAMES",
    "SOURCE_APPS",
    "TOOL_NAMES",
    "TOOL_WEIGHTS",
    "WORDS",
    "LinePool",
    "WordPool",
    "code_lines",
    "file_path",
    "pick",
    "pick_tool",
    "randint",
    "random_words",
    "text",
    "uuid",
]

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
TOOL_WEIGHTS: tuple[int, ...] = (30, 18, 5, 22, 9, 6, 3, 2, 5)

FILES = (
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
COMMANDS = (
    "bun test",
    "git status --short",
    "pytest -q tests/test_ingest.py",
    "ls -la src",
    "bun run build",
    "git diff --stat",
    "rg -n 'WebSocket' src",
    "python -m pip list --format=freeze",
)
PROMPTS = (
    "Add reconnection with exponential backoff to the dashboard's WebSocket composable.",
    "Why does the event timeline freeze when more than 500 events arrive?",
    "Write a test for the /events endpoint that checks the 400 error message.",
    "Refactor the ETL loader to stream rows instead of loading the whole file.",
    "Summarise the changes on this branch and open a PR description.",
    "The build fails with a type error in db.ts; fix it.",
    "Add an index on (source_app, timestamp) and measure the filter query.",
    "Make the chart show events per second per app.",
)
NOTIFICATIONS = (
    "Claude needs your permission to use Bash",
    "Claude is waiting for your input",
    "Claude needs your permission to use WebFetch",
)
WORD_TEXT = (
    "event stream socket client server payload batch latency frame index query timeline "
    "reconnect backoff buffer session hook agent filter chart store schema route handler "
    "config token origin limit queue metric window sample export parquet column"
)
WORDS = tuple(WORD_TEXT.split())
CWD = "/home/dev/project"
_T = TypeVar("_T")


# Every draw below goes through ``rng.random()`` (C, ~0.03 us) instead of ``randint``/
# ``randrange``/``choice``/``choices``, which are Python code in ``random.py``: ``randint(1, 8)``
# cost 0.33 us against 0.11 us for ``randint``, ``choice`` 0.22 us against 0.12 us for ``pick``
# (cProfile put those methods at ~45 % of the generator's ~10 us/event, and the generator was most
# of a 10k ev/s demo producer's CPU).  ``floor(random() * n)`` is uniform on ``0..n-1`` (never
# ``n``: ``random() < 1``), exactly what ``random.choices`` does; ``floor`` is ~3x cheaper than
# ``int()`` on a float.  Only the exact sequence for a seed differs from the stdlib methods.
# These helpers work with any ``random.Random``, so ``make_event`` callers keep passing one.


def randint(rng: random.Random, a: int, b: int) -> int:
    """Uniform integer in ``a..b``, both included (like ``Random.randint``)."""
    return a + floor(rng.random() * (b - a + 1))


def pick(rng: random.Random, seq: Sequence[_T]) -> _T:
    """Uniform element of a non-empty sequence (like ``Random.choice``)."""
    return seq[floor(rng.random() * len(seq))]


# ``choices(TOOL_NAMES, weights=TOOL_WEIGHTS)`` rebuilt the cumulative weights on every call
# (1.5 us against 0.12 us for ``pick_tool``).  The weights are small integers, so a table
# holding each tool ``weight`` times gives exactly the same distribution with one uniform draw.
TOOL_TABLE: tuple[str, ...] = tuple(
    name for name, weight in zip(TOOL_NAMES, TOOL_WEIGHTS) for _ in range(weight)
)
TOOL_HOOKS = frozenset(("PreToolUse", "PostToolUse"))
LARGE_OUTPUT_TOOLS = frozenset(("Read", "Bash", "Grep", "Task"))
SESSION_SOURCES = ("startup", "startup", "resume", "clear")  # "startup" twice as likely
END_REASONS = ("prompt_input_exit", "logout", "clear", "other")
GLOBS = ("**/*.ts", "**/*.py", "src/**/*.vue")
SUBAGENT_TYPES = ("general-purpose", "code-reviewer", "test-runner")
TODO_STATES = ("pending", "in_progress", "completed")


def pick_tool(rng: random.Random) -> str:
    """A tool name drawn with the relative frequencies ``TOOL_WEIGHTS``."""
    return TOOL_TABLE[floor(rng.random() * len(TOOL_TABLE))]


def uuid(rng: random.Random) -> str:
    # One 120-bit draw sliced, not five draws and five formats: a v4-looking UUID.
    h = f"{rng.getrandbits(120):030x}"
    return f"{h[:8]}-{h[8:12]}-4{h[12:15]}-a{h[15:18]}-{h[18:]}"


def random_words(rng: random.Random, words: int) -> str:
    """``words`` independent uniform words (for building the pools below, not per event)."""
    rnd = rng.random
    n = len(WORDS)
    return " ".join([WORDS[floor(rnd() * n)] for _ in range(words)])


class WordPool:
    """A fixed cyclic stream in which every word of ``WORDS`` occurs equally often, shuffled.

    Joining ``words`` independent draws cost ~1-1.5 us a text (a list comprehension and a draw
    per word), about 0.3 us of every event on average; a text is now a window of the stream at a
    uniform random start: one draw and a slice.  Each word of a text is still exactly uniform over
    ``WORDS`` (every start is equally likely and every word fills the same number of slots);
    only the pairing of neighbouring words is fixed by the stream, as in :class:`LinePool`.
    """

    COPIES = 64  # 64 x 35 words: ~2200 distinct windows of each length
    MAX_WORDS = 32

    def __init__(self) -> None:
        rng = random.Random(4321)
        words = list(WORDS) * self.COPIES
        rng.shuffle(words)
        self.size = len(words)
        stream = words + words[: self.MAX_WORDS]  # a window may wrap around the end
        self.text = " ".join(stream) + " "
        self.starts = list(accumulate((len(w) + 1 for w in stream), initial=0))

    def words(self, rng: random.Random, words: int) -> str:
        """``words`` (1..MAX_WORDS) words separated by single spaces."""
        if not 0 < words <= self.MAX_WORDS:
            return random_words(rng, words)
        starts = self.starts
        first = floor(rng.random() * self.size)
        return self.text[starts[first] : starts[first + words] - 1]


text = WordPool().words
"""``text(rng, words)``: ``words`` words from the shared :class:`WordPool`."""


class LinePool:
    """A fixed ~90 KB "file" of numbered source-like lines; tool outputs are slices of it.

    Drawing every word of a 32 KiB output from the RNG cost ~3 ms per large event, which made
    the demo producer the biggest CPU user of a kernel streaming 10k ev/s; a slice costs
    microseconds and still reads like a ``Read``/``Bash`` output (a random excerpt).
    """

    LINES = 1600

    def __init__(self) -> None:
        rng = random.Random(1234)
        lines = [
            f"{i:>5}\t{'    ' * randint(rng, 0, 3)}{random_words(rng, randint(rng, 3, 10))}"
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


_line_pool: LinePool | None = None


def code_lines(rng: random.Random, nbytes: int) -> tuple[str, int]:
    """About ``nbytes`` of source-like text (what a big Read/Bash output looks like) and its
    number of lines."""
    global _line_pool
    if _line_pool is None:
        _line_pool = LinePool()
    return _line_pool.excerpt(rng, nbytes)


# File paths are formatted once, not per event (the default ``cwd`` is the generator's).
CWD_FILES = tuple(f"{CWD}/{name}" for name in FILES)
SRC_FILES = tuple(f"src/{name}" for name in FILES)


def file_path(rng: random.Random, cwd: str) -> str:
    i = floor(rng.random() * len(FILES))
    return CWD_FILES[i] if cwd == CWD else f"{cwd}/{FILES[i]}"
