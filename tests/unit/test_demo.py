"""The synthetic agent-hook generator and token-bucket pacing (sans-I/O, no sockets)."""

from __future__ import annotations

import random
import statistics
import threading
from collections import Counter, defaultdict
from typing import Any

import pytest

from wsnotebook.demo import producer as _demo
from wsnotebook.demo.producer import (
    HOOK_EVENT_TYPES,
    DemoProducer,
    EventGenerator,
    TokenBucket,
    events_url,
    make_event,
)
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
    assert len({e["source_app"] for e in events}) == len(_demo.SOURCE_APPS)


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
            assert ev["model_name"] in _demo.MODEL_NAMES
        assert gen.count == 3000


def test_tool_choice_follows_the_tool_weights() -> None:
    total = sum(_demo._TOOL_WEIGHTS)
    rng = random.Random(12345)
    n = 100_000
    drawn = Counter(_demo._pick_tool(rng) for _ in range(n))
    assert set(drawn) == set(_demo.TOOL_NAMES)
    for name, weight in zip(_demo.TOOL_NAMES, _demo._TOOL_WEIGHTS):
        # binomial standard deviation is <= 0.0015 here: 0.006 is 4 sigma (fixed seed anyway)
        assert drawn[name] / n == pytest.approx(weight / total, abs=0.006), name
    # ... and the generator's PreToolUse events use that draw
    events = EventGenerator(3, clock=None).take(40_000)
    used = Counter(
        e["payload"]["tool_name"] for e in events if e["hook_event_type"] == "PreToolUse"
    )
    pre = sum(used.values())
    assert pre > 10_000
    for name, weight in zip(_demo.TOOL_NAMES, _demo._TOOL_WEIGHTS):
        assert used[name] / pre == pytest.approx(weight / total, abs=0.015), name


def test_uniform_draws_cover_their_range_and_stay_inside_it() -> None:
    rng = random.Random(77)
    ints = Counter(_demo._randint(rng, 1, 8) for _ in range(8000))
    assert set(ints) == set(range(1, 9))  # both ends included, nothing outside
    assert min(ints.values()) > 800  # ~1000 each
    assert {_demo._randint(rng, 5, 5) for _ in range(50)} == {5}
    picks = Counter(_demo._pick(rng, "abc") for _ in range(3000))
    assert set(picks) == {"a", "b", "c"} and min(picks.values()) > 850
    assert {_demo._pick(rng, ("only",)) for _ in range(50)} == {"only"}


def test_texts_have_the_asked_word_count_and_uniform_words() -> None:
    rng = random.Random(5)
    words: Counter[str] = Counter()
    for k in (1, 2, 5, 10, 30, 32, 40):
        for _ in range(300):
            text = _demo._text(rng, k)
            parts = text.split(" ")
            assert len(parts) == k
            assert set(parts) <= set(_demo._WORDS)
            words.update(parts)
    assert set(words) == set(_demo._WORDS)
    mean = sum(words.values()) / len(_demo._WORDS)
    assert all(0.8 * mean < c < 1.2 * mean for c in words.values())


def test_tool_outputs_are_whole_lines_within_bounds() -> None:
    rng = random.Random(8)
    for nbytes in (-3, 0, 1, 20, 120, 4096, 32768, 10**7):
        for _ in range(50):
            text, lines = _demo._code_lines(rng, nbytes)
            assert lines == text.count("\n") + 1
            assert len(text) >= min(max(nbytes, 1), 80_000) - 1
            assert not text.startswith("\n") and not text.endswith("\n")
    for _ in range(200):
        ev = make_event(rng, hook_event_type="PostToolUse", tool_name="Read", large=True)
        file = ev["payload"]["tool_response"]["file"]
        assert file["numLines"] == file["content"].count("\n") + 1
        assert len(file["content"]) >= 4095


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


def test_token_bucket_paces_to_the_rate() -> None:
    bucket = TokenBucket(100.0, 10.0, now=0.0)
    assert bucket.take(5, now=0.0) == 0
    assert bucket.wait_time(5, now=0.0) == pytest.approx(0.05)
    assert bucket.take(5, now=0.05) == 5
    # simulate one second of 10 ms steps taking what is available: ~100 tokens
    total = 0
    for step in range(1, 101):
        total += bucket.take(10, now=0.05 + step * 0.01)
    assert 95 <= total <= 101


def test_token_bucket_caps_the_burst_after_a_stall() -> None:
    bucket = TokenBucket(1000.0, 50.0, now=0.0)
    assert bucket.available(now=60.0) == 50.0
    assert bucket.take(10_000, now=60.0) == 50
    assert bucket.wait_time(500, now=60.0) == pytest.approx(0.05)  # capped at capacity


def test_token_bucket_rejects_bad_bounds() -> None:
    with pytest.raises(ConfigError):
        TokenBucket(0, 10, now=0)
    with pytest.raises(ConfigError):
        TokenBucket(10, 0.5, now=0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://127.0.0.1:4000/stream", "http://127.0.0.1:4000/events"),
        ("wss://host:9/stream?batch=5&token=abc", "https://host:9/events?token=abc"),
        ("http://localhost:4000", "http://localhost:4000/events"),
    ],
)
def test_events_url_maps_server_urls_to_the_ingest_endpoint(url: str, expected: str) -> None:
    assert events_url(url) == expected


def test_events_url_rejects_other_schemes() -> None:
    with pytest.raises(ConfigError):
        events_url("ftp://x/y")


class RecordingServer:
    """Stands in for an in-process server: records what is published."""

    def __init__(self, fail_first: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.calls = 0
        self.fail_first = fail_first
        self.got = threading.Event()

    def publish(self, events: list[dict[str, Any]]) -> None:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("boom")
        self.events.extend(events)
        self.got.set()


def test_producer_publishes_batches_into_a_server_and_stops_by_itself() -> None:
    server = RecordingServer()
    prod = DemoProducer(server, rate=2000, batch=25, seed=1, max_events=200)
    assert prod.join(timeout=30)
    assert not prod.running
    assert prod.sent == 200 == len(server.events)
    assert server.calls == 8
    assert prod not in _demo.active_producers()


def test_producer_errors_are_counted_not_raised() -> None:
    server = RecordingServer(fail_first=2)
    prod = DemoProducer(server, rate=5000, batch=10, seed=1, max_events=50)
    assert prod.join(timeout=30)
    assert prod.errors == 2 and prod.failed == 20
    assert prod.sent == 50
    assert prod.metrics()["last_error"] == "RuntimeError: boom"


def test_stop_all_stops_running_producers() -> None:
    server = RecordingServer()
    prod = _demo.start_demo(server, rate=200, seed=3)
    assert server.got.wait(10)
    assert prod in _demo.active_producers()
    assert _demo.stop_all(timeout=10) >= 1
    assert not prod.running
    sent = prod.sent
    assert len(server.events) == sent


@pytest.mark.parametrize(
    "kwargs", [{"rate": 0}, {"rate": 1e6}, {"batch": 0}, {"max_events": 0}, {"duration": 0}]
)
def test_producer_rejects_out_of_bounds_options(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        DemoProducer(RecordingServer(), **kwargs)


def test_producer_rejects_a_target_without_publish() -> None:
    with pytest.raises(ConfigError):
        DemoProducer(object())


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


def test_a_fast_producer_wakes_at_most_once_per_min_wake_and_sends_every_batch() -> None:
    # 10k ev/s in batches of 10 is a batch due every 1 ms.  Each timer sleep lasts at least
    # MIN_WAKE (10 ms), after which >= 100 tokens wait, so 3000 events need <= 31 wake-ups
    # whatever the machine's speed (one per batch, ~300, before MIN_WAKE).
    server = RecordingServer()
    prod = DemoProducer(server, rate=10_000, batch=10, seed=1, max_events=3000)
    assert prod.join(timeout=60)
    assert prod.sent == 3000 == len(server.events)
    assert server.calls == 300  # still one publish per batch of 10
    assert DemoProducer.MIN_WAKE == 0.01
    assert 1 <= prod.wakeups <= 3000 // 100 + 1
    assert prod.metrics()["wakeups"] == prod.wakeups


def test_a_fast_producer_yields_after_each_wake_up_and_then_every_yield_every_seconds() -> None:
    # Yielding (and checking the CPU budget) after every batch cost a loop iteration per batch.
    # Back-to-back batches now go out for up to YIELD_EVERY seconds between yields: with an
    # interval nothing reaches, the producer yields exactly once at the start and once after
    # each timer wake-up; with 0 it yields before every batch.
    class NeverWithin(DemoProducer):
        YIELD_EVERY = 1e9

    class EveryBatch(DemoProducer):
        YIELD_EVERY = 0.0

    assert DemoProducer.YIELD_EVERY == 0.002
    coarse = NeverWithin(RecordingServer(), rate=10_000, batch=10, seed=1, max_events=3000)
    assert coarse.join(timeout=60) and coarse.sent == 3000
    assert coarse.yields == coarse.wakeups + 1 == coarse.metrics()["yields"]
    fine_server = RecordingServer()
    fine = EveryBatch(fine_server, rate=10_000, batch=10, seed=1, max_events=3000)
    assert fine.join(timeout=60) and fine.sent == 3000
    assert fine.yields >= fine_server.calls == 300
