"""EventFrame queries: tail, filter, search, plain_table, categories (wsnotebook.frame.query,
.search)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from _helpers import make_hook_event

from wsnotebook.errors import ConfigError
from wsnotebook.frame import EventFrame
from wsnotebook.frame.chunks import OpenChunk
from wsnotebook.frame.search import blob_pattern

# The shared valid hook event (tests/_helpers.py): stamps server +1.5 ms, client +4 ms.
ev = make_hook_event


def ids_of(df: pd.DataFrame) -> list[int]:
    return df["id"].tolist()


def test_categories_list_only_values_still_retained() -> None:
    frame = EventFrame(max_rows=4, chunk_rows=2)
    frame.extend([ev(i, session_id=f"s{i}") for i in range(1, 7)])
    assert frame.categories("session_id") == ["s3", "s4", "s5", "s6"]
    # first-seen order (ids 1, 2 were evicted but their values are seen again later)
    assert frame.categories("hook_event_type") == [
        "PostToolUse",
        "Notification",
        "Stop",
        "PreToolUse",
    ]
    assert list(frame.df["session_id"].cat.categories) == ["s3", "s4", "s5", "s6"]
    with pytest.raises(ConfigError, match="categories: column must be one of"):
        frame.categories("payload")


@pytest.mark.parametrize("n", [0, 1, 5, 9, 50])
def test_tail_returns_last_rows_oldest_first(n: int) -> None:
    frame = EventFrame(max_rows=20, chunk_rows=4)
    frame.extend([ev(i) for i in range(1, 31)])  # retained: 11..30 across chunks + open chunk
    assert ids_of(frame.tail(n)) == (list(range(11, 31))[-n:] if n else [])
    with pytest.raises(ConfigError):
        frame.tail(-1)


def _varied_events(first: int, last: int) -> list[dict[str, Any]]:
    """Events with every kind of column filled now and then (summary, chat, unknown fields,
    non-ASCII payload text), so partial copies of the open chunk must slice all of them."""
    out = []
    for i in range(first, last + 1):
        extra: dict[str, Any] = {}
        if i % 3 == 0:
            extra["summary"] = f"sum {i}"
        if i % 4 == 0:
            extra["chat"] = [{"role": "user", "text": f"hi {i}"}]
        if i % 5 == 0:
            extra["custom_field"] = {"k": i}
        out.append(ev(i, payload={"text": f"café {i}", "n": i}, **extra))
    return out


def _rows_of(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Row dicts with categoricals as plain values and null columns dropped (a DataFrame
    built from some rows only has the categories and extra columns those rows use)."""
    out = []
    for rec in df.astype(object).to_dict("records"):
        out.append({k: v for k, v in rec.items() if not (v is None or v is pd.NaT or v != v)})
    return out


@pytest.mark.parametrize("n", [1, 3, 7, 8, 13, 40])
def test_tail_and_unfiltered_filter_equal_the_last_rows_of_df(n: int) -> None:
    # chunk_rows 8: 37 events leave 5 rows in the open chunk, so n = 1..5 copy part of the
    # open chunk only, and larger n continue into frozen chunks.
    frame = EventFrame(max_rows=30, chunk_rows=8)
    frame.extend(_varied_events(1, 37))
    df = frame.df
    expected = _rows_of(df.tail(n))
    assert [r["id"] for r in expected] == list(range(8, 38))[-n:]
    assert _rows_of(frame.tail(n)) == expected
    assert _rows_of(frame.filter(limit=n)) == expected
    cols, _ = frame.numeric_columns(["timestamp", "client_received"], last=n)
    assert (
        cols["timestamp"].astype(np.int64).tolist()
        == (df["timestamp"].tail(n).astype("int64") // 1_000_000).tolist()
    )
    assert (
        cols["client_received"].astype(np.int64).tolist()
        == (df["client_received"].tail(n).astype("int64") // 1_000_000).tolist()
    )


def test_newest_rows_copy_only_themselves_from_the_open_chunk(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # tail / filter(limit) / the numeric helpers must not snapshot the whole open chunk: that
    # copy (megabytes of payload text in one GIL-holding call) stalled a busy kernel's cells.
    frame = EventFrame(max_rows=1000, chunk_rows=512)
    frame.extend(_varied_events(1, 600))

    def whole_view(*a: Any, **k: Any) -> Any:
        raise AssertionError("copied the whole open chunk")

    monkeypatch.setattr(OpenChunk, "view", whole_view)
    assert ids_of(frame.tail(3)) == [598, 599, 600]
    assert ids_of(frame.filter(limit=3)) == [598, 599, 600]
    assert len(frame.filter(limit=0)) == 0
    assert frame.latency().loc["latency_ms", "count"] == 600
    assert frame.throughput("1s").sum() > 0
    with pytest.raises(AssertionError, match="whole open chunk"):
        frame.filter(session_id="session-1", limit=3)  # conditions scan the whole chunk


def test_filter_by_categories_and_limit_newest_first() -> None:
    frame = EventFrame(max_rows=100, chunk_rows=8)
    frame.extend([ev(i) for i in range(1, 41)])
    pre = [i for i in range(1, 41) if ev(i)["hook_event_type"] == "PreToolUse"]
    assert ids_of(frame.filter(hook_event_type="PreToolUse")) == pre
    assert ids_of(frame.filter(hook_event_type="PreToolUse", limit=3)) == pre[-3:]
    both = frame.filter(hook_event_type=["PreToolUse", "Stop"], source_app="app0")
    assert ids_of(both) == [
        i for i in range(1, 41) if i % 2 == 0 and ev(i)["hook_event_type"] in ("PreToolUse", "Stop")
    ]
    assert len(frame.filter(session_id="nope")) == 0
    with pytest.raises(ConfigError, match="filter: invalid search pattern"):
        frame.filter(search="(unclosed")
    assert len(frame.filter(limit=0)) == 0
    assert ids_of(frame.filter(limit=5)) == [36, 37, 38, 39, 40]
    with pytest.raises(ConfigError):
        frame.filter(limit=-1)


def _search_events() -> list[dict[str, Any]]:
    texts = ["alpha", "beta", "héllo wörld", "gamma", "alphabet", "x", "café", "ALPHA"]
    return [
        ev(i + 1, payload={"text": t, "i": i}, summary=("sum " + t) if i % 3 == 0 else None)
        for i, t in enumerate(texts * 5)
    ]


@pytest.mark.parametrize(
    "pattern",
    [
        "alpha",
        r"alpha\b",
        r"^\{\"text\":\"x\"",
        r"\d\}$",
        "é",
        "w.rld",
        "sum (beta|gamma)",
        "(?i)ALPHA",
        r"\"i\":1[0-9]",
        "nothing-matches",
        r"[^\"]*x",
    ],
)
@pytest.mark.parametrize("chunk_rows", [4, 64])
def test_search_matches_exactly_what_a_per_row_regex_finds(pattern: str, chunk_rows: int) -> None:
    import re

    import orjson

    events = _search_events()
    frame = EventFrame(max_rows=64, chunk_rows=chunk_rows)
    frame.extend(events)
    rx = re.compile(pattern)
    expected = [
        e["id"]
        for e in events
        if rx.search(orjson.dumps(e["payload"]).decode()) or rx.search(e.get("summary") or "")
    ]
    assert ids_of(frame.filter(search=pattern)) == expected
    assert ids_of(frame.filter(search=rx, limit=2)) == expected[-2:]
    combined = frame.filter(search=pattern, source_app="app1")
    assert ids_of(combined) == [i for i in expected if i % 2 == 1]


def _ascii_search_events() -> list[dict[str, Any]]:
    """ASCII rows only, so whole chunks take the one-pass scan of their joined text."""
    words = ["alpha", "beta", "x", "alphabet", "gamma"]
    return [
        ev(i, payload={"text": words[i % 5], "i": i}, summary=f"s{i}" if i % 4 == 0 else None)
        for i in range(1, 41)
    ]


@pytest.mark.parametrize(
    "pattern",
    [
        r"\A\{\"text\"",
        r"\}\Z",
        r"(?<!\n)\{",
        r"(?<![\n,])\{\"text\":\"x\"",
        r"(?<=\{)\"text\"",
        r"\d\}(?!\n)",
        r"(?=\{\"text\":\"beta)",
        r"^\{\"text\":\"x\"",
        r"\d\}$",
        r"(?m)^\{",
        r"(?s)alpha.*\"i\":3\d",
        r"(?>\d+)\}",
        r"\"i\":\d++\}",
        r"\bx\b",
        r"\Balpha",
        r"\A s\d",
        r"alpha",
        r"\n",
        r"\s",
    ],
)
@pytest.mark.parametrize("chunk_rows", [4, 16, 64])
def test_search_results_equal_searching_each_row_alone_for_anchors_and_lookarounds(
    pattern: str, chunk_rows: int
) -> None:
    import re

    events = _ascii_search_events()
    frame = EventFrame(max_rows=64, chunk_rows=chunk_rows)
    frame.extend(events)
    for rx in (re.compile(pattern), re.compile(pattern, re.MULTILINE)):
        expected = [
            e["id"]
            for e in events
            if rx.search(orjson.dumps(e["payload"]).decode()) or rx.search(e.get("summary") or "")
        ]
        assert ids_of(frame.filter(search=rx)) == expected, rx
        assert ids_of(frame.filter(search=rx, limit=3)) == expected[-3:]
        assert ids_of(frame.filter(search=rx, source_app="app1")) == [
            i for i in expected if i % 2 == 1
        ]


def test_ordinary_search_patterns_keep_the_one_pass_scan() -> None:
    import re

    for fast in ("alpha", r"\"tool_name\":\"Bash\"", r"^\{", r"\d\}$", r"\bx\b", r"a+b*?"):
        assert blob_pattern(re.compile(fast)) is not None, fast
    for slow in (r"\Ax", r"x\Z", r"(?=x)", r"(?!x)", r"(?<=x)", r"(?<!x)", r"(?>x)", r"x++"):
        assert blob_pattern(re.compile(slow)) is None, slow


@pytest.mark.parametrize("chunk_rows", [3, 7, 100])
def test_filter_pieces_can_scan_only_the_newest_rows(chunk_rows: int) -> None:
    frame = EventFrame(chunk_rows=chunk_rows)
    frame.extend([ev(i, summary="hit" if i % 5 == 0 else "miss") for i in range(1, 41)])
    for scan in (0, 1, 9, 10, 11, 40, 100):
        table = frame.plain_table(search="hit", scan=scan)
        expected = [i for i in range(max(1, 41 - scan), 41) if i % 5 == 0]
        assert list(table["id"]) == expected, scan
    assert list(frame.plain_table(search="hit", scan=10, limit=1)["id"]) == [40]
