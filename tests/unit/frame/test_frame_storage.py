"""EventFrame storage: bounds, dedupe, eviction, category compaction, chunks, compression,
all-or-nothing validation of what the frame can store (wsnotebook.frame.storage, .chunks,
.categories, .ingest)."""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest
from _helpers import T0_MS, make_hook_event

import wsnotebook.frame.categories as categories_module
from wsnotebook.errors import ConfigError, EventValidationError
from wsnotebook.events.columns import decode_batch_columns
from wsnotebook.frame import EventFrame

# The shared valid hook event (tests/_helpers.py): stamps server +1.5 ms, client +4 ms.
ev = make_hook_event


def ids_of(df: pd.DataFrame) -> list[int]:
    return df["id"].tolist()


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


@pytest.fixture
def compact_at_8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Category columns are checked for dead values from 8 values on (65536 by default)."""
    monkeypatch.setattr(categories_module, "COMPACT_MIN", 8)


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
        sizes.append(len(frame._store.cats[1].values))
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


def test_categories_with_many_live_values_are_left_alone(compact_at_8: None) -> None:
    frame = EventFrame(max_rows=1000, chunk_rows=16)
    frame.extend([ev(i, session_id=f"s{i}") for i in range(1, 301)])
    assert len(frame._store.cats[1].values) == 300  # all live: nothing to drop
    assert frame.categories("session_id") == [f"s{i}" for i in range(1, 301)]


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
    chunks = [
        *frame._store.frozen,
        frame._store.open.view(frozen=False),
        frame._store.open.tail_view(2),
    ]
    assert [c.is_ascii for c in chunks] == [c.text().isascii() for c in chunks]
    assert [c.is_ascii for c in frame._store.frozen] == [True, False, True]
    assert ids_of(frame.filter(search="naïve")) == [13]
    assert ids_of(frame.filter(search="echo 2[0-9]")) == list(range(20, 30))


def _search_events() -> list[dict[str, Any]]:
    texts = ["alpha", "beta", "héllo wörld", "gamma", "alphabet", "x", "café", "ALPHA"]
    return [
        ev(i + 1, payload={"text": t, "i": i}, summary=("sum " + t) if i % 3 == 0 else None)
        for i, t in enumerate(texts * 5)
    ]


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
    codec = frame._store.codec
    frame._store.codec = _FailingCodec(codec, fail_at)  # type: ignore[assignment]
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
    frame._store.codec = codec
    assert frame.extend(batch[stored:]) == len(batch) - stored
    ref.extend(batch[stored:])
    assert _frame_state(frame) == _frame_state(ref)
    assert ids_of(frame.df) == list(range(5, 17)) and frame.duplicates == 0
    assert len(frame) == 12 and frame.stats()["chunks"] == 3


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


def test_batches_accept_str_subclass_summaries() -> None:
    class Text(str):
        pass

    frame = EventFrame()
    assert frame.extend([ev(1, summary=Text("x \u00e9")), ev(2)]) == 2
    assert frame.df["summary"].tolist() == ["x \u00e9", None]
