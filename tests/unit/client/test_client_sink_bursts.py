"""The per-event path inside a running loop: a burst of ``event`` messages from a wsnotebook
server is decoded message by message into records and reaches the frame as one columnar append.

No sockets: messages are fed to an unstarted Client's handler inside ``asyncio.run``, without
yielding between the messages of a burst, as the receive loop does with messages already read.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from wsnotebook.client import Client
from wsnotebook.frame import EventFrame


def ev(i: int, **extra: Any) -> dict[str, Any]:
    e = {
        "id": i,
        "source_app": "app",
        "session_id": f"s{i % 3}",
        "hook_event_type": "PreToolUse",
        "payload": {"i": i, "text": "é ✓"},
        "timestamp": 1_700_000_000_000 + i,
        "server_received": 1_700_000_000_001 + i,
    }
    e.update(extra)
    return e


def event_message(e: dict[str, Any]) -> bytes:
    return b'{"type":"event","data":' + orjson.dumps(e) + b"}"


def feed_bursts(client: Client, bursts: list[list[bytes]]) -> None:
    """Each burst handled without yielding; the loop runs (and flushes) between bursts."""

    async def run() -> None:
        for burst in bursts:
            for raw in burst:
                client._handle(raw, len(raw))
            await asyncio.sleep(0)
            await asyncio.sleep(0)

    asyncio.run(run())


class Appends:
    """Counts the frame's appends by kind."""

    def __init__(self, frame: EventFrame) -> None:
        self.columns: list[int] = []
        self.dicts: list[int] = []
        extend_columns, extend = frame.extend_columns, frame.extend

        def on_columns(cols: Any) -> int:
            self.columns.append(cols.n)
            return extend_columns(cols)

        def on_dicts(events: Any) -> int:
            self.dicts.append(len(events))
            return extend(events)

        frame.extend_columns = on_columns  # type: ignore[method-assign]
        frame.extend = on_dicts  # type: ignore[method-assign]


def rows(frame: EventFrame) -> list[dict[str, Any]]:
    derived = ["client_received", "latency_ms", "transit_ms"]  # depend on arrival time
    return frame.df.drop(columns=derived).to_dict("records")


def dict_path_rows(messages: list[bytes]) -> list[dict[str, Any]]:
    """The same messages through the dict path (outside a loop: one append per message)."""
    client = Client("ws://127.0.0.1:9/stream")
    for raw in messages:
        client._handle(raw, len(raw))
    return rows(client.frame)


def test_a_burst_of_event_messages_reaches_the_frame_in_one_columnar_append() -> None:
    client = Client("ws://127.0.0.1:9/stream")
    appends = Appends(client.frame)
    messages = [event_message(ev(i)) for i in range(1, 51)]
    feed_bursts(client, [messages])
    assert appends.columns == [50] and appends.dicts == []
    assert rows(client.frame) == dict_path_rows(messages)
    assert client.frame.df["client_received"].notna().all()
    m = client.metrics()
    assert m["events"] == 50 and m["messages"] == 50
    assert client._session.query()["since"] == "50"
    traffic = client.traffic.entries()
    assert [t.type for t in traffic] == ["event"] * 50
    assert [t.decoded_bytes for t in traffic] == [len(raw) for raw in messages]


def test_bursts_under_the_minimum_take_the_dict_path_with_the_same_rows() -> None:
    client = Client("ws://127.0.0.1:9/stream")
    appends = Appends(client.frame)
    messages = [event_message(ev(i)) for i in range(1, 7)]
    feed_bursts(client, [messages[:3], messages[3:]])
    assert appends.columns == [] and appends.dicts == [3, 3]
    assert rows(client.frame) == dict_path_rows(messages)


def test_an_event_the_records_cannot_hold_keeps_its_place_in_arrival_order() -> None:
    # An unknown top-level field (e.g. a human-in-the-loop event) is not a record: the burst is
    # split around it and every event keeps its arrival order.
    client = Client("ws://127.0.0.1:9/stream")
    messages = [event_message(ev(i)) for i in range(1, 11)]
    messages.append(event_message(ev(11, humanInTheLoop={"question": "ok?"})))
    messages += [event_message(ev(i)) for i in range(12, 22)]
    feed_bursts(client, [messages])
    assert client.frame.df["id"].tolist() == list(range(1, 22))
    assert client.metrics()["events"] == 21


def test_a_payload_that_is_not_an_object_costs_only_its_own_event() -> None:
    client = Client("ws://127.0.0.1:9/stream")
    messages = [event_message(ev(i)) for i in range(1, 21)]
    messages[4] = event_message(ev(5, payload=[1, 2]))  # valid JSON, not an object
    feed_bursts(client, [messages])
    assert client.frame.df["id"].tolist() == [i for i in range(1, 21) if i != 5]
    assert client.errors["invalid_event"] == 1


def test_a_replayed_burst_is_skipped_as_duplicates_not_appended_twice() -> None:
    client = Client("ws://127.0.0.1:9/stream")
    messages = [event_message(ev(i)) for i in range(1, 31)]
    feed_bursts(client, [messages, messages[10:]])
    assert client.frame.df["id"].tolist() == list(range(1, 31))
    assert client.metrics()["duplicates_skipped"] == 20


def test_per_event_and_batch_messages_interleaved_keep_arrival_order() -> None:
    client = Client("ws://127.0.0.1:9/stream")
    batch = orjson.dumps({"type": "batch", "data": [ev(i) for i in range(11, 61)]})
    burst = [event_message(ev(i)) for i in range(1, 11)]
    burst.append(batch)
    burst += [event_message(ev(i)) for i in range(61, 71)]
    feed_bursts(client, [burst])
    assert client.frame.df["id"].tolist() == list(range(1, 71))


def test_a_burst_is_stamped_once_when_its_first_message_is_handled() -> None:
    # The receive loop handles messages already read without yielding, so they all arrived
    # before the first one was handled: one clock read serves the burst.
    client = Client("ws://127.0.0.1:9/stream")
    messages = [event_message(ev(i)) for i in range(1, 41)]
    feed_bursts(client, [messages[:20], messages[20:]])
    stamps = client.frame.df["client_received"].tolist()
    assert len(set(stamps[:20])) == 1 and len(set(stamps[20:])) == 1
    assert stamps[20] >= stamps[0]


def test_a_burst_split_around_a_dict_path_event_appends_runs_as_columns() -> None:
    client = Client("ws://127.0.0.1:9/stream")
    appends = Appends(client.frame)
    messages = [event_message(ev(i)) for i in range(1, 11)]
    messages.append(event_message(ev(11, humanInTheLoop={"question": "ok?"})))
    messages += [event_message(ev(i)) for i in range(12, 22)]
    feed_bursts(client, [messages])
    assert appends.columns == [10, 10] and appends.dicts == [1]
    assert rows(client.frame) == dict_path_rows(messages)
