"""Wire messages: encoders, parsers, close codes and size fitting (wsnotebook.protocol.messages)."""

from __future__ import annotations

import orjson
import pytest
from _protocol_helpers import ev
from hypothesis import given, settings
from hypothesis import strategies as st

from wsnotebook.errors import ProtocolError
from wsnotebook.protocol import (
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    ENVELOPE_BYTES,
    MAX_ERROR_CHARS,
    RETRYABLE_CLOSE_CODES,
    ClientMessage,
    ServerMessage,
    batch_message,
    encode_event,
    error_message,
    event_message,
    event_room,
    fit_newest,
    fit_oldest,
    gap_message,
    heartbeat_message,
    initial_message,
    parse_client_message,
    parse_server_message,
)

# --------------------------------------------------------------------------- encoders


def test_event_and_batch_messages_wrap_pre_encoded_events() -> None:
    a, b = encode_event(ev(1)), encode_event(ev(2, extra="kept"))
    assert orjson.loads(event_message(a)) == {"type": "event", "data": ev(1)}
    assert orjson.loads(batch_message([a, b])) == {
        "type": "batch",
        "data": [ev(1), ev(2, extra="kept")],
    }
    assert orjson.loads(batch_message([])) == {"type": "batch", "data": []}


def test_initial_message_is_seed_shaped_unless_extended() -> None:
    encoded = [encode_event(ev(1)), encode_event(ev(2))]
    assert orjson.loads(initial_message(encoded, seq=2, epoch="e")) == {
        "type": "initial",
        "data": [ev(1), ev(2)],
    }
    assert orjson.loads(initial_message(encoded, seq=2, epoch="e", reset=True, extended=True)) == {
        "type": "initial",
        "data": [ev(1), ev(2)],
        "seq": 2,
        "epoch": "e",
        "reset": True,
    }
    empty = orjson.loads(initial_message([], extended=True))
    assert empty == {"type": "initial", "data": [], "seq": 0, "epoch": None, "reset": False}


def test_control_messages() -> None:
    assert orjson.loads(heartbeat_message(1234.9)) == {"type": "heartbeat", "timestamp": 1234}
    assert orjson.loads(gap_message(3, 9, "evicted", epoch="e")) == {
        "type": "gap",
        "data": {"from_id": 3, "to_id": 9, "reason": "evicted", "epoch": "e"},
    }
    assert orjson.loads(error_message("bad", "invalid_event")) == {
        "type": "error",
        "data": {"message": "bad", "code": "invalid_event"},
    }


def test_close_codes() -> None:
    assert CLOSE_TRY_AGAIN in RETRYABLE_CLOSE_CODES
    assert CLOSE_POLICY not in RETRYABLE_CLOSE_CODES  # auth/origin problems are not retried
    assert 1006 in RETRYABLE_CLOSE_CODES


# --------------------------------------------------------------------------- client messages


def test_parse_client_publish_and_heartbeat() -> None:
    assert parse_client_message(b'{"type":"publish","data":[1]}') == ClientMessage("publish", [1])
    assert parse_client_message('{"type":"heartbeat"}') == ClientMessage("heartbeat", None)
    assert parse_client_message(b'{"type":"publish","data":null}').data is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[1]", "message: expected object, got array"),
        (b'"x"', "message: expected object, got string"),
        (b"{}", "type: expected string, got null"),
        (b'{"type":1}', "type: expected string, got number"),
        (
            b'{"type":"subscribe"}',
            "type: unknown message type 'subscribe' (expected publish or heartbeat)",
        ),
        (b'{"type":"event"}', "type: unknown message type 'event'"),
        (b'{"type":"publish"}', "data: missing required field"),
        (b"{", "invalid JSON"),
    ],
)
def test_parse_client_message_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_client_message(raw)
    assert str(info.value).startswith(message)


# --------------------------------------------------------------------------- server messages


def test_parse_server_initial_with_extensions() -> None:
    raw = b'{"type":"initial","data":[%s],"seq":7,"epoch":"e1","reset":true}' % encode_event(ev(7))
    msg = parse_server_message(raw)
    assert (msg.type, msg.events, msg.seq, msg.epoch, msg.reset, msg.invalid) == (
        "initial",
        [ev(7)],
        7,
        "e1",
        True,
        0,
    )


def test_parse_server_initial_from_seed_server_has_no_resume_info() -> None:
    msg = parse_server_message(b'{"type":"initial","data":[]}')
    assert (msg.events, msg.seq, msg.epoch, msg.reset) == ([], None, None, False)
    odd = parse_server_message(b'{"type":"initial","data":[],"seq":true,"epoch":5,"reset":"yes"}')
    assert (odd.seq, odd.epoch, odd.reset) == (None, None, False)


def test_parse_server_event_and_batch_drop_and_count_invalid_events() -> None:
    msg = parse_server_message(orjson.dumps({"type": "event", "data": ev(3)}))
    assert msg.events == [ev(3)] and msg.invalid == 0
    bad = [ev(None), ev(4, payload="x"), "junk", ev(5)]  # no id / bad payload / not an object
    msg = parse_server_message(orjson.dumps({"type": "batch", "data": bad}))
    assert msg.events == [ev(5)] and msg.invalid == 3
    msg = parse_server_message(orjson.dumps({"type": "event", "data": ev(None)}))
    assert msg.events == [] and msg.invalid == 1


def test_parse_server_unknown_and_control_types_carry_data() -> None:
    msg = parse_server_message(b'{"type":"heartbeat","timestamp":5}')
    assert msg == ServerMessage("heartbeat")
    gap = parse_server_message(gap_message(1, 2, "evicted"))
    assert gap.type == "gap" and gap.data["from_id"] == 1 and gap.events == []
    assert parse_server_message(b'{"type":"future","data":{"x":1}}').data == {"x": 1}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[]", "message: expected object, got array"),
        (b'{"data":[]}', "type: expected string, got null"),
        (b'{"type":"batch","data":{}}', "data: expected array, got object"),
        (b'{"type":"initial"}', "data: expected array, got null"),
        (b"nope", "invalid JSON"),
    ],
)
def test_parse_server_message_errors(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_server_message(raw)
    assert str(info.value).startswith(message)


# --------------------------------------------------------------------------- message size fit


def test_fit_newest_keeps_the_latest_events_within_the_message_limit() -> None:
    limit = 228
    assert event_room(limit) == 100  # 128 bytes kept for the envelope at small limits
    assert event_room(1 << 20) == (1 << 20) - ENVELOPE_BYTES
    assert fit_newest([], limit) == 0
    assert fit_newest([b"x" * 10] * 5, limit) == 5  # all fit
    assert fit_newest([b"x" * 30] * 5, limit) == 3  # 3 x (30 + 1 separator) <= 100 < 4 x 31
    assert fit_newest([b"x" * 90, b"y" * 10, b"z" * 50], limit) == 2  # from the newest: 51+11
    assert fit_newest([b"x" * 500], limit) == 1  # never none: the event was bounded at ingest


def test_fit_oldest_keeps_the_first_events_within_the_message_limit() -> None:
    limit = 228
    assert fit_oldest([], limit) == 0
    assert fit_oldest([b"x" * 30] * 5, limit) == 3
    assert fit_oldest([b"x" * 90, b"y" * 10, b"z" * 50], limit) == 1  # 91 + 11 > 100
    assert fit_oldest([b"x" * 500, b"y"], limit) == 1


@given(
    st.lists(st.integers(1, 300), max_size=40), st.integers(ENVELOPE_BYTES, ENVELOPE_BYTES + 3000)
)
@settings(max_examples=200, deadline=None)
def test_fitted_messages_never_exceed_the_limit_unless_one_event_alone_does(
    sizes: list[int], limit: int
) -> None:
    events = [b"x" * n for n in sizes]
    newest, oldest = fit_newest(events, limit), fit_oldest(events, limit)
    for k, kept, rest in (
        (newest, events[len(events) - newest :], events[: len(events) - newest][::-1]),
        (oldest, events[:oldest], events[oldest:]),
    ):
        assert (k == 0) == (not events)
        if k > 1:
            assert len(batch_message(kept)) <= limit
        if rest and k >= 1:  # the next event would not have fitted
            assert sum(map(len, kept)) + len(rest[0]) + k + 1 > limit - ENVELOPE_BYTES


# --------------------------------------------------------------------------- ResumeState


@pytest.mark.parametrize("limit", [1024, 2048, 4096, 8192])
def test_small_message_limits_still_carry_the_events_that_fit(limit: int) -> None:
    """A fixed 4 KiB envelope reserve left room for one event whatever the limit <= 4 KiB."""
    events = [orjson.dumps({"id": i, "pad": "x" * 30}) for i in range(300)]  # ~50 bytes each
    for fit in (fit_newest, fit_oldest):
        k = fit(events, limit)
        picked = events[-k:] if fit is fit_newest else events[:k]
        message = initial_message(picked, seq=300, epoch="e" * 16, reset=False, extended=True)
        assert len(message) <= limit
        assert k * 52 >= 0.8 * limit  # all but the envelope's share of the limit is used


def test_an_error_reply_never_quotes_more_than_max_error_chars() -> None:
    """Review: an error quoting a 2 KB unknown type made a 6 KB reply, over a 4 KiB limit."""
    reply = orjson.loads(error_message("unknown type: " + "\\u0000" * 2000, "unknown_type"))
    assert len(reply["data"]["message"]) == MAX_ERROR_CHARS
    assert reply["data"]["message"].endswith("…")
    assert orjson.loads(error_message("short", "x"))["data"]["message"] == "short"
