"""The synthetic agent-hook generator: valid, realistic, deterministic events (sans-I/O)."""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from typing import Any

import pytest

from wsnotebook.demo import corpus
from wsnotebook.demo.corpus import HOOK_EVENT_TYPES
from wsnotebook.demo.generator import EventGenerator, make_event
from wsnotebook.errors import ConfigError
from wsnotebook.events import encode_json, validate_event


class FakeClock:
    def __init__(self) -> None:
        self.t = 1_700_000_000_000.0

    def __call__(self) -> float:
        self.t += 3.0
        return self.t


def test_make_event_is_valid_for_every_hook_type() -> None:
    rng = random.Random(0)
    for kind in HOOK_EVENT_TYPES:
        for _ in range(20):
            ev = make_event(rng, hook_event_type=kind)
            validate_event(ev)
            assert ev["hook_event_type"] == kind
            assert ev["payload"]["hook_event_name"] == kind
            assert ev["payload"]["session_id"] == ev["session_id"]


def test_tool_events_carry_claude_code_hook_fields() -> None:
    rng = random.Random(1)
    pre = make_event(rng, hook_event_type="PreToolUse", tool_name="Bash")
    post = make_event(rng, hook_event_type="PostToolUse", tool_name="Read")
    prompt = make_event(rng, hook_event_type="UserPromptSubmit")
    assert pre["payload"]["tool_name"] == "Bash" and "command" in pre["payload"]["tool_input"]
    assert "tool_response" not in pre["payload"]
    assert post["payload"]["tool_response"]["file"]["content"]
    assert isinstance(prompt["payload"]["prompt"], str) and prompt["payload"]["prompt"]


def test_large_flag_gives_a_multi_kilobyte_tool_output() -> None:
    rng = random.Random(2)
    big = make_event(rng, hook_event_type="PostToolUse", tool_name="Bash", large=True)
    small = make_event(rng, hook_event_type="PostToolUse", tool_name="Bash")
    assert len(encode_json(big)) >= 4096
    assert len(encode_json(small)) < 2048


def test_timestamp_is_omitted_unless_given() -> None:
    rng = random.Random(3)
    assert "timestamp" not in make_event(rng)
    assert make_event(rng, timestamp=123.5)["timestamp"] == 123.5


def test_generator_is_deterministic_for_a_seed() -> None:
    a = EventGenerator(42, clock=FakeClock()).take(300)
    b = EventGenerator(42, clock=FakeClock()).take(300)
    c = EventGenerator(43, clock=FakeClock()).take(300)
    assert a == b
    assert a != c


def test_generator_without_clock_leaves_timestamp_to_the_server() -> None:
    assert all("timestamp" not in e for e in EventGenerator(0, clock=None).take(50))


def test_sessions_follow_the_hook_lifecycle() -> None:
    gen = EventGenerator(7, sessions=4, clock=FakeClock())
    by_session: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ev in gen.take(4000):
        validate_event(ev)
        by_session[ev["session_id"]].append(ev)
    finished = 0
    for events in by_session.values():
        kinds = [e["hook_event_type"] for e in events]
        assert kinds[0] == "SessionStart"
        assert kinds[1] == "UserPromptSubmit"
        assert kinds.count("SessionStart") == 1
        assert len({e["source_app"] for e in events}) == 1
        assert len({e["model_name"] for e in events}) == 1
        # every PreToolUse is followed (before the turn's Stop) by a PostToolUse of the same tool
        open_tools: list[str] = []
        for e in events:
            k = e["hook_event_type"]
            if k == "PreToolUse":
                open_tools.append(e["payload"]["tool_name"])
            elif k == "PostToolUse":
                assert open_tools.pop() == e["payload"]["tool_name"]
            elif k in ("Stop", "SessionEnd"):
                assert not open_tools
        if kinds[-1] == "SessionEnd":
            finished += 1
            assert kinds[-2] == "Stop"
        # timestamps increase within a session
        ts = [e["timestamp"] for e in events]
        assert ts == sorted(ts)
    assert finished >= 10
    assert gen.sessions_finished == finished
    # a session started by the last SessionEnd may not have emitted its first event yet
    silent = [s for s in gen._sessions if s.session_id not in by_session]
    assert all(s.state == "start" for s in silent)
    assert gen.sessions_started == len(by_session) + len(silent)


def test_subagent_stop_precedes_the_task_post_tool_use() -> None:
    events = EventGenerator(11, sessions=1, clock=None).take(5000)
    seen = 0
    for i, ev in enumerate(events):
        if ev["hook_event_type"] == "PostToolUse" and ev["payload"]["tool_name"] == "Task":
            assert events[i - 1]["hook_event_type"] == "SubagentStop"
            seen += 1
    assert seen > 0
    assert all("_subagent_done" not in str(e["payload"]) for e in events)


def test_generated_mix_and_sizes_are_realistic() -> None:
    events = EventGenerator(5, clock=FakeClock()).take(5000)
    kinds = Counter(e["hook_event_type"] for e in events)
    assert set(kinds) >= {"SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "Stop"}
    assert kinds["PreToolUse"] == pytest.approx(kinds["PostToolUse"], abs=10)
    assert kinds["PreToolUse"] > kinds["Stop"]
    sizes = [len(encode_json(e)) for e in events]
    assert 250 <= statistics.median(sizes) <= 800
    large = sum(s >= 4096 for s in sizes)
    assert 0 < large < len(sizes) * 0.05
    assert max(sizes) < 64 * 1024
    assert 0.1 < sum("summary" in e for e in events) / len(events) < 0.4
    assert len({e["source_app"] for e in events}) == len(corpus.SOURCE_APPS)


def test_make_event_is_deterministic_for_a_seed() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        return [make_event(rng, timestamp=1.0) for _ in range(200)]

    assert run(9) == run(9)
    assert run(9) != run(10)


def test_every_generated_event_validates() -> None:
    options: list[dict[str, Any]] = [
        {},
        {"sessions": 1},
        {"sessions": 100, "apps": ["a", "b"]},
        {"large_output_prob": 1.0, "summary_prob": 1.0},
        {"large_output_prob": 0.0, "summary_prob": 0.0, "clock": None},
    ]
    for seed, kwargs in enumerate(options):
        gen = EventGenerator(seed, **{"clock": FakeClock(), **kwargs})
        for ev in gen.take(3000):
            validate_event(ev)
            assert ev["hook_event_type"] in HOOK_EVENT_TYPES
            assert ev["payload"]["hook_event_name"] == ev["hook_event_type"]
            assert ev["model_name"] in corpus.MODEL_NAMES
        assert gen.count == 3000


def test_large_output_and_summary_probabilities_are_honoured() -> None:
    def posts(gen: EventGenerator) -> list[dict[str, Any]]:
        return [
            e
            for e in gen.take(3000)
            if e["hook_event_type"] == "PostToolUse"
            and e["payload"]["tool_name"] in ("Read", "Bash", "Grep", "Task")
        ]

    always = posts(EventGenerator(1, large_output_prob=1.0, summary_prob=1.0, clock=None))
    never = posts(EventGenerator(1, large_output_prob=0.0, summary_prob=0.0, clock=None))
    assert always and never
    assert all(len(encode_json(e)) >= 4096 for e in always)
    assert all(len(encode_json(e)) < 4096 for e in never)
    assert all("summary" in e for e in EventGenerator(2, summary_prob=1.0).take(500))
    assert not any("summary" in e for e in EventGenerator(2, summary_prob=0.0).take(500))


def test_post_tool_use_repeats_its_pre_tool_use_input() -> None:
    events = EventGenerator(13, sessions=1, clock=None).take(3000)
    pre: dict[str, Any] | None = None
    checked = 0
    for ev in events:
        kind = ev["hook_event_type"]
        if kind == "PreToolUse":
            pre = ev["payload"]
        elif kind == "PostToolUse":
            assert pre is not None
            assert ev["payload"]["tool_name"] == pre["tool_name"]
            assert ev["payload"]["tool_input"] == pre["tool_input"]
            assert "_subagent_done" not in ev["payload"]["tool_input"]
            pre = None
            checked += 1
    assert checked > 500


@pytest.mark.parametrize(
    "kwargs",
    [{"sessions": 0}, {"sessions": 101}, {"apps": []}, {"large_output_prob": 1.5}],
)
def test_generator_rejects_out_of_bounds_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EventGenerator(0, **kwargs)


def test_post_tool_use_input_is_a_copy_so_editing_one_event_leaves_the_other_alone():
    events = EventGenerator(seed=11, sessions=1).take(400)
    pre = {}
    checked = 0
    for e in events:
        p = e["payload"]
        if e["hook_event_type"] == "PreToolUse":
            pre[e["session_id"]] = p["tool_input"]
        elif e["hook_event_type"] == "PostToolUse":
            before = pre.pop(e["session_id"])
            assert p["tool_input"] == before and p["tool_input"] is not before
            checked += 1
    assert checked >= 10
