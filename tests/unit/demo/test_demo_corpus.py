"""The corpus draws: tool weights, uniform draws, word texts and code excerpts (pure)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from wsnotebook.demo import corpus
from wsnotebook.demo.generator import EventGenerator, make_event


def test_tool_choice_follows_the_tool_weights() -> None:
    total = sum(corpus.TOOL_WEIGHTS)
    rng = random.Random(12345)
    n = 100_000
    drawn = Counter(corpus.pick_tool(rng) for _ in range(n))
    assert set(drawn) == set(corpus.TOOL_NAMES)
    for name, weight in zip(corpus.TOOL_NAMES, corpus.TOOL_WEIGHTS):
        # binomial standard deviation is <= 0.0015 here: 0.006 is 4 sigma (fixed seed anyway)
        assert drawn[name] / n == pytest.approx(weight / total, abs=0.006), name
    # ... and the generator's PreToolUse events use that draw
    events = EventGenerator(3, clock=None).take(40_000)
    used = Counter(
        e["payload"]["tool_name"] for e in events if e["hook_event_type"] == "PreToolUse"
    )
    pre = sum(used.values())
    assert pre > 10_000
    for name, weight in zip(corpus.TOOL_NAMES, corpus.TOOL_WEIGHTS):
        assert used[name] / pre == pytest.approx(weight / total, abs=0.015), name


def test_uniform_draws_cover_their_range_and_stay_inside_it() -> None:
    rng = random.Random(77)
    ints = Counter(corpus.randint(rng, 1, 8) for _ in range(8000))
    assert set(ints) == set(range(1, 9))  # both ends included, nothing outside
    assert min(ints.values()) > 800  # ~1000 each
    assert {corpus.randint(rng, 5, 5) for _ in range(50)} == {5}
    picks = Counter(corpus.pick(rng, "abc") for _ in range(3000))
    assert set(picks) == {"a", "b", "c"} and min(picks.values()) > 850
    assert {corpus.pick(rng, ("only",)) for _ in range(50)} == {"only"}


def test_texts_have_the_asked_word_count_and_uniform_words() -> None:
    rng = random.Random(5)
    words: Counter[str] = Counter()
    for k in (1, 2, 5, 10, 30, 32, 40):
        for _ in range(300):
            text = corpus.text(rng, k)
            parts = text.split(" ")
            assert len(parts) == k
            assert set(parts) <= set(corpus.WORDS)
            words.update(parts)
    assert set(words) == set(corpus.WORDS)
    mean = sum(words.values()) / len(corpus.WORDS)
    assert all(0.8 * mean < c < 1.2 * mean for c in words.values())


def test_tool_outputs_are_whole_lines_within_bounds() -> None:
    rng = random.Random(8)
    for nbytes in (-3, 0, 1, 20, 120, 4096, 32768, 10**7):
        for _ in range(50):
            text, lines = corpus.code_lines(rng, nbytes)
            assert lines == text.count("\n") + 1
            assert len(text) >= min(max(nbytes, 1), 80_000) - 1
            assert not text.startswith("\n") and not text.endswith("\n")
    for _ in range(200):
        ev = make_event(rng, hook_event_type="PostToolUse", tool_name="Read", large=True)
        file = ev["payload"]["tool_response"]["file"]
        assert file["numLines"] == file["content"].count("\n") + 1
        assert len(file["content"]) >= 4095
