"""The event model: every validation path and message, JSON helpers, limits, round trips."""

from __future__ import annotations

import enum
import math
import time
from collections import OrderedDict
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsnotebook.errors import EventValidationError, LimitExceeded, ProtocolError
from wsnotebook.events import (
    DEFAULT_MAX_BATCH_EVENTS,
    FUSED_MIN,
    all_valid,
    decode_events,
    decode_json,
    encode_json,
    iter_ids,
    json_type,
    now_ms,
    validate_event,
    validate_events,
)
from wsnotebook.events.model import _validate_event_reference


def good(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "source_app": "app",
        "session_id": "s1",
        "hook_event_type": "PreToolUse",
        "payload": {"tool_name": "Bash"},
    }
    event.update(fields)
    return event


def without(field: str) -> dict[str, Any]:
    event = good()
    del event[field]
    return event


# --------------------------------------------------------------------------- validate_event


def test_valid_event_is_returned_unchanged_and_uncopied() -> None:
    event = good(timestamp=1.5, chat=[], summary=None, model_name="m", id=3, extra={"k": 1})
    assert validate_event(event) is event
    assert event["extra"] == {"k": 1}


@pytest.mark.parametrize(
    ("event", "field", "message"),
    [
        ("text", "", "event: expected object, got string"),
        ([good()], "", "event: expected object, got array"),
        (None, "", "event: expected object, got null"),
        (without("source_app"), "source_app", "source_app: missing required field"),
        (without("session_id"), "session_id", "session_id: missing required field"),
        (without("hook_event_type"), "hook_event_type", "hook_event_type: missing required field"),
        (good(source_app=1), "source_app", "source_app: expected string, got number"),
        (good(session_id=None), "session_id", "session_id: expected string, got null"),
        (
            good(hook_event_type=True),
            "hook_event_type",
            "hook_event_type: expected string, got boolean",
        ),
        (good(source_app=""), "source_app", "source_app: must not be empty"),
        (good(session_id=""), "session_id", "session_id: must not be empty"),
        (good(hook_event_type=""), "hook_event_type", "hook_event_type: must not be empty"),
        (without("payload"), "payload", "payload: missing required field"),
        (good(payload="x"), "payload", "payload: expected object, got string"),
        (good(payload=[1]), "payload", "payload: expected object, got array"),
        (good(payload=None), "payload", "payload: expected object, got null"),
        (good(timestamp="1"), "timestamp", "timestamp: expected number (epoch ms), got string"),
        (good(timestamp=True), "timestamp", "timestamp: expected number (epoch ms), got boolean"),
        (good(timestamp=-1), "timestamp", "timestamp: expected a non-negative epoch in ms, got -1"),
        (
            good(timestamp=math.inf),
            "timestamp",
            "timestamp: expected a non-negative epoch in ms, got inf",
        ),
        (
            good(timestamp=math.nan),
            "timestamp",
            "timestamp: expected a non-negative epoch in ms, got nan",
        ),
        (  # an int no float can hold: a clear error, not an OverflowError (nor a huge repr)
            good(timestamp=10**5000),
            "timestamp",
            "timestamp: expected a non-negative epoch in ms, got a number beyond 1e308",
        ),
        (good(summary=1), "summary", "summary: expected string or null, got number"),
        (good(model_name={}), "model_name", "model_name: expected string or null, got object"),
        (good(chat="hi"), "chat", "chat: expected array or null, got string"),
        (good(chat={}), "chat", "chat: expected array or null, got object"),
        (good(chat=(1,)), "chat", "chat: expected array or null, got tuple"),
        (good(id="7"), "id", "id: expected integer, got string"),
        (good(id=1.0), "id", "id: expected integer, got number"),
        (good(id=False), "id", "id: expected integer, got boolean"),
        (good(id=None), "id", "id: expected integer, got null"),
    ],
)
def test_each_validation_error_names_field_and_problem(
    event: Any, field: str, message: str
) -> None:
    with pytest.raises(EventValidationError) as info:
        validate_event(event)
    assert str(info.value) == message
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_where_prefixes_the_message() -> None:
    with pytest.raises(
        EventValidationError, match=r"^events\[3\]\.payload: missing required field$"
    ):
        validate_event(without("payload"), where="events[3].")
    with pytest.raises(EventValidationError, match=r"^events\[3\]: expected object, got number$"):
        validate_event(5, where="events[3].")


def test_require_id_demands_an_integer_id() -> None:
    with pytest.raises(EventValidationError, match=r"^id: expected integer, got null$"):
        validate_event(good(), require_id=True)
    assert validate_event(good(id=0), require_id=True)["id"] == 0


def test_optional_fields_may_be_null() -> None:
    validate_event(good(timestamp=None, chat=None, summary=None, model_name=None))
    validate_event(good(timestamp=0))


# --------------------------------------------------------------------------- validate_events


def test_validate_events_accepts_one_object_or_a_batch() -> None:
    one = good()
    assert validate_events(one) == [one]
    batch = [good(), good(id=2)]
    assert validate_events(batch) is batch


def test_empty_batch_is_rejected() -> None:
    with pytest.raises(EventValidationError, match=r"^events: empty batch$"):
        validate_events([])


def test_oversized_batch_raises_limit_exceeded_with_details() -> None:
    with pytest.raises(LimitExceeded) as info:
        validate_events([good()] * 4, max_batch=3)
    assert str(info.value) == "events: batch of 4 events exceeds the limit of 3"
    assert (info.value.limit, info.value.value, info.value.bound) == ("max_batch_events", 4, 3)
    assert validate_events([good()] * 3, max_batch=3)


def test_bad_event_in_batch_names_its_index() -> None:
    with pytest.raises(EventValidationError, match=r"^events\[1\]\.session_id: must not be empty$"):
        validate_events([good(), good(session_id="")])
    with pytest.raises(EventValidationError, match=r"^events\[0\]\.id: expected integer"):
        validate_events([good()], require_id=True)


class Str(str):
    """A str subclass: valid for validate_event."""


class Lst(list[Any]):
    """A list subclass: valid for validate_event."""


class IntFlag(enum.IntFlag):
    A = 4


# One change each to an event of a big batch: validate_events (fused check first) must give
# exactly the per-event reference's verdict and message, wherever the event sits.
BATCH_VARIANTS: list[tuple[str, Any]] = [
    ("source_app", 1),
    ("source_app", ""),
    ("source_app", Str("app")),
    ("session_id", None),
    ("hook_event_type", True),
    ("payload", "x"),
    ("payload", None),
    ("payload", []),
    ("timestamp", "1"),
    ("timestamp", True),
    ("timestamp", -1),
    ("timestamp", -0.5),
    ("timestamp", math.inf),
    ("timestamp", math.nan),
    ("timestamp", 1e308),
    ("timestamp", 2**70),
    ("timestamp", None),
    ("timestamp", 0),
    ("summary", 1),
    ("summary", None),
    ("summary", "s"),
    ("model_name", {}),
    ("chat", "hi"),
    ("chat", {}),
    ("chat", [1]),
    ("id", "7"),
    ("id", 1.0),
    ("id", False),
    ("id", None),
    ("id", 2**63),
    ("extra", object()),
    # Types msgspec would read but the reference refuses, or the reverse:
    ("chat", (1, 2)),
    ("summary", Str("s")),
    ("timestamp", 10**400),
    ("timestamp", np.float64(5.0)),
    ("timestamp", np.int64(5)),
    ("timestamp", IntFlag.A),
    ("timestamp", Decimal("5")),
    ("timestamp", -0.0),
    ("id", 7.0),
    ("id", IntFlag.A),
    ("id", np.int64(7)),
    ("payload", MappingProxyType({})),
    ("payload", OrderedDict()),
    ("chat", Lst()),
]


def reference_validate(batch: list[Any], require_id: bool) -> str | None:
    for i, ev in enumerate(batch):
        try:
            validate_event(ev, where=f"events[{i}].", require_id=require_id)
        except EventValidationError as exc:
            return str(exc)
    return None


@pytest.mark.parametrize("require_id", [False, True])
@pytest.mark.parametrize(("field", "value"), BATCH_VARIANTS)
def test_big_batches_get_exactly_the_per_event_verdict(
    field: str, value: Any, require_id: bool
) -> None:
    for pos in (0, 5, 11):
        batch = [good(timestamp=1.5e12 + i, id=i + 1) for i in range(12)]
        batch[3].pop("id")  # ids may be absent unless required
        batch[pos][field] = value
        for missing in ((), ("summary",), (field,)):
            trial = [dict(ev) for ev in batch]
            for name in missing:
                trial[pos].pop(name, None)
            expected = reference_validate(trial, require_id)
            if expected is None:
                assert validate_events(trial, require_id=require_id) is trial
            else:
                with pytest.raises(EventValidationError) as info:
                    validate_events(trial, require_id=require_id)
                assert str(info.value) == expected


def test_fused_check_accepts_a_mixed_valid_batch_and_refuses_what_it_cannot_vouch_for() -> None:
    batch = [good(timestamp=t, id=i) for i, t in enumerate((0, 1.5, None, 7), 1)] * 3
    batch[1] = good()  # no id
    assert all_valid(batch) and not all_valid(batch, require_id=True)
    assert not all_valid([good(timestamp=np.float64(5))] * FUSED_MIN)  # valid, but not vouched
    assert validate_events([good(timestamp=np.float64(5))] * FUSED_MIN)  # the reference accepts
    assert not all_valid([OrderedDict(good())] * FUSED_MIN)  # events must be exact dicts
    assert validate_events([OrderedDict(good())] * FUSED_MIN)
    assert not all_valid([MappingProxyType(good())] * FUSED_MIN)


@pytest.mark.parametrize(("obj", "kind"), [("x", "string"), (3, "number"), (None, "null")])
def test_non_object_non_array_body_is_rejected(obj: Any, kind: str) -> None:
    with pytest.raises(
        EventValidationError, match=f"^event: expected object or array of objects, got {kind}$"
    ):
        validate_events(obj)


# --------------------------------------------------------------------------- JSON helpers


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (None, "null"),
        (True, "boolean"),
        (1, "number"),
        (1.5, "number"),
        ("s", "string"),
        ({}, "object"),
        ([], "array"),
        ((), "tuple"),  # refused where an array is expected: "got array" would be a riddle
        ({1}, "set"),
        (b"x", "bytes"),
    ],
)
def test_json_type_names(value: Any, name: str) -> None:
    assert json_type(value) == name


@pytest.mark.parametrize("data", [b"{", b"", "[1,]", b"NaN", b"Infinity", b"\xff", b"[1 2]"])
def test_decode_json_raises_protocol_error(data: Any) -> None:
    with pytest.raises(ProtocolError, match=r"^invalid JSON: "):
        decode_json(data)


def test_integers_beyond_64_bits_decode_as_floats_so_ids_fail_validation() -> None:
    event = decode_json(b'{"id": 18446744073709551616}')
    assert isinstance(event["id"], float)
    with pytest.raises(EventValidationError, match=r"^id: expected integer, got number$"):
        validate_event({**good(), **event})


def test_decode_json_accepts_bytes_str_and_memoryview() -> None:
    for data in (b'{"a":1}', '{"a":1}', bytearray(b'{"a":1}'), memoryview(b'{"a":1}')):
        assert decode_json(data) == {"a": 1}


def test_encode_json_is_compact_and_stringifies_keys() -> None:
    assert encode_json({"a": [1, None], 2: "é"}) == '{"a":[1,null],"2":"é"}'.encode()


@pytest.mark.parametrize("value", [{"a": {1, 2}}, object(), {"n": 1 << 70}])
def test_encode_json_raises_protocol_error(value: Any) -> None:
    with pytest.raises(ProtocolError, match=r"^cannot encode as JSON: "):
        encode_json(value)


def test_now_ms_is_epoch_milliseconds() -> None:
    before = time.time() * 1000.0
    value = now_ms()
    after = time.time() * 1000.0
    assert before <= value <= after


def test_iter_ids_skips_events_without_integer_id() -> None:
    assert iter_ids([good(id=1), good(), good(id="x"), good(id=5)]) == [1, 5]


# --------------------------------------------------------------------------- decode_events


def test_decode_events_single_and_batch() -> None:
    assert decode_events(orjson.dumps(good(id=1))) == [good(id=1)]
    assert decode_events(orjson.dumps([good(), good(x=1)]).decode()) == [good(), good(x=1)]


def test_decode_events_limits() -> None:
    body = orjson.dumps(good(payload={"pad": "x" * 200}))
    with pytest.raises(LimitExceeded) as info:
        decode_events(body, max_event_bytes=100)
    assert info.value.limit == "max_event_bytes" and info.value.value == len(body)
    assert str(info.value) == f"event: {len(body)} bytes exceeds the limit of 100"
    # the per-event limit applies to single-event bodies; batches have the message limit
    assert decode_events(b"[" + body + b"]", max_event_bytes=100)
    with pytest.raises(LimitExceeded) as info:
        decode_events(b"[" + body + b"]", max_message_bytes=100)
    assert info.value.limit == "max_message_bytes" and info.value.bound == 100
    assert str(info.value).startswith("body: ")
    with pytest.raises(LimitExceeded, match=r"max_batch|exceeds the limit of 1$"):
        decode_events(orjson.dumps([good(), good()]), max_batch=1)
    assert DEFAULT_MAX_BATCH_EVENTS == 10_000


def test_decode_events_errors_are_typed() -> None:
    with pytest.raises(ProtocolError):
        decode_events(b"{not json")
    with pytest.raises(ProtocolError):
        decode_events("\ud800")  # lone surrogate: a protocol error, not UnicodeEncodeError
    with pytest.raises(EventValidationError, match=r"^events\[0\]\.payload"):
        decode_events(b'[{"source_app":"a","session_id":"s","hook_event_type":"t"}]')


# --------------------------------------------------------------------------- round trips

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=("Cs",)), max_size=8), inner, max_size=4
        )
    ),
    max_leaves=12,
)
_name = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=12)
_reserved = {"source_app", "session_id", "hook_event_type", "payload", "timestamp", "chat"}
_reserved |= {"summary", "model_name", "id"}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "source_app": draw(_name),
        "session_id": draw(_name),
        "hook_event_type": draw(_name),
        "payload": draw(st.dictionaries(_name, _json_values, max_size=5)),
    }
    if draw(st.booleans()):
        event["timestamp"] = draw(
            st.integers(min_value=0, max_value=1 << 53) | st.floats(min_value=0, max_value=1e15)
        )
    for field in ("summary", "model_name"):
        if draw(st.booleans()):
            event[field] = draw(st.none() | _name)
    if draw(st.booleans()):
        event["chat"] = draw(st.none() | st.lists(_json_values, max_size=3))
    if draw(st.booleans()):
        event["id"] = draw(st.integers(min_value=0, max_value=(1 << 63) - 1))
    extras = draw(
        st.dictionaries(_name.filter(lambda k: k not in _reserved), _json_values, max_size=3)
    )
    event.update(extras)
    return event


@settings(max_examples=150, deadline=None)
@given(events())
def test_events_round_trip_through_encode_and_decode_keeping_unknown_fields(
    event: dict[str, Any],
) -> None:
    assert validate_event(event) is event
    assert decode_events(encode_json(event)) == [event]
    assert decode_events(encode_json([event, event])) == [event, event]


def test_encode_json_stringifies_non_string_keys_and_rejects_what_json_cannot_hold() -> None:
    assert encode_json({"a": {1: "x", "b": [1.5, None]}}) == b'{"a":{"1":"x","b":[1.5,null]}}'
    assert encode_json({"source_app": "é"}) == '{"source_app":"é"}'.encode()
    with pytest.raises(ProtocolError, match="cannot encode as JSON"):
        encode_json({"a": object()})
    with pytest.raises(ProtocolError, match="cannot encode as JSON"):
        encode_json({1: object()})


def test_a_memoryview_body_is_sized_in_bytes_not_items() -> None:
    """len() of a memoryview of wider items counts items: a 4 KB body passed a 1,100 limit."""
    body = (
        b'{"source_app":"a","session_id":"s","hook_event_type":"T","payload":{"p":"'
        + b"x" * 4000
        + b'"}}'
    )
    wide = memoryview(body + b" " * (-len(body) % 4)).cast("I")
    assert len(wide) < 1100 < wide.nbytes
    with pytest.raises(LimitExceeded):
        decode_events(wide, max_event_bytes=1100, max_message_bytes=1100)


def _verdict(fn: Any, event: Any, require_id: bool) -> str | None:
    try:
        fn(event, where="events[2].", require_id=require_id)
    except EventValidationError as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("require_id", [False, True])
@pytest.mark.parametrize(("field", "value"), BATCH_VARIANTS)
def test_the_fast_accept_of_validate_event_is_the_reference_verdict(
    field: str, value: Any, require_id: bool
) -> None:
    """validate_event's one-expression accept (exact types) decides nothing the reference
    checks would decide otherwise: the same verdict and message for every variant."""
    for missing in ((), ("summary",), (field,), ("payload",), ("id",)):
        event = good(timestamp=1.5e12, id=3)
        event[field] = value
        for name in missing:
            event.pop(name, None)
        assert _verdict(validate_event, event, require_id) == _verdict(
            _validate_event_reference, event, require_id
        )


_field_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**1030), 2**1030),
    st.floats(),
    st.text(max_size=3),
    st.builds(Str, st.text(max_size=3)),
    st.lists(st.integers(), max_size=2),
    st.builds(Lst),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from([Decimal("1"), np.float64(2.0), np.int64(3), IntFlag.A, (1,), object()]),
)


@settings(max_examples=500, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from(
            [
                "source_app",
                "session_id",
                "hook_event_type",
                "payload",
                "timestamp",
                "summary",
                "model_name",
                "chat",
                "id",
                "other",
            ]
        ),
        _field_values,
        max_size=4,
    ),
    dropped=st.sets(st.sampled_from(["source_app", "payload", "timestamp", "id"]), max_size=2),
    require_id=st.booleans(),
)
def test_validate_event_is_its_reference_for_any_field_values(
    changes: dict[str, Any], dropped: set[str], require_id: bool
) -> None:
    event = good(timestamp=1.5e12, id=3)
    event.update(changes)
    for name in dropped:
        event.pop(name, None)
    assert _verdict(validate_event, event, require_id) == _verdict(
        _validate_event_reference, event, require_id
    )
