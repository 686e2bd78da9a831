"""The client's message parser (``_protocol.parse_server_message``, with its fused batch check)
gives exactly the verdicts of a plain per-event reference built on ``validate_event`` (no
sockets: the parser is the client's hot path, tested beside the client's other tests)."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from wsnotebook.client import Client
from wsnotebook.errors import ProtocolError, WsnError
from wsnotebook.events import decode_json, json_type, validate_event
from wsnotebook.protocol import ServerMessage, parse_server_message


def reference_parse(raw: bytes | str) -> ServerMessage:
    """The obvious implementation: validate each event on its own."""
    obj = decode_json(raw)
    if not isinstance(obj, dict):
        raise ProtocolError(f"message: expected object, got {json_type(obj)}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"type: expected string, got {json_type(kind)}")
    msg = ServerMessage(kind, data=obj.get("data"))
    if kind in ("initial", "batch", "event"):
        items = [obj.get("data")] if kind == "event" else obj.get("data")
        if not isinstance(items, list):
            raise ProtocolError(f"data: expected array, got {json_type(items)}")
        for ev in items:
            try:
                msg.events.append(validate_event(ev, require_id=True))
            except (ValueError, OverflowError):
                msg.invalid += 1
        if kind == "initial":
            seq = obj.get("seq")
            msg.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
            epoch = obj.get("epoch")
            msg.epoch = epoch if isinstance(epoch, str) else None
            msg.reset = obj.get("reset") is True
    return msg


GOOD: dict[str, Any] = {
    "id": 1,
    "source_app": "app",
    "session_id": "s1",
    "hook_event_type": "PreToolUse",
    "payload": {"tool_name": "Bash"},
    "timestamp": 1_760_000_000_000,
}

# One field change each: every one must be judged exactly as validate_event(require_id=True).
VARIANTS: list[tuple[str, Any]] = [
    ("id", None),
    ("id", True),
    ("id", 1.0),
    ("id", "7"),
    ("source_app", ""),
    ("source_app", 3),
    ("session_id", None),
    ("hook_event_type", ["x"]),
    ("payload", []),
    ("payload", "text"),
    ("timestamp", -1),
    ("timestamp", "now"),
    ("timestamp", True),
    ("timestamp", None),
    ("timestamp", 1.5),
    ("summary", 3),
    ("summary", "ok"),
    ("model_name", {"a": 1}),
    ("model_name", "m"),
    ("chat", "hi"),
    ("chat", [{"role": "user"}]),
    ("extra", {"kept": True}),
]


def _event(i: int, rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.03:
        return rng.choice([1, "x", None, [GOOD]])
    event = dict(GOOD, id=i)
    if roll < 0.4:
        field, value = rng.choice(VARIANTS)
        event[field] = value
    if roll > 0.97:
        del event[rng.choice(["id", "payload", "source_app", "session_id", "hook_event_type"])]
    return event


def _same(raw: bytes) -> tuple[Any, Any]:
    def result(parse: Any) -> Any:
        try:
            msg = parse(raw)
        except WsnError as exc:
            return type(exc).__name__, str(exc)
        return (msg.type, msg.events, msg.invalid, msg.seq, msg.epoch, msg.reset, msg.data)

    return result(parse_server_message), result(reference_parse)


@pytest.mark.parametrize("size", [1, 7, 8, 50, 300])
def test_fused_parser_agrees_with_the_reference_on_mixed_batches(size: int) -> None:
    rng = random.Random(size)
    for rep in range(40):
        events = [_event(rep * 1000 + i, rng) for i in range(size)]
        for kind in ("batch", "initial"):
            msg: dict[str, Any] = {"type": kind, "data": events}
            if kind == "initial":
                msg.update(seq=rng.choice([5, None, True]), epoch=rng.choice(["e", 3]))
            ours, ref = _same(orjson.dumps(msg))
            assert ours == ref
        ours, ref = _same(orjson.dumps({"type": "event", "data": events[0]}))
        assert ours == ref


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1]",
        b'{"type": 3}',
        b'{"data": []}',
        b'{"type": "batch", "data": {}}',
        b'{"type": "batch", "data": []}',
        b'{"type": "event", "data": 5}',
        b'{"type": "heartbeat", "timestamp": 5}',
        b'{"type": "gap", "data": {"from_id": 1, "to_id": 2}}',
        b'{"type": "whatever", "data": [1]}',
        b'{"type": "batch", "data": [{"id": 1, "timestamp": 1e308}]}',
    ],
)
def test_fused_parser_agrees_with_the_reference_on_odd_messages(raw: bytes) -> None:
    ours, ref = _same(raw)
    assert ours == ref


def test_handler_stamps_counts_and_drops_invalid_events_in_one_batch() -> None:
    client = Client("ws://127.0.0.1:9/stream", max_rows=100)
    good = [dict(GOOD, id=i, timestamp=1000.0 + i) for i in range(1, 21)]
    bad = dict(GOOD, id=21, payload="nope")
    raw = orjson.dumps({"type": "batch", "data": [*good[:10], bad, *good[10:]]})
    client._handle(raw, len(raw))  # outside a running loop: appended at once
    df = client.frame.df
    assert df["id"].tolist() == list(range(1, 21))
    assert df["client_received"].notna().all() and df["latency_ms"].gt(0).all()
    assert client.invalid_events == 1 and client.events == 20
    assert client._sink.latency.count == 20 and client._sink.resume.last_id == 20


@pytest.mark.parametrize("odd", [float("nan"), float("inf"), -0.5, 10**400, 1e308])
def test_fused_check_never_accepts_a_timestamp_the_reference_rejects(odd: Any) -> None:
    from wsnotebook.protocol.messages import _server_events

    events = [dict(GOOD, id=i, timestamp=5.0) for i in range(1, 10)]
    events.insert(4, dict(GOOD, id=99, timestamp=odd))
    events.append(dict(GOOD, id=100, timestamp=1e308))
    expected = []
    for e in events:
        try:
            expected.append(validate_event(e, require_id=True))
        except (ValueError, OverflowError):
            pass
    good, invalid = _server_events(events)
    assert good == expected and invalid == len(events) - len(expected)


@pytest.mark.parametrize("size", [3, 200], ids=["dict path", "columnar path"])
def test_an_event_the_frame_cannot_store_costs_only_itself(size: int) -> None:
    # Valid on the wire (validate_event accepts any int id) but beyond the frame's int64 ids.
    client = Client("ws://127.0.0.1:9/stream", max_rows=1000)
    events = [dict(GOOD, id=i, timestamp=1000.0 + i) for i in range(1, size + 1)]
    events[1] = dict(GOOD, id=2**63 + 5)
    raw = orjson.dumps({"type": "batch", "data": events})
    client._handle(raw, len(raw))
    assert client.frame.df["id"].tolist() == [1, *range(3, size + 1)]
    assert client.invalid_events == 1 and client.events == size - 1
    assert "internal" not in client.metrics()["errors"]


def test_single_event_messages_queued_with_an_unstorable_one_are_all_kept() -> None:
    import asyncio

    client = Client("ws://127.0.0.1:9/stream", max_rows=1000)

    async def feed() -> None:  # inside a loop: the events wait for one flush together
        for i in range(1, 31):
            ev = dict(GOOD, id=2**63 + 5) if i == 7 else dict(GOOD, id=i)
            raw = orjson.dumps({"type": "event", "data": ev})
            client._handle(raw, len(raw))
        await asyncio.sleep(0)

    asyncio.run(feed())
    assert client.frame.df["id"].tolist() == [i for i in range(1, 31) if i != 7]
    assert client.invalid_events == 1 and "internal" not in client.metrics()["errors"]
