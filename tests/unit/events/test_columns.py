"""The columnar fast path (wsnotebook.events.columns) and the frame/client code that consumes it.

The contract: ``decode_batch_columns`` accepts a subset of what the dict path
(``parse_server_message`` + ``EventFrame.extend``) accepts, and a frame fed through it holds
exactly what a frame fed through the dict path holds.  Anything else returns ``None`` (the
caller then takes the dict path), never raises.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from _helpers import make_hook_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsnotebook.client import Client
from wsnotebook.events.columns import BATCH_PREFIX, decode_batch_columns
from wsnotebook.frame import EventFrame
from wsnotebook.protocol import batch_message, parse_server_message


def batch(events: list[Any]) -> bytes:
    return batch_message([orjson.dumps(e) for e in events])


def events(n: int, start: int = 1, **fields: Any) -> list[dict[str, Any]]:
    return [make_hook_event(i, **fields) for i in range(start, start + n)]


def frame_via_columns(raw: bytes, **kw: Any) -> EventFrame:
    frame = EventFrame(**kw)
    cols = decode_batch_columns(raw)
    assert cols is not None
    frame.extend_columns(cols)
    return frame


def frame_via_dicts(raw: bytes, **kw: Any) -> EventFrame:
    frame = EventFrame(**kw)
    frame.extend(parse_server_message(raw).events)
    return frame


def assert_same_frames(a: EventFrame, b: EventFrame) -> None:
    assert (len(a), a.total, a.duplicates, a.dropped) == (len(b), b.total, b.duplicates, b.dropped)
    pd.testing.assert_frame_equal(a.df, b.df)
    for col in ("source_app", "session_id", "hook_event_type", "model_name"):
        assert a.categories(col) == b.categories(col)


# --------------------------------------------------------------------------- decoding


def test_our_servers_batch_encoding_starts_with_the_fast_path_prefix() -> None:
    assert batch(events(2)).startswith(BATCH_PREFIX)


def test_a_valid_batch_decodes_into_columns_with_payload_text_kept_verbatim() -> None:
    evs = events(3, summary="s", model_name="m", chat=[{"role": "user"}])
    raw = batch(evs)
    cols = decode_batch_columns(raw)
    assert cols is not None
    assert cols.n == 3
    assert list(cols.id) == [1, 2, 3]
    assert list(cols.session_id) == [e["session_id"] for e in evs]
    assert list(cols.summary) == ["s"] * 3 and list(cols.model_name) == ["m"] * 3
    assert list(cols.chat) == [[{"role": "user"}]] * 3
    assert [bytes(p) for p in cols.payload] == [orjson.dumps(e["payload"]) for e in evs]
    assert cols.payload_len.tolist() == [len(orjson.dumps(e["payload"])) for e in evs]
    np.testing.assert_array_equal(cols.timestamp, [e["timestamp"] for e in evs])
    assert np.asarray(cols.timestamp).dtype == np.float64


def test_missing_optional_fields_become_none_and_nan() -> None:
    ev = {"id": 7, "source_app": "a", "session_id": "s", "hook_event_type": "Stop", "payload": {}}
    cols = decode_batch_columns(batch([ev, dict(ev, id=8)]))
    assert cols is not None
    assert np.isnan(cols.timestamp).all() and np.isnan(cols.server_received).all()
    assert list(cols.summary) == [None, None] and list(cols.chat) == [None, None]


def test_payload_whitespace_from_other_encoders_is_kept_and_still_accepted() -> None:
    raw = (
        b'{"type":"batch","data":[{"id":1,"source_app":"a","session_id":"s",'
        b'"hook_event_type":"Stop","payload": { "a" : [1, 2] } }]}'
    )
    cols = decode_batch_columns(raw)
    assert cols is not None
    assert bytes(cols.payload[0]) == b'{ "a" : [1, 2] }'
    frame = EventFrame()
    frame.extend_columns(cols)
    assert frame.df["payload"].tolist() == [{"a": [1, 2]}]


REJECTED = {
    "unknown top-level field": {"extra_field": 1},
    "payload string": {"payload": "text"},
    "payload array": {"payload": [1]},
    "payload null": {"payload": None},
    "payload number": {"payload": 3},
    "empty source_app": {"source_app": ""},
    "source_app number": {"source_app": 5},
    "negative timestamp": {"timestamp": -1},
    "timestamp string": {"timestamp": "now"},
    "timestamp boolean": {"timestamp": True},
    "id boolean": {"id": True},
    "id float": {"id": 1.0},
    "id null": {"id": None},
    "id beyond int64": {"id": 2**63},
    "summary number": {"summary": 1},
    "model_name list": {"model_name": ["x"]},
    "chat object": {"chat": {"a": 1}},
    "server_received string": {"server_received": "x"},
}


@pytest.mark.parametrize("change", REJECTED.values(), ids=list(REJECTED))
def test_events_the_fast_path_cannot_hold_send_the_batch_to_the_dict_path(
    change: dict[str, Any],
) -> None:
    evs = events(3)
    evs[1].update(change)
    assert decode_batch_columns(batch(evs)) is None


@pytest.mark.parametrize("field", ["id", "source_app", "session_id", "hook_event_type", "payload"])
def test_a_missing_required_field_sends_the_batch_to_the_dict_path(field: str) -> None:
    evs = events(2)
    del evs[0][field]
    assert decode_batch_columns(batch(evs)) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b'{"type":"batch","data":[',
        b'{"type":"batch","data":[]}',
        b'{"type":"batch","data":{}}',
        b'{"type":"event","data":[]}',
        b'{"type":"heartbeat"}',
        b"[1,2]",
        b'{"type":"batch","data":[{"id":1,"source_app":"a","session_id":"s",'
        b'"hook_event_type":"Stop","payload":{"x":NaN}}]}',
        b'{"type":"batch","data":[{"id":1,"source_app":"\\ud800","session_id":"s",'
        b'"hook_event_type":"Stop","payload":{}}]}',
    ],
)
def test_malformed_or_other_messages_return_none_and_never_raise(raw: bytes) -> None:
    assert decode_batch_columns(raw) is None


# --------------------------------------------------------------------------- equivalence


def test_the_frame_holds_the_same_rows_through_either_path() -> None:
    evs = events(50, model_name="claude", summary="done", chat=[{"role": "user", "n": 1}])
    evs[10]["model_name"] = None
    evs[11]["timestamp"] = 5  # an int stamp: stored as float either way
    del evs[12]["server_received"]
    raw = batch(evs)
    assert_same_frames(frame_via_columns(raw), frame_via_dicts(raw))


def test_a_batch_spanning_chunks_and_evicting_matches_the_dict_path() -> None:
    raw = batch(events(250))
    kw = {"max_rows": 100, "chunk_rows": 32}
    a, b = frame_via_columns(raw, **kw), frame_via_dicts(raw, **kw)
    assert len(a) == 100 and a.dropped == 150
    assert_same_frames(a, b)
    assert a.df["id"].tolist() == list(range(151, 251))


def test_duplicates_within_a_batch_and_against_the_frame_are_skipped_and_counted() -> None:
    ids = [1, 2, 3, 2, 4, 1, 5]
    raw1 = batch([make_hook_event(i) for i in ids])
    raw2 = batch([make_hook_event(i) for i in (4, 5, 6, 7)])
    frames = []
    for via in ("columns", "dicts"):
        frame = EventFrame(chunk_rows=4)
        for raw in (raw1, raw2):
            if via == "columns":
                cols = decode_batch_columns(raw)
                assert cols is not None
                frame.extend_columns(cols)
            else:
                frame.extend(parse_server_message(raw).events)
        frames.append(frame)
    a, b = frames
    assert a.df["id"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert a.duplicates == 4
    assert_same_frames(a, b)


def test_events_without_id_minus_one_are_kept_like_the_dict_path() -> None:
    raw = batch([make_hook_event(-1), make_hook_event(-1), make_hook_event(3)])
    a, b = frame_via_columns(raw), frame_via_dicts(raw)
    assert len(a) == 3
    assert_same_frames(a, b)


def test_subscribers_hear_once_per_columnar_batch() -> None:
    frame = EventFrame()
    heard: list[int] = []
    frame.subscribe(lambda _f, n: heard.append(n))
    cols = decode_batch_columns(batch(events(20)))
    assert cols is not None
    assert frame.extend_columns(cols) == 20
    assert heard == [20]


_text = st.text(min_size=0, max_size=6)
_json_leaf = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | _text
_json = st.recursive(
    _json_leaf | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_values = _json | st.just("") | st.floats(-10, 10)
_FIELDS = [
    "id",
    "source_app",
    "session_id",
    "hook_event_type",
    "payload",
    "timestamp",
    "summary",
    "chat",
    "model_name",
    "server_received",
    "client_received",
    "unknown",
]


@st.composite
def mutated_batches(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Batches of valid events where some fields are deleted or replaced by arbitrary JSON."""
    n = draw(st.integers(1, 6))
    out = []
    for i in range(n):
        ev = make_hook_event(draw(st.integers(-1, 8)) if draw(st.booleans()) else i + 1)
        for _ in range(draw(st.integers(0, 2))):
            field = draw(st.sampled_from(_FIELDS))
            if draw(st.booleans()):
                ev.pop(field, None)
            else:
                ev[field] = draw(_values)
        out.append(ev)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_batches())
def test_property_fast_path_accepts_a_subset_and_stores_what_the_dict_path_stores(
    evs: list[dict[str, Any]],
) -> None:
    try:
        raw = batch(evs)
    except orjson.JSONEncodeError:  # e.g. an int beyond 64 bits: not a message we can send
        return
    cols = decode_batch_columns(raw)
    msg = parse_server_message(raw)
    if cols is None:
        return
    assert msg.invalid == 0, "the fast path accepted an event the dict path rejects"
    a = EventFrame(chunk_rows=4)
    a.extend_columns(cols)
    b = EventFrame(chunk_rows=4)
    b.extend(msg.events)
    assert_same_frames(a, b)


# --------------------------------------------------------------------------- client


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A never-connected client whose fast path takes batches of any size (it normally waits
    for _COLUMNS_MIN_BYTES, so small test batches would all take the dict path)."""
    from wsnotebook.client import Client, sink

    monkeypatch.setattr(sink, "_COLUMNS_MIN_BYTES", 0)
    return Client("ws://127.0.0.1:9/stream")


def test_client_sends_big_batches_down_the_fast_path_and_small_ones_down_the_dict_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from wsnotebook.client import Client, sink

    calls: list[int] = []
    real = sink.decode_batch_columns

    def spy(raw: bytes) -> Any:
        calls.append(len(raw))
        return real(raw)

    monkeypatch.setattr(sink, "decode_batch_columns", spy)
    client = Client("ws://127.0.0.1:9/stream")
    small, big = batch(events(2)), batch(events(100, start=3))
    assert len(small) < sink._COLUMNS_MIN_BYTES <= len(big)
    for raw in (small, big):
        client._handle(raw, len(raw))
    assert calls == [len(big)]
    assert client.frame.df["id"].tolist() == list(range(1, 103))


def test_client_takes_the_fast_path_for_batches_and_the_dict_path_for_the_rest(
    client: Any,
) -> None:
    fast = batch(events(5))
    unknown = batch(events(3, start=6, team="blue"))  # unknown field: dict path keeps it
    reordered = orjson.dumps({"data": events(2, start=9), "type": "batch"})  # other key order
    for raw in (fast, unknown, reordered):
        client._handle(raw, len(raw))
    df = client.frame.df
    assert df["id"].tolist() == list(range(1, 11))
    assert df["team"].tolist() == [None] * 5 + ["blue"] * 3 + [None] * 2
    assert client.events == 10 and client.messages == 3
    assert client.metrics()["last_id"] == 10
    assert client.metrics()["latency_ms"]["p50"] is not None
    assert df["client_received"].notna().all()
    assert client.traffic.stats()["in"]["events"] == 10


def test_client_fast_path_keeps_arrival_order_after_queued_single_events(client: Any) -> None:
    import asyncio

    async def feed() -> None:
        # Inside a loop single events wait in the queue for a call_soon flush; the batch
        # that follows must not overtake them.
        for e in events(3):
            raw = orjson.dumps({"type": "event", "data": e})
            client._handle(raw, len(raw))
        raw = batch(events(3, start=4))
        client._handle(raw, len(raw))
        await asyncio.sleep(0)

    asyncio.run(feed())
    assert client.frame.df["id"].tolist() == [1, 2, 3, 4, 5, 6]


def test_client_counts_duplicates_from_a_replayed_batch(client: Any) -> None:
    for raw in (batch(events(5)), batch(events(5, start=3))):
        client._handle(raw, len(raw))
    assert client.frame.df["id"].tolist() == [1, 2, 3, 4, 5, 6, 7]
    assert client.duplicates_skipped == 3 and client.events == 7


def _raw_batch(payloads: list[bytes]) -> bytes:
    head = b'{"id":%d,"source_app":"a","session_id":"s","hook_event_type":"Stop","payload":'
    return (
        BATCH_PREFIX + b",".join(head % (i + 1) + p + b"}" for i, p in enumerate(payloads)) + b"]}"
    )


@pytest.mark.parametrize("padding", [0, 60], ids=["small batch", "gathered first bytes"])
def test_pretty_printed_payloads_take_the_dict_path_which_stores_them_compact(
    padding: int,
) -> None:
    # A newline in payload text is a pretty-printing sender's whitespace, and one holding the
    # row separator "\n,\n" would split a row in two: such batches are left to the dict path.
    payloads = [b'{"a":1}'] * padding + [b'{\n "a": 1\n}', b'{"b":[1\n,\n2]}', b"{}"]
    raw = _raw_batch(payloads)
    assert decode_batch_columns(raw) is None
    client = Client("ws://127.0.0.1:9/stream")
    client._handle(raw, len(raw))
    frame = client.frame
    assert frame.df["payload"].tolist()[-3:] == [{"a": 1}, {"b": [1, 2]}, {}]
    texts = frame.snapshot(payload="json")["payload"].tolist()
    assert texts[-3:] == ['{"a":1}', '{"b":[1,2]}', "{}"]


@pytest.mark.parametrize(
    "payloads",
    [
        [b"{}", b'[\n1\n,\n{"x":1}]'],  # an array whose text holds the separator + "{"
        [b'[1\n,\n{"x":1}]', b"{}"],
        [b"{}", b"[]", b"{}"],
        [b'"{"', b"{}"],
    ],
)
@pytest.mark.parametrize("padding", [0, 60], ids=["small batch", "gathered first bytes"])
def test_a_non_object_payload_is_never_taken_for_an_object(
    payloads: list[bytes], padding: int
) -> None:
    # Batches of 50+ payloads check first bytes by gathering instead of scanning separators.
    assert decode_batch_columns(_raw_batch([b'{"a":1}'] * padding + payloads)) is None
    assert decode_batch_columns(_raw_batch(payloads + [b"{ }"] * padding)) is None


def test_what_msgspec_cannot_decode_returns_none_instead_of_raising() -> None:
    """msgspec gives up ~1000 levels deep (orjson reads 1024), and a str with a lone surrogate
    cannot be encoded: both used to raise out of the "never raises" fast path and lose the
    batch; now they take the dict path."""
    deep = orjson.dumps(make_hook_event(1))[:-1] + b',"chat":' + b"[" * 1010 + b"]" * 1010 + b"}"
    raw = BATCH_PREFIX + orjson.dumps(make_hook_event(2)) + b"," + deep + b"]}"
    assert decode_batch_columns(raw) is None
    msg = parse_server_message(raw)
    assert [e["id"] for e in msg.events] == [2, 1]  # the dict path still takes them
    text = batch(events(1)).decode().replace('"payload":{', '"payload":{"x":"\ud800",')
    assert decode_batch_columns(text) is None


def test_a_payload_that_is_not_utf8_takes_the_dict_path_which_refuses_it() -> None:
    good = orjson.dumps(make_hook_event(1, payload={"k": "é"}))
    bad = orjson.dumps(make_hook_event(2)).replace(b'"payload":{', b'"payload":{"x":"\xff",')
    assert decode_batch_columns(batch_message([good])) is not None  # non-ASCII, valid UTF-8
    assert decode_batch_columns(batch_message([good, bad])) is None


def test_a_payload_number_beyond_float_range_is_kept_as_its_text_not_a_broken_chunk() -> None:
    """The fast path checks payload text for UTF-8 but does not parse it: a foreign server's
    1e400 is stored.  It must not make the frame's whole chunk undecodable."""
    odd = orjson.dumps(make_hook_event(2)).replace(b'"payload":{', b'"payload":{"n":1e400,')
    raw = batch_message(
        [orjson.dumps(e) for e in events(1)] + [odd] + [orjson.dumps(make_hook_event(3))]
    )
    frame = frame_via_columns(raw)
    payloads = frame.df["payload"].tolist()
    assert payloads[0] == make_hook_event(1)["payload"]
    assert payloads[2] == make_hook_event(3)["payload"]
    assert isinstance(payloads[1], str) and payloads[1].startswith('{"n":1e400')


def event_msg(e: Any) -> bytes:
    return b'{"type":"event","data":' + orjson.dumps(e) + b"}"


def test_a_burst_of_event_messages_decodes_like_each_message_on_its_own() -> None:
    from wsnotebook.events.columns import (
        columns_from_records,
        decode_event_burst,
        decode_event_message,
    )

    raws = [event_msg(e) for e in events(20)]
    burst = decode_event_burst(raws)
    records = [decode_event_message(r) for r in raws]
    singly = columns_from_records([r for r in records if r is not None])
    assert burst is not None and singly is not None and burst.n == singly.n == 20
    assert list(burst.id) == list(singly.id) and burst.payload_blob == singly.payload_blob
    assert list(burst.session_id) == list(singly.session_id)


@pytest.mark.parametrize(
    "bad",
    [
        b'{"type":"event","data":{"id":1},"x":1}',  # another key after the event
        b'{"type":"event","data":' + orjson.dumps(make_hook_event(7)) + b"}}",  # one } too many
        b'{"type":"event","data":'
        + orjson.dumps(make_hook_event(7))
        + b","  # two values
        + orjson.dumps(make_hook_event(8))
        + b"}",
        b'{"type":"event","data":{"id":1,"unknown":2}}',  # a field records cannot hold
        b'{"type":"event","data":{',  # truncated
    ],
)
def test_a_burst_refuses_any_message_that_is_not_exactly_an_event(bad: bytes) -> None:
    from wsnotebook.events.columns import decode_event_burst

    raws = [event_msg(e) for e in events(10)]
    assert decode_event_burst([*raws[:5], bad, *raws[5:]]) is None
