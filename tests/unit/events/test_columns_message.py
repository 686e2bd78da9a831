"""The ``columns`` wire format (``?format=columns``): ``columns_message`` on the server side,
``decode_columns_message`` (and its dict-path rewrite ``columns_message_batch``) on the client.

The contract: a frame fed a ``columns`` message holds exactly what a frame fed the ``batch``
message of the same events holds; events the columns cannot hold make the server send a
``batch``; a ``columns`` message the client's columns refuse still reaches the dict path.
"""

from __future__ import annotations

from typing import Any

import orjson
import pandas as pd
import pytest
from _helpers import make_hook_event
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wsnotebook.client import Client
from wsnotebook.events import (
    COLUMNS_PREFIX,
    columns_message,
    columns_message_batch,
    decode_columns_message,
)
from wsnotebook.frame import EventFrame
from wsnotebook.protocol import batch_message, parse_server_message
from wsnotebook.server.columnar import ColumnsEncoder


def stored(evs: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(e) for e in evs]


def events(n: int, start: int = 1, **fields: Any) -> list[dict[str, Any]]:
    return [make_hook_event(i, **fields) for i in range(start, start + n)]


def frames(enc: list[bytes]) -> tuple[EventFrame, EventFrame]:
    msg = columns_message(enc)
    assert msg is not None
    cols = decode_columns_message(msg)
    assert cols is not None
    a = EventFrame(chunk_rows=4)
    a.extend_columns(cols)
    b = EventFrame(chunk_rows=4)
    b.extend(parse_server_message(batch_message(enc)).events)
    return a, b


def assert_same(a: EventFrame, b: EventFrame) -> None:
    assert (len(a), a.total, a.duplicates) == (len(b), b.total, b.duplicates)
    pd.testing.assert_frame_equal(a.df, b.df)


def test_round_trip_keeps_every_value_and_payload_text() -> None:
    evs = events(7, summary="s", model_name="m", chat=[{"role": "user", "content": "hé"}])
    evs[2]["payload"] = {"nested": {"a": [1, 2.5, None, "ü✓"]}}
    evs[3].pop("summary")
    for i, e in enumerate(evs):
        e["id"] = i + 1
        e["server_received"] = 1.5 + i
    enc = stored(evs)
    msg = columns_message(enc)
    assert msg is not None and msg.startswith(COLUMNS_PREFIX)
    assert len(msg) < len(batch_message(enc))
    obj = orjson.loads(msg)
    assert obj["type"] == "columns" and obj["n"] == 7 and obj["id"] == list(range(1, 8))
    assert obj["payload"][2] == evs[2]["payload"]
    a, b = frames(enc)
    assert_same(a, b)


def test_events_the_columns_cannot_hold_give_none() -> None:
    evs = events(3)
    evs[1]["humanInTheLoop"] = {"question": "ok?"}  # an unknown top-level field
    assert columns_message(stored(evs)) is None
    assert columns_message([]) is None
    assert columns_message([b"not json"]) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b'{"type":"columns","n":2,"id":[1]}',  # missing and short columns
        b'{"type":"batch","data":[]}',
        COLUMNS_PREFIX + b'0,"id":[]}',
    ],
)
def test_malformed_columns_messages_return_none_and_never_raise(raw: bytes) -> None:
    assert decode_columns_message(raw) is None


def test_unequal_columns_and_bad_payloads_are_refused_then_rewritten_for_the_dict_path() -> None:
    enc = stored([{**e, "id": i + 1} for i, e in enumerate(events(3))])
    msg = columns_message(enc)
    assert msg is not None
    obj = orjson.loads(msg)
    short = {**obj, "summary": obj["summary"][:2]}
    assert decode_columns_message(orjson.dumps(short)) is None
    assert columns_message_batch(orjson.dumps(short)) is None  # not well formed: no rewrite
    bad = {**obj, "payload": [obj["payload"][0], [1, 2], obj["payload"][2]]}  # not an object
    raw = orjson.dumps(bad)
    assert decode_columns_message(raw) is None
    rewritten = columns_message_batch(raw)
    assert rewritten is not None
    parsed = parse_server_message(rewritten)
    assert parsed.type == "batch" and len(parsed.events) == 2 and parsed.invalid == 1


def test_the_client_appends_columns_and_counts_what_the_dict_path_refuses() -> None:
    client = Client("ws://127.0.0.1:9/stream")
    enc = stored([{**e, "id": i + 1} for i, e in enumerate(events(5))])
    msg = columns_message(enc)
    assert msg is not None
    client._handle(msg, len(msg))
    assert client.frame.total == 5
    assert client.traffic.df["type"].astype(str).tolist() == ["columns"]
    obj = orjson.loads(columns_message(stored([{**events(2)[0], "id": 9}, {**events(2)[1]}])))
    obj["payload"][1] = "text"  # refused by the columns: the dict path drops only that one
    raw = orjson.dumps(obj)
    client._handle(raw, len(raw))
    assert client.frame.total == 6
    assert client.metrics()["invalid_events"] == 1


def test_the_server_encoder_reuses_a_message_for_the_same_events_and_falls_back() -> None:
    enc = stored([{**e, "id": i + 1} for i, e in enumerate(events(4))])
    encoder = ColumnsEncoder()
    first = encoder(enc)
    assert encoder(list(enc)) is first  # the same objects: encoded once
    assert (encoder.built, encoder.reused) == (1, 1)
    assert encoder(enc[:3]) != first
    odd = stored([{**events(1)[0], "id": 9, "extra": 1}])
    assert encoder(odd) == batch_message(odd)
    assert encoder.fallbacks == 1


_text = st.text(max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _text | st.floats(-1e9, 1e9),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def stored_batches(draw: st.DrawFn) -> list[bytes]:
    """Events as a server stores them (valid, with ids), optional fields present or not."""
    n = draw(st.integers(1, 8))
    out = []
    for i in range(n):
        ev = make_hook_event(i + 1)
        ev["payload"] = draw(st.dictionaries(_text, _json, max_size=3))
        ev["server_received"] = draw(st.floats(0, 2e12))
        for field, values in (
            ("summary", st.none() | _text),
            ("model_name", st.none() | _text),
            ("chat", st.none() | st.lists(_json, max_size=2)),
            ("timestamp", st.none() | st.integers(0, 2**40) | st.floats(0, 2e12)),
        ):
            if draw(st.booleans()):
                ev[field] = draw(values)
            else:
                ev.pop(field, None)
        out.append(orjson.dumps(ev))
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored_batches())
def test_property_a_columns_message_stores_what_its_batch_stores(enc: list[bytes]) -> None:
    a, b = frames(enc)
    assert_same(a, b)
