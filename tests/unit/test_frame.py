"""EventFrame: storage, bounds, dedupe, gaps, snapshots, helpers, parquet, subscribe, threads."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from _helpers import T0_MS, make_hook_event

import wsnotebook.frame.frame as frame_module
from wsnotebook.errors import ConfigError, EventValidationError
from wsnotebook.events.columns import decode_batch_columns
from wsnotebook.frame import EventFrame
from wsnotebook.frame.frame import MAX_GAPS

UTC_NS = "datetime64[ns, UTC]"
# The shared valid hook event (tests/_helpers.py): stamps server +1.5 ms, client +4 ms.
ev = make_hook_event


def ids_of(df: pd.DataFrame) -> list[int]:
    return df["id"].tolist()


def test_ev_is_the_shared_helper_behind_the_hook_event_fixture(hook_event):
    """No private copy of the event builder here: the conftest fixture and this module use the
    one in tests/_helpers.py."""
    assert ev is make_hook_event
    assert hook_event is ev
    e = ev(5, summary="s")
    assert e["timestamp"] == T0_MS + 5 and e["client_received"] - e["server_received"] == 2.5
    assert e["summary"] == "s"


# --------------------------------------------------------------------------- construction


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_rows": 0},
        {"max_rows": 100_000_001},
        {"max_rows": True},
        {"max_rows": 1.5},
        {"max_rows": 10, "chunk_rows": 11},
        {"max_rows": 10, "chunk_rows": 0},
    ],
)
def test_invalid_bounds_raise_config_error(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        EventFrame(**kwargs)


def test_empty_frame_has_typed_empty_columns() -> None:
    frame = EventFrame()
    df = frame.df
    assert len(frame) == 0 and len(df) == 0
    assert df["id"].dtype == np.int64
    assert str(df["timestamp"].dtype) == UTC_NS
    assert isinstance(df["source_app"].dtype, pd.CategoricalDtype)
    assert df["latency_ms"].dtype == np.float64
    assert list(df.columns[-5:]) == [
        "server_received",
        "client_received",
        "latency_ms",
        "ingest_ms",
        "transit_ms",
    ]
    assert len(frame.tail(5)) == 0 and len(frame.filter(search="x")) == 0


# --------------------------------------------------------------------------- dtypes and values


def test_df_has_real_dtypes_and_values() -> None:
    frame = EventFrame()
    frame.extend([ev(1, summary="s1", model_name="m", chat=[{"role": "user"}]), ev(2)])
    frame.append({k: v for k, v in ev(3).items() if k not in ("id", "client_received")})
    df = frame.df
    assert df["id"].dtype == np.int64 and ids_of(df) == [1, 2, -1]
    for col in ("timestamp", "server_received", "client_received"):
        assert str(df[col].dtype) == UTC_NS
    for col in ("source_app", "session_id", "hook_event_type"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype)
    for col in ("payload", "summary", "model_name", "chat"):
        assert df[col].dtype == object
    assert df["payload"][0] == {"tool_name": "Bash", "tool_input": {"command": "echo 1"}, "n": 1}
    assert df["summary"].tolist() == ["s1", None, None]
    assert df["model_name"].tolist() == ["m", None, None]
    assert df["chat"][0] == [{"role": "user"}] and df["chat"][1] is None
    assert df["timestamp"][0] == pd.Timestamp(int(T0_MS) + 1, unit="ms", tz="UTC")
    assert df["latency_ms"].tolist()[:2] == [4.0, 4.0]
    assert df["ingest_ms"].tolist()[:2] == [1.5, 1.5]
    assert df["transit_ms"].tolist()[:2] == [2.5, 2.5]
    assert pd.isna(df["client_received"][2]) and np.isnan(df["latency_ms"][2])
    assert df["ingest_ms"][2] == 1.5


def test_sub_millisecond_timestamps_convert_exactly() -> None:
    frame = EventFrame()
    frame.append(ev(1, timestamp=1_760_000_000_123.25))
    stamp = frame.df["timestamp"][0]
    assert stamp.value == 1_760_000_000_123_250_000


def test_unknown_top_level_fields_become_object_columns() -> None:
    frame = EventFrame()
    frame.extend([ev(1, region="eu", nested={"a": [1, 2]}), ev(2), ev(3, region="us")])
    frame.append(ev(4, region="ap"))
    df = frame.df
    assert df["region"].tolist() == ["eu", None, "us", "ap"]
    assert df["nested"][0] == {"a": [1, 2]} and df["nested"][1] is None
    assert df["region"].dtype == object


def test_payload_dicts_in_df_are_copies() -> None:
    frame = EventFrame()
    frame.append(ev(1))
    frame.df["payload"][0]["n"] = "mutated"
    assert frame.df["payload"][0]["n"] == 1


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


# --------------------------------------------------------------------------- category compaction


@pytest.fixture
def compact_at_8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Category columns are checked for dead values from 8 values on (65536 by default)."""
    monkeypatch.setattr(frame_module, "_COMPACT_MIN", 8)


def _append(frame: EventFrame, events: list[dict[str, Any]], path: str) -> None:
    if path == "dicts":
        frame.extend(events)
        return
    raw = b'{"type":"batch","data":[' + b",".join(map(orjson.dumps, events)) + b"]}"
    cols = decode_batch_columns(raw)
    assert cols is not None
    frame.extend_columns(cols)


@pytest.mark.parametrize("path", ["dicts", "columns"])
def test_values_whose_rows_were_all_evicted_are_dropped_so_categories_stay_bounded(
    compact_at_8: None, path: str
) -> None:
    # One new session per event, 2002 events, 10 rows kept.  Before compaction the session
    # dictionary held every value ever seen (2002 here; unbounded in a long-running monitor).
    frame = EventFrame(max_rows=10, chunk_rows=4)
    sizes = []
    for start in range(0, 2002, 7):
        _append(frame, [ev(i, session_id=f"s{i}") for i in range(start + 1, start + 8)], path)
        sizes.append(len(frame._cats[1].values))
    # Checked at 8 values, then whenever the count doubles past the live ones: at most
    # 2 * max(8, live <= 10) values, plus one batch (7) appended before the check.
    assert max(sizes) <= 2 * 10 + 7
    last = list(range(1993, 2003))
    df = frame.df
    assert ids_of(df) == last
    assert df["session_id"].tolist() == [f"s{i}" for i in last]
    assert list(df["session_id"].cat.categories) == [f"s{i}" for i in last]
    assert frame.categories("session_id") == [f"s{i}" for i in last]
    assert frame.categories("source_app") == ["app1", "app0"]
    assert df["model_name"].isna().all()
    assert ids_of(frame.filter(session_id="s1999")) == [1999]
    assert len(frame.filter(session_id="s5")) == 0
    by = frame.throughput("1ms", by="session_id")
    assert sorted(by.columns) == sorted(f"s{i}" for i in last)
    # A value that died comes back with a new code and reads back right.
    _append(frame, [ev(3000, session_id="s5")], path)
    assert frame.df["session_id"].tolist()[-1] == "s5"
    assert frame.categories("session_id")[-1] == "s5"


def test_a_snapshot_taken_before_a_compaction_reads_its_own_values(compact_at_8: None) -> None:
    frame = EventFrame(max_rows=8, chunk_rows=4)
    for i in range(1, 13):  # one by one: checked at 8 values (all live), next check at 16
        frame.append(ev(i, session_id=f"s{i}"))
    pieces, values = frame._pieces()  # what .df / filter hold between the lock and building
    before = frame_module._build(pieces, values)
    assert before["session_id"].tolist() == [f"s{i}" for i in range(5, 13)]
    for i in range(13, 17):
        frame.append(ev(i, session_id=f"s{i}"))
    # At 16 values, s1..s8 are dead: compacted.  The retained chunk of s9..s12 was re-coded;
    # the snapshot above still holds that chunk with its old codes and the old values.
    assert frame._cats[1].values == [f"s{i}" for i in range(9, 17)]
    pd.testing.assert_frame_equal(frame_module._build(pieces, values), before)
    assert frame.df["session_id"].tolist() == [f"s{i}" for i in range(9, 17)]


def test_categories_with_many_live_values_are_left_alone(compact_at_8: None) -> None:
    frame = EventFrame(max_rows=1000, chunk_rows=16)
    frame.extend([ev(i, session_id=f"s{i}") for i in range(1, 301)])
    assert len(frame._cats[1].values) == 300  # all live: nothing to drop
    assert frame.categories("session_id") == [f"s{i}" for i in range(1, 301)]


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ("not an event", "event: expected object, got string"),
        (ev(1, id="7"), "id: expected integer, got string"),
        (ev(1, id=True), "id: expected integer, got boolean"),
        (ev(1, source_app=5), "source_app: expected string, got number"),
        (ev(1, summary=3), "summary: expected string or null, got number"),
        (ev(1, payload={"x": {1, 2}}), "payload: cannot encode as JSON"),
        (ev(1, chat=[object()]), "chat: cannot encode as JSON"),
    ],
)
@pytest.mark.parametrize("method", ["append", "extend"])
def test_unstorable_events_are_rejected_and_leave_frame_unchanged(
    event: Any, message: str, method: str
) -> None:
    frame = EventFrame(max_rows=10, chunk_rows=2)
    frame.extend([ev(100), ev(101), ev(102)])
    before = (len(frame), frame.total, frame.df.to_dict("list"))
    with pytest.raises(EventValidationError, match=message):
        if method == "append":
            frame.append(event)
        else:
            frame.extend([ev(200), ev(201), event])
    assert (len(frame), frame.total, frame.df.to_dict("list")) == before
    assert frame.append(ev(201))  # the failed batch did not poison the id set


@pytest.mark.parametrize("method", ["append", "extend"])
def test_bad_timestamp_is_rejected(method: str) -> None:
    frame = EventFrame()
    with pytest.raises(EventValidationError, match="timestamp: expected number"):
        if method == "append":
            frame.append(ev(1, timestamp="yesterday"))
        else:
            frame.extend([ev(1), ev(2, timestamp="yesterday")])
    assert len(frame) == 0


def test_missing_optional_fields_are_tolerated() -> None:
    frame = EventFrame()
    frame.extend([{"source_app": "a", "session_id": "s", "hook_event_type": "Stop", "payload": {}}])
    df = frame.df
    assert ids_of(df) == [-1] and pd.isna(df["timestamp"][0]) and df["payload"][0] == {}


# --------------------------------------------------------------------------- bounds, dedupe


@pytest.mark.parametrize("chunk_rows", [1, 3, 7])
def test_oldest_rows_are_evicted_first_and_counted(chunk_rows: int) -> None:
    frame = EventFrame(max_rows=7, chunk_rows=chunk_rows)
    frame.extend([ev(i) for i in range(1, 11)])
    for i in range(11, 16):
        frame.append(ev(i))
    assert len(frame) == 7 and frame.total == 15 and frame.dropped == 8
    assert ids_of(frame.df) == list(range(9, 16))
    assert frame.stats()["rows"] == 7


def test_duplicate_ids_are_ignored_and_counted() -> None:
    frame = EventFrame()
    assert frame.extend([ev(1), ev(2), ev(3)]) == 3
    assert frame.append(ev(2)) is False
    assert frame.extend([ev(3), ev(4), ev(4), ev(1), ev(10)]) == 2
    assert frame.extend([ev(7), ev(5), ev(6)]) == 3  # out of order: still exactly-once
    assert frame.extend([ev(5), ev(6), ev(7)]) == 0
    assert frame.duplicates == 7
    assert ids_of(frame.df) == [1, 2, 3, 4, 10, 7, 5, 6]
    assert frame.stats()["id_intervals"] == 2  # 1..7 and 10: intervals, not a set of ids
    assert frame.stats()["id_holes_filled"] == 0


def test_events_without_id_are_never_deduplicated() -> None:
    frame = EventFrame()
    plain = {k: v for k, v in ev(1).items() if k != "id"}
    assert frame.append(plain) and frame.append(dict(plain))
    assert frame.extend([dict(plain), {**plain, "id": None}]) == 2
    assert len(frame) == 4 and frame.duplicates == 0


def test_evicted_ids_stay_deduplicated_until_reset_ids() -> None:
    frame = EventFrame(max_rows=2, chunk_rows=1)
    frame.extend([ev(1), ev(2), ev(3)])
    assert frame.append(ev(1)) is False
    version = frame.version
    frame.reset_ids()  # new server epoch: ids restart
    assert frame.version > version
    assert frame.append(ev(1)) is True
    assert ids_of(frame.df) == [3, 1]


def test_clear_drops_rows_but_keeps_counters_and_ids() -> None:
    frame = EventFrame()
    frame.extend([ev(1), ev(2)])
    frame.mark_gap(3, 4, "evicted")
    version = frame.version
    frame.clear()
    assert len(frame) == 0 and frame.total == 2 and frame.version > version
    assert len(frame.gaps) == 0 and frame.categories("source_app") == []
    assert frame.append(ev(2)) is False and frame.append(ev(3)) is True


def test_version_bumps_on_every_change() -> None:
    frame = EventFrame()
    seen = [frame.version]
    for action in (
        lambda: frame.append(ev(1)),
        lambda: frame.extend([ev(2)]),
        lambda: frame.append(ev(2)),  # duplicate: counted, so a change
        lambda: frame.mark_gap(5, 6, "x"),
        frame.clear,
    ):
        action()
        seen.append(frame.version)
    assert seen == sorted(set(seen))


# --------------------------------------------------------------------------- gaps


def test_gaps_are_recorded_as_a_typed_dataframe() -> None:
    frame = EventFrame()
    assert list(frame.gaps.columns) == ["from_id", "to_id", "reason", "time"]
    frame.mark_gap(5, 9, "evicted")
    frame.mark_gap(12, -1, "new epoch")
    gaps = frame.gaps
    assert gaps["from_id"].tolist() == [5, 12] and gaps["to_id"].tolist() == [9, -1]
    assert gaps["reason"].tolist() == ["evicted", "new epoch"]
    assert gaps["from_id"].dtype == np.int64 and str(gaps["time"].dtype) == UTC_NS
    assert frame.stats()["gaps"] == 2


def test_gap_records_are_bounded_to_the_newest_and_all_are_counted() -> None:
    frame = EventFrame()
    for i in range(MAX_GAPS + 5):
        frame.mark_gap(10 * i, 10 * i + 3, "evicted")
    gaps = frame.gaps
    assert len(gaps) == MAX_GAPS
    assert gaps["from_id"].iloc[0] == 50 and gaps["from_id"].iloc[-1] == 10 * (MAX_GAPS + 4)
    assert frame.stats()["gaps"] == MAX_GAPS and frame.stats()["gaps_total"] == MAX_GAPS + 5
    frame.clear()
    assert len(frame.gaps) == 0 and frame.stats()["gaps_total"] == MAX_GAPS + 5


# --------------------------------------------------------------------------- tail and filter


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

    monkeypatch.setattr(frame_module._Open, "view", whole_view)
    assert ids_of(frame.tail(3)) == [598, 599, 600]
    assert ids_of(frame.filter(limit=3)) == [598, 599, 600]
    assert len(frame.filter(limit=0)) == 0
    assert frame.latency().loc["latency_ms", "count"] == 600
    assert frame.throughput("1s").sum() > 0
    with pytest.raises(AssertionError, match="whole open chunk"):
        frame.filter(session_id="session-1", limit=3)  # conditions scan the whole chunk


@pytest.mark.parametrize("path", ["dicts", "columns", "one by one"])
def test_chunks_know_whether_their_text_is_ascii_without_rescanning_it(path: str) -> None:
    frame = EventFrame(max_rows=100, chunk_rows=8)
    events = [ev(i) for i in range(1, 13)] + [ev(13, payload={"t": "naïve"})]
    events += [ev(i) for i in range(14, 30)]
    if path == "one by one":
        for e in events:
            frame.append(e)
    else:
        for i in range(0, len(events), 5):
            _append(frame, events[i : i + 5], path)
    chunks = [*frame._frozen, frame._open.view(frozen=False), frame._open.tail_view(2)]
    assert [c.is_ascii for c in chunks] == [c.text().isascii() for c in chunks]
    assert [c.is_ascii for c in frame._frozen] == [True, False, True]
    assert ids_of(frame.filter(search="naïve")) == [13]
    assert ids_of(frame.filter(search="echo 2[0-9]")) == list(range(20, 30))


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


# --------------------------------------------------------------------------- throughput, latency


def _timed_events(rates: dict[str, int], seconds: int) -> list[dict[str, Any]]:
    out = []
    i = 0
    for sec in range(seconds):
        for kind, n in rates.items():
            for j in range(n):
                i += 1
                out.append(ev(i, hook_event_type=kind, timestamp=T0_MS + sec * 1000 + j))
    return out


def test_throughput_counts_events_per_second_with_zero_bins() -> None:
    frame = EventFrame()
    events = _timed_events({"A": 3, "B": 1}, 4)
    events.append(ev(999, hook_event_type="A", timestamp=T0_MS + 6000))
    frame.extend(events)
    series = frame.throughput("1s")
    assert series.tolist() == [4.0, 4.0, 4.0, 4.0, 0.0, 0.0, 1.0]
    assert str(series.index.dtype) == UTC_NS
    assert series.index[0] == pd.Timestamp(int(T0_MS), unit="ms", tz="UTC")
    assert frame.throughput("2s").tolist() == [4.0, 4.0, 0.0, 0.5]  # events per second
    # the window covers whole bins ending with the newest one: always window/freq bins
    assert frame.throughput("1s", window="3s").tolist() == [0.0, 0.0, 1.0]
    assert frame.throughput("1s", window="10s").tolist() == [0.0] * 3 + series.tolist()
    by = frame.throughput("1s", by="hook_event_type")
    assert by["A"].tolist() == [3.0, 3.0, 3.0, 3.0, 0.0, 0.0, 1.0]
    assert by["B"].tolist()[:4] == [1.0] * 4
    with pytest.raises(ConfigError):
        frame.throughput("0s")
    with pytest.raises(ConfigError):
        frame.throughput(by="payload")


def test_throughput_of_empty_frame_is_empty() -> None:
    assert len(EventFrame().throughput()) == 0
    assert len(EventFrame().throughput(by="source_app")) == 0


def test_latency_summarises_the_three_latency_columns() -> None:
    frame = EventFrame()
    frame.extend(
        [ev(i, client_received=T0_MS + i + i, server_received=T0_MS + i + 1) for i in range(1, 101)]
    )
    frame.append({k: v for k, v in ev(500).items() if k != "client_received"})
    lat = frame.latency((0.5, 0.99))
    assert list(lat.index) == ["latency_ms", "ingest_ms", "transit_ms"]
    assert list(lat.columns) == ["count", "mean", "min", "p50", "p99", "max"]
    assert lat.loc["latency_ms", "count"] == 100 and lat.loc["ingest_ms", "count"] == 101
    assert lat.loc["latency_ms", "min"] == 1.0 and lat.loc["latency_ms", "max"] == 100.0
    assert lat.loc["latency_ms", "p50"] == pytest.approx(50.5)
    assert lat.loc["ingest_ms", "mean"] == pytest.approx((100 * 1.0 + 1.5) / 101)
    assert lat.loc["transit_ms", "max"] == 99.0
    empty = EventFrame().latency()
    assert (empty["count"] == 0).all() and empty["mean"].isna().all()
    with pytest.raises(ConfigError):
        frame.latency((1.5,))


# --------------------------------------------------------------------------- parquet


def test_parquet_round_trip_keeps_rows_types_and_extras(tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    frame = EventFrame(max_rows=50, chunk_rows=8)
    frame.extend(
        [
            ev(i, summary=f"s{i}" if i % 2 else None, chat=[i] if i % 5 == 0 else None)
            for i in range(1, 60)
        ]
    )
    frame.append({**ev(100, region="eu"), "payload": {"ü": "ñ", "list": [1, None]}})
    frame.append({k: v for k, v in ev(0).items() if k not in ("id", "timestamp")})
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    back = EventFrame.from_parquet(path)
    # category order is first-seen order, which eviction before the export can change
    pd.testing.assert_frame_equal(back.df, frame.df, check_categorical=False)
    assert back.append(ev(100)) is False  # ids restored into the dedupe set
    small = EventFrame.from_parquet(path, max_rows=5)
    pd.testing.assert_frame_equal(
        small.df, frame.df.tail(5).reset_index(drop=True), check_categorical=False
    )


def test_from_parquet_rejects_foreign_files(tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(path)
    with pytest.raises(ConfigError, match="not an EventFrame parquet file"):
        EventFrame.from_parquet(path)


# --------------------------------------------------------------------------- subscribe


def test_subscribers_get_batch_sizes_and_errors_are_counted_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    frame = EventFrame()
    calls: list[tuple[int, int]] = []

    def good(f: EventFrame, n: int) -> None:
        calls.append((n, len(f)))  # may read the frame: called outside the lock

    def bad(f: EventFrame, n: int) -> None:
        raise RuntimeError("boom")

    unsubscribe = frame.subscribe(good)
    frame.subscribe(bad)
    with caplog.at_level(logging.ERROR, logger="wsnotebook"):
        assert frame.extend([ev(1), ev(2)]) == 2
        assert frame.append(ev(3))
    frame.append(ev(3))  # duplicate: no rows added, no call
    assert calls == [(2, 2), (1, 3)]
    assert frame.callback_errors == 2 and frame.stats()["callback_errors"] == 2
    assert "boom" in caplog.text
    unsubscribe()
    unsubscribe()  # idempotent
    frame.append(ev(4))
    assert calls == [(2, 2), (1, 3)]
    with pytest.raises(ConfigError):
        frame.subscribe("not callable")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- threads


def test_concurrent_appenders_and_snapshots_lose_and_tear_nothing() -> None:
    writers, per_writer, batch = 4, 3000, 50
    frame = EventFrame(max_rows=1_000_000, chunk_rows=256)
    start = threading.Barrier(writers + 1)
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            start.wait(timeout=30)
            base = w * per_writer
            for b in range(0, per_writer, batch):
                events = [
                    ev(base + i + 1, session_id=f"w{w}", payload={"w": w, "i": base + i + 1})
                    for i in range(b, b + batch)
                ]
                if b % (batch * 4) == 0:
                    for e in events:
                        frame.append(e)
                else:
                    frame.extend(events)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    start.wait(timeout=30)
    snapshots = 0
    while any(t.is_alive() for t in threads) or snapshots < 3:
        df = frame.df if snapshots % 2 == 0 else frame.tail(500)
        snapshots += 1
        assert df["id"].dtype == np.int64 and isinstance(
            df["session_id"].dtype, pd.CategoricalDtype
        )
        # no torn rows: every column of a row comes from the same event
        payload_ids = [p["i"] for p in df["payload"]]
        assert payload_ids == df["id"].tolist()
        writer_of_row = [f"w{p['w']}" for p in df["payload"]]
        assert writer_of_row == df["session_id"].astype(str).tolist()
        assert (df["latency_ms"] == 4.0).all()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    df = frame.df
    assert len(frame) == frame.total == writers * per_writer == len(df)
    assert sorted(df["id"]) == list(range(1, writers * per_writer + 1))  # no lost rows
    for w in range(writers):  # per-writer order preserved
        ids = df.loc[df["session_id"] == f"w{w}", "id"].tolist()
        assert ids == sorted(ids)


# --------------------------------------------------------------------------- compression


def test_frames_compress_full_chunks_by_default() -> None:
    assert EventFrame().compress in ("zstd", "zlib")
    assert EventFrame(compress=None).compress is None


def test_unknown_codec_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="compress must be 'auto', None, 'zlib', 'zstd' or 'lz4'"):
        EventFrame(compress="brotli")


@pytest.mark.parametrize("codec", ["zlib", "zstd", "lz4"])
def test_compressed_frame_answers_exactly_like_an_uncompressed_one(
    codec: str, tmp_path: Any
) -> None:
    if codec != "zlib":
        pytest.importorskip("pyarrow")
    events = [*_search_events(), ev(100, region="eu"), ev(101, chat=[1])]
    plain = EventFrame(max_rows=30, chunk_rows=4, compress=None)
    packed = EventFrame(max_rows=30, chunk_rows=4, compress=codec)
    plain.extend(events)
    packed.extend(events)
    pd.testing.assert_frame_equal(packed.df, plain.df)
    pd.testing.assert_frame_equal(packed.tail(7), plain.tail(7))
    for pattern in ("alpha", "é", r"\"i\":3[0-9]"):
        pd.testing.assert_frame_equal(packed.filter(search=pattern), plain.filter(search=pattern))
    assert packed.stats()["memory_bytes"] < plain.stats()["memory_bytes"]
    assert packed.stats()["compress"] == codec and plain.stats()["compress"] is None
    path = tmp_path / "packed.parquet"
    pytest.importorskip("pyarrow")
    packed.to_parquet(path)
    pd.testing.assert_frame_equal(
        EventFrame.from_parquet(path).df, plain.df, check_categorical=False
    )


def test_snapshot_can_keep_payload_as_json_text_or_leave_it_out() -> None:
    import orjson

    frame = EventFrame(max_rows=10, chunk_rows=3)
    events = [ev(i, payload={"i": i, "s": "é\n"}) for i in range(1, 9)]
    frame.extend(events)
    as_json = frame.snapshot(payload="json")
    assert as_json["payload"].tolist() == [orjson.dumps(e["payload"]).decode() for e in events]
    assert as_json["payload"].dtype == object
    without = frame.snapshot(payload="none")
    assert "payload" not in without.columns
    pd.testing.assert_frame_equal(without, frame.df.drop(columns=["payload"]))
    pd.testing.assert_frame_equal(frame.snapshot(), frame.df)
    with pytest.raises(ConfigError):
        frame.snapshot(payload="xml")


@pytest.mark.parametrize("method", ["append", "extend"])
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"server_received": "now"}, "server_received: expected number"),
        ({"client_received": [1]}, "client_received: expected number"),
        ({"id": 1 << 70}, "id: "),
    ],
)
def test_numeric_columns_reject_unstorable_values(
    method: str, fields: dict[str, Any], message: str
) -> None:
    frame = EventFrame()
    with pytest.raises(EventValidationError, match=message):
        if method == "append":
            frame.append(ev(1, **fields))
        else:
            frame.extend([ev(5), ev(1, **fields)])
    assert len(frame) == 0 and frame.total == 0


def test_stats_and_repr_report_counters() -> None:
    frame = EventFrame(max_rows=3, chunk_rows=1)
    frame.extend([ev(1), ev(2), ev(3), ev(4), ev(4)])
    stats = frame.stats()
    assert {k: stats[k] for k in ("rows", "total", "dropped", "duplicates", "max_rows")} == {
        "rows": 3,
        "total": 4,
        "dropped": 1,
        "duplicates": 1,
        "max_rows": 3,
    }
    assert stats["memory_bytes"] > 0 and stats["version"] == frame.version
    assert repr(frame).startswith("<EventFrame rows=3 total=4 max_rows=3 dropped=1")


def test_snapshots_during_eviction_are_contiguous_runs() -> None:
    """One writer appends ids 1..N in order into a small frame; every snapshot taken meanwhile
    must be a contiguous run of ids ending no earlier than the previous snapshot's end."""
    total = 20_000
    frame = EventFrame(max_rows=700, chunk_rows=64)
    done = threading.Event()

    def write() -> None:
        for b in range(1, total + 1, 100):
            frame.extend([ev(i) for i in range(b, b + 100)])
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    last_end = 0
    checks = 0
    while not done.is_set() or checks < 3:
        views = ((frame.df, 1), (frame.tail(50), 1), (frame.filter(source_app="app1", limit=20), 2))
        for df, step in views:  # app1 holds the odd ids
            ids = df["id"].tolist()
            if ids:
                assert ids == list(range(ids[0], ids[0] + step * len(ids), step))
                assert [p["n"] for p in df["payload"]] == ids
        ids = frame.df["id"].tolist()
        assert len(ids) <= 700
        if ids:
            assert ids[-1] >= last_end
            last_end = ids[-1]
        checks += 1
    writer.join(timeout=60)
    assert frame.df["id"].tolist() == list(range(total - 699, total + 1))
    assert frame.dropped == total - 700


# --------------------------------------------------------------------------- open chunk as lists


def _mixed_events() -> list[dict[str, Any]]:
    """Events exercising every column kind: int and float stamps, nulls, summary, chat,
    model names, unknown fields, events without id."""
    out = []
    for i in range(1, 41):
        e = ev(i, timestamp=int(T0_MS) + i if i % 2 else T0_MS + i + 0.25)
        if i % 3 == 0:
            e["summary"] = f"s{i}"
        if i % 4 == 0:
            e["chat"] = [{"role": "user", "n": i}]
        if i % 5 == 0:
            e["model_name"] = "m1"
        if i % 7 == 0:
            e["extra_field"] = {"k": i}
        if i % 11 == 0:
            del e["server_received"]
        out.append(e)
    out.append({"source_app": "a", "session_id": "s", "hook_event_type": "Stop", "payload": {}})
    return out


@pytest.mark.parametrize("chunk_rows", [1, 6, 16, 64])
def test_one_event_per_call_and_batches_store_identical_frames(chunk_rows: int) -> None:
    events = _mixed_events()
    one, batched, appended = (EventFrame(max_rows=100, chunk_rows=chunk_rows) for _ in range(3))
    for e in events:
        assert one.extend([e]) == 1
        appended.append(e)
    assert batched.extend(events[:13]) + batched.extend(events[13:]) == len(events)
    expected = batched.df
    assert expected["timestamp"].iloc[0] == pd.Timestamp(int(T0_MS) + 1, unit="ms", tz="UTC")
    assert expected["summary"].iloc[2] == "s3" and expected["chat"].iloc[3] == [
        {"role": "user", "n": 4}
    ]
    assert expected["extra_field"].iloc[6] == {"k": 7}
    pd.testing.assert_frame_equal(one.df, expected)
    pd.testing.assert_frame_equal(appended.df, expected)
    assert one.categories("model_name") == batched.categories("model_name") == ["m1"]


def test_snapshot_of_the_open_chunk_follows_appends() -> None:
    frame = EventFrame(max_rows=100, chunk_rows=50)
    frame.extend([ev(1), ev(2)])
    assert ids_of(frame.df) == [1, 2] and ids_of(frame.tail(1)) == [2]
    frame.extend([ev(3)])
    assert ids_of(frame.df) == [1, 2, 3] and ids_of(frame.tail(1)) == [3]
    frame.append(ev(4))
    assert ids_of(frame.filter(source_app="app0")) == [2, 4]


@pytest.mark.parametrize("method", ["append", "extend", "extend1"])
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"timestamp": 10**400}, "timestamp: expected number"),
        ({"id": 1 << 63}, "id: expected integer"),
        ({"id": -(1 << 63) - 1}, "id: expected integer"),
    ],
)
def test_values_beyond_storable_range_leave_the_frame_unchanged(
    method: str, fields: dict[str, Any], message: str
) -> None:
    frame = EventFrame(max_rows=10, chunk_rows=2)
    frame.extend([ev(1), ev(2), ev(3)])
    before = frame.df
    with pytest.raises(EventValidationError, match=message):
        if method == "append":
            frame.append(ev(9, **fields))
        elif method == "extend1":
            frame.extend([ev(9, **fields)])
        else:
            frame.extend([ev(9), ev(10, **fields)])
    pd.testing.assert_frame_equal(frame.df, before)
    assert frame.extend([ev(9), ev(10)]) == 2


def test_contiguous_run_reaching_past_int64_is_rejected() -> None:
    frame = EventFrame()
    top = (1 << 63) - 1

    def at(i: int) -> dict[str, Any]:
        return ev(i, timestamp=T0_MS, server_received=None, client_received=None)

    with pytest.raises(EventValidationError, match="id: expected integer"):
        frame.extend([at(top - 1), at(top), at(top + 1)])
    assert len(frame) == 0
    assert frame.extend([at(top - 1), at(top)]) == 2
    assert ids_of(frame.df) == [top - 1, top]


# --------------------------------------------------------------------------- audit fixes


def _frame_state(frame: EventFrame) -> tuple[Any, ...]:
    stats = frame.stats()
    return (
        len(frame),
        frame.total,
        stats["chunks"],
        frame.df.to_dict("list"),
        [frame.categories(c) for c in ("source_app", "session_id", "model_name")],
    )


@pytest.mark.parametrize(
    "field", ["summary", "source_app", "session_id", "hook_event_type", "model_name"]
)
@pytest.mark.parametrize("method", ["append", "extend1", "extend"])
def test_lone_surrogates_in_text_fields_are_refused_naming_the_field(
    field: str, method: str
) -> None:
    """A ``str`` holding a lone surrogate cannot be encoded as UTF-8: it used to be stored and
    then broke freezing (and the frame with it) or ``to_parquet``."""
    frame = EventFrame(max_rows=10, chunk_rows=2)
    frame.extend([ev(1), ev(2), ev(3)])
    before = _frame_state(frame)
    bad = ev(9, **{field: "ok \ud800 no"})
    with pytest.raises(EventValidationError, match=f"^{field}: string is not valid UTF-8") as err:
        if method == "append":
            frame.append(bad)
        elif method == "extend1":
            frame.extend([bad])
        else:
            frame.extend([ev(8), bad, ev(10)])
    assert err.value.field == field
    assert _frame_state(frame) == before
    assert frame.extend([ev(8), ev(9, **{field: "ok \u00e9 \U0001f600"}), ev(10)]) == 3
    assert ids_of(frame.df) == [1, 2, 3, 8, 9, 10]


def test_a_frame_offered_a_lone_surrogate_keeps_its_bounds_and_writes_parquet(
    tmp_path: Any,
) -> None:
    pytest.importorskip("pyarrow")
    frame = EventFrame(max_rows=8, chunk_rows=4)
    with pytest.raises(EventValidationError, match="summary"):
        frame.extend([ev(1, summary="bad \ud800")])
    for i in range(2, 30):
        assert frame.append(ev(i)) is True
    assert frame.extend([ev(100), ev(101)]) == 2
    assert len(frame) == 8 and ids_of(frame.df) == [*range(24, 30), 100, 101]
    frame.to_parquet(tmp_path / "f.parquet")
    assert ids_of(EventFrame.from_parquet(tmp_path / "f.parquet").df) == ids_of(frame.df)


class _FailingCodec:
    """Wraps a frame's codec; ``compress`` raises on call number ``fail_at`` (1-based)."""

    def __init__(self, codec: Any, fail_at: int) -> None:
        self.codec, self.fail_at, self.calls = codec, fail_at, 0

    def compress(self, data: Any) -> bytes:
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("compression failed")
        out: bytes = self.codec.compress(data)
        return out

    def decompress(self, data: bytes, size: int) -> bytes:
        out: bytes = self.codec.decompress(data, size)
        return out


@pytest.mark.parametrize(
    ("method", "fail_at"), [("append", 1), ("extend1", 1), ("extend", 1), ("extend", 2)]
)
def test_a_failing_chunk_freeze_leaves_the_frame_exactly_as_before(
    method: str, fail_at: int
) -> None:
    """Whatever fails while a full chunk is frozen (here: compression), the rows of that call
    are taken back, so the frame neither half-stores a batch nor wedges with an overfull open
    chunk; the same events can be appended once freezing works again."""
    frame, ref = (EventFrame(max_rows=12, chunk_rows=4, compress="zlib") for _ in range(2))
    for f in (frame, ref):
        f.extend([ev(i, model_name=f"m{i}") for i in range(1, 7)])  # 1 frozen chunk + 2 rows
    codec = frame._codec
    frame._codec = _FailingCodec(codec, fail_at)  # type: ignore[assignment]
    batch = [ev(i, model_name=f"m{i}") for i in range(7, 17)]  # fills 2 chunks, then a third
    with pytest.raises(RuntimeError, match="compression failed"):
        if method == "append":
            for e in batch:
                frame.append(e)
        elif method == "extend1":
            for e in batch:
                frame.extend([e])
        else:
            frame.extend(batch)
    # One event at a time, ev(7) was stored before ev(8) filled the chunk: ev(8) is taken back.
    stored = 0 if method == "extend" else 1
    ref.extend(batch[:stored])
    assert _frame_state(frame) == _frame_state(ref)
    frame._codec = codec
    assert frame.extend(batch[stored:]) == len(batch) - stored
    ref.extend(batch[stored:])
    assert _frame_state(frame) == _frame_state(ref)
    assert ids_of(frame.df) == list(range(5, 17)) and frame.duplicates == 0
    assert len(frame) == 12 and frame.stats()["chunks"] == 3


def _reference_throughput(
    stamps: list[Any], step_ms: float, window_bins: int | None, end: float | None
) -> dict[float, int]:
    """Rows per bin, plainly: bins are floor(timestamp / step); ``end`` keeps bins up to end's;
    a window keeps its last ``window_bins`` bins (empty bins included, as zeros)."""
    import math
    from collections import Counter

    bins = [math.floor(t / step_ms) for t in stamps if t is not None and math.isfinite(t)]
    if end is not None:
        bins = [b for b in bins if b <= math.floor(end / step_ms)]
    if not bins:
        return {}
    last = math.floor(end / step_ms) if end is not None else max(bins)
    first = last - window_bins + 1 if window_bins is not None else min(bins)
    counts = Counter(b for b in bins if b >= first)
    return {float(b): counts.get(b, 0) for b in range(first, last + 1)}


def test_throughput_matches_a_plain_count_across_chunks_evictions_and_cached_bins() -> None:
    """throughput() caches each frozen chunk's bin counts; whatever the chunking, eviction
    (a partly evicted oldest chunk), disorder, missing stamps or freq changes (the cache holds
    one step), it equals a plain per-row count."""
    rng = np.random.default_rng(7)
    frame = EventFrame(max_rows=500, chunk_rows=64)
    stamps: list[Any] = []
    for i in range(1, 1401):
        t: Any = T0_MS + i * 7 + float(rng.integers(-900, 900))  # out of order near edges
        if i % 97 == 0:
            t = None
        elif i % 89 == 0:
            t = T0_MS + 1000 * int(rng.integers(0, 9))  # exactly on a bin edge
        frame.append(ev(i, timestamp=t))
        stamps.append(t)
        if i % 173 == 0:
            kept = stamps[-len(frame) :]
            for freq, step_ms in (("1s", 1000.0), ("250ms", 250.0), ("1s", 1000.0)):
                for window, window_bins in ((None, None), ("3s", int(3000 // step_ms))):
                    for end in (None, T0_MS + i * 7 - 2000.0):
                        got = frame.throughput(freq, window=window, end=end)
                        want = _reference_throughput(kept, step_ms, window_bins, end)
                        per_s = 1000.0 / step_ms
                        assert got.tolist() == [n * per_s for n in want.values()], (i, freq)
                        assert [ts.value // 1_000_000 for ts in got.index] == [
                            b * step_ms for b in want
                        ]
    frozen = frame._frozen
    assert len(frozen) > 2
    assert all(chunk.bins is not None for chunk in list(frozen)[1:])  # whole chunks: cached


def test_throughput_refuses_more_bins_than_the_bound_and_points_to_window() -> None:
    """One stray old timestamp next to current ones used to allocate one bin per second since
    1970 (12.7 GiB); beyond MAX_THROUGHPUT_BINS it is a ConfigError naming the count."""
    frame = EventFrame()
    frame.extend([ev(1, timestamp=0), ev(2, timestamp=T0_MS), ev(3, timestamp=T0_MS + 2500)])
    with pytest.raises(ConfigError, match=r"1,760,000,003 bins .*MAX_THROUGHPUT_BINS.*window="):
        frame.throughput("1s")
    assert frame.throughput("1s", window="5s").tolist() == [0, 0, 1, 0, 1]
    with pytest.raises(ConfigError, match="bins"):
        frame.throughput("1ms", window="24h")  # 86.4M bins even with a window
    frame.extend([ev(4, timestamp=1e300)])
    with pytest.raises(ConfigError, match=r"1e\+297 bins"):
        frame.throughput("1s")
    few = EventFrame()
    few.extend(
        [
            ev(1, timestamp=T0_MS),
            ev(2, timestamp=T0_MS + (frame_module.MAX_THROUGHPUT_BINS - 1) * 1000),
        ]
    )
    assert len(few.throughput("1s")) == frame_module.MAX_THROUGHPUT_BINS


def test_epochs_beyond_the_datetime64_range_show_as_nat_and_keep_their_numbers(
    tmp_path: Any,
) -> None:
    """int64 nanoseconds end in 2262: larger epochs (or 1e300) used to wrap around into
    plausible wrong dates (1680, 1906, 1970) with a numpy RuntimeWarning."""
    import warnings

    stamps = [9.2e12, 9.3e12, 1.7e15, 1e300, -1e13, T0_MS]
    frame = EventFrame()
    frame.extend(
        [ev(i, timestamp=t, server_received=t, client_received=t + 1) for i, t in enumerate(stamps)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = frame.df
        table = frame.plain_table()
        tail = frame.tail(6)
    expected = [pd.Timestamp(9.2e12, unit="ms", tz="UTC"), pd.NaT, pd.NaT, pd.NaT, pd.NaT]
    expected.append(pd.Timestamp(T0_MS, unit="ms", tz="UTC"))
    for name in ("timestamp", "server_received"):
        assert df[name].tolist() == expected and tail[name].tolist() == expected
    assert table["timestamp"] == expected
    assert df["client_received"].isna().tolist() == [False, True, True, True, True, False]
    assert df["latency_ms"].tolist() == [1.0, 1.0, 1.0, 0.0, 1.0, 1.0]  # raw numbers
    assert frame.latency().loc["transit_ms", "count"] == 6
    pq = pytest.importorskip("pyarrow.parquet")
    frame.to_parquet(tmp_path / "t.parquet")
    assert pq.read_table(tmp_path / "t.parquet").column("timestamp").to_pylist() == stamps


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
        assert frame_module._blob_pattern(re.compile(fast)) is not None, fast
    for slow in (r"\Ax", r"x\Z", r"(?=x)", r"(?!x)", r"(?<=x)", r"(?<!x)", r"(?>x)", r"x++"):
        assert frame_module._blob_pattern(re.compile(slow)) is None, slow


@pytest.mark.parametrize("chunk_rows", [2.5, 2.0, True, "4"])
def test_chunk_rows_must_be_an_integer_like_max_rows(chunk_rows: Any) -> None:
    with pytest.raises(ConfigError, match="chunk_rows must be an integer"):
        EventFrame(max_rows=5, chunk_rows=chunk_rows)


def test_unknown_fields_survive_a_missing_required_field_on_every_path() -> None:
    """A key-count shortcut assumed the 4 required fields present and so missed the unknown
    field of an event lacking one of them, but only in batches."""
    odd = ev(1, foo="kept")  # one key missing, one unknown: as many keys as a full event
    del odd["session_id"]
    one, batched = EventFrame(), EventFrame()
    one.extend([odd])
    one.append(ev(2))
    batched.extend([odd, ev(2)])
    pd.testing.assert_frame_equal(one.df, batched.df)
    assert batched.df["foo"].tolist() == ["kept", None]
    assert batched.df["session_id"].isna().tolist() == [True, False]


def test_from_parquet_checks_max_rows_like_the_constructor(tmp_path: Any) -> None:
    pytest.importorskip("pyarrow")
    frame = EventFrame()
    frame.extend([ev(1), ev(2)])
    frame.to_parquet(tmp_path / "f.parquet")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="max_rows"):
            EventFrame.from_parquet(tmp_path / "f.parquet", max_rows=bad)
    assert EventFrame.from_parquet(tmp_path / "f.parquet").max_rows == 1_000_000
    assert EventFrame.from_parquet(tmp_path / "f.parquet", max_rows=1).df["id"].tolist() == [2]


@pytest.mark.parametrize("value", ["123", True, False, b"1", [1]])
@pytest.mark.parametrize("field", ["timestamp", "server_received", "client_received"])
@pytest.mark.parametrize("method", ["append", "extend1", "extend"])
def test_stamps_that_are_not_numbers_are_refused_as_validate_event_refuses_them(
    value: Any, field: str, method: str
) -> None:
    """ "123" used to be stored as 123 ms and True as 1 ms."""
    from wsnotebook.events import validate_event

    frame = EventFrame()
    frame.extend([ev(1), ev(2)])
    before = frame.df
    bad = ev(3, **{field: value})
    with pytest.raises(EventValidationError) as err:
        if method == "append":
            frame.append(bad)
        elif method == "extend1":
            frame.extend([bad])
        else:
            frame.extend([ev(4), bad])
    assert err.value.field == field
    assert str(err.value).startswith(f"{field}: expected number (epoch ms), got ")
    if field == "timestamp":
        with pytest.raises(EventValidationError) as reference:
            validate_event(bad)
        assert str(err.value) == str(reference.value)
    pd.testing.assert_frame_equal(frame.df, before)
    assert frame.extend([ev(3, **{field: 5}), ev(4, **{field: 6.5})]) == 2


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: f.tail(None), "tail: n must be an integer, got null"),
        (lambda f: f.tail("3"), "tail: n must be an integer, got string '3'"),
        (lambda f: f.tail(2.5), "tail: n must be an integer"),
        (lambda f: f.tail(True), "tail: n must be an integer"),
        (lambda f: f.tail(-1), "tail: n must be >= 0"),
        (lambda f: f.filter(limit="2"), "filter: limit must be an integer"),
        (lambda f: f.filter(limit=-1), "filter: limit must be >= 0"),
        (lambda f: f.filter(search=b"x"), "filter: search must be a str"),
        (lambda f: f.filter(search=__import__("re").compile(b"x")), "filter: search must be"),
        (lambda f: f.filter(search="("), "filter: invalid search pattern"),
        (lambda f: f.filter(source_app=3), "filter: source_app must be a string or an iterable"),
        (lambda f: f.filter(session_id=b"s"), "filter: session_id must be a string or"),
        (lambda f: f.filter(hook_event_type=["Stop", 1]), "filter: hook_event_type values"),
        (lambda f: f.plain_table(source_app=3), "filter: source_app must be"),
        (lambda f: f.mark_gap("a", 2, "r"), "mark_gap: from_id must be an integer"),
        (lambda f: f.mark_gap(1, None, "r"), "mark_gap: to_id must be an integer"),
        (lambda f: f.throughput("abc"), "throughput: invalid freq 'abc'"),
        (lambda f: f.throughput("1s", window="abc"), "throughput: invalid window 'abc'"),
    ],
)
def test_bad_arguments_raise_config_errors_naming_the_argument(call: Any, message: str) -> None:
    import re

    frame = EventFrame(chunk_rows=2)
    frame.extend([ev(i) for i in range(1, 6)])
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}"):
        call(frame)


def test_integer_like_arguments_are_accepted() -> None:
    frame = EventFrame(chunk_rows=2)
    frame.extend([ev(i) for i in range(1, 6)])
    assert ids_of(frame.tail(np.int64(2))) == [4, 5]
    assert ids_of(frame.filter(limit=np.int32(1), source_app=("app0", "app1"))) == [5]
    assert ids_of(frame.filter(session_id=iter(["session-1"]))) == [1, 4]
    frame.mark_gap(np.int64(7), -1, "lost")
    assert frame.gaps["from_id"].tolist() == [7]


def test_unknown_fields_named_like_computed_latency_columns_lose_in_df_but_are_kept(
    tmp_path: Any,
) -> None:
    """The computed ``latency_ms``/``ingest_ms``/``transit_ms`` win in ``.df`` (documented);
    the event's own values stay in Parquet's ``extra`` and come back with from_parquet."""
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    own = {"latency_ms": 5, "ingest_ms": 6, "transit_ms": 7, "custom": 1}
    frame = EventFrame()
    frame.extend([ev(1, **own), ev(2)])
    df = frame.df
    assert df["latency_ms"].tolist() == [4.0, 4.0] and df["ingest_ms"].tolist() == [1.5, 1.5]
    assert df["transit_ms"].tolist() == [2.5, 2.5] and df["custom"].tolist() == [1, None]
    doc = " ".join((EventFrame.df.__doc__ or "").split())
    assert "``transit_ms`` does not get a column here, the computed column of that name wins" in doc
    frame.to_parquet(tmp_path / "e.parquet")
    extra = pq.read_table(tmp_path / "e.parquet").column("extra").to_pylist()
    assert [None if e is None else orjson.loads(e) for e in extra] == [own, None]
    again = EventFrame.from_parquet(tmp_path / "e.parquet")
    again.to_parquet(tmp_path / "again.parquet")
    assert pq.read_table(tmp_path / "again.parquet").column("extra").to_pylist() == extra


def test_batches_accept_str_subclass_summaries() -> None:
    class Text(str):
        pass

    frame = EventFrame()
    assert frame.extend([ev(1, summary=Text("x \u00e9")), ev(2)]) == 2
    assert frame.df["summary"].tolist() == ["x \u00e9", None]


@pytest.mark.parametrize("chunk_rows", [3, 7, 100])
def test_filter_pieces_can_scan_only_the_newest_rows(chunk_rows: int) -> None:
    frame = EventFrame(chunk_rows=chunk_rows)
    frame.extend([ev(i, summary="hit" if i % 5 == 0 else "miss") for i in range(1, 41)])
    for scan in (0, 1, 9, 10, 11, 40, 100):
        table = frame.plain_table(search="hit", scan=scan)
        expected = [i for i in range(max(1, 41 - scan), 41) if i % 5 == 0]
        assert list(table["id"]) == expected, scan
    assert list(frame.plain_table(search="hit", scan=10, limit=1)["id"]) == [40]


def test_throughput_caches_only_dense_bin_counts() -> None:
    """About one row per bin (a slow stream) would cache ~16 B per row that stats() does not
    count: such chunks are recounted instead; dense ones keep their counts."""
    sparse = EventFrame(max_rows=1000, chunk_rows=200)
    sparse.extend([ev(i, timestamp=T0_MS + i * 1000) for i in range(1, 601)])  # 1 per second
    dense = EventFrame(max_rows=1000, chunk_rows=200)
    dense.extend([ev(i, timestamp=T0_MS + i) for i in range(1, 601)])  # 1 per millisecond
    for frame in (sparse, dense):
        assert frame.throughput("1s").sum() == 600
    assert all(chunk.bins is None for chunk in sparse._frozen)
    assert all(chunk.bins is not None for chunk in dense._frozen)
