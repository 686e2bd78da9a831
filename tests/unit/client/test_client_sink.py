"""Client message handling without sockets: resume bookkeeping, gaps, dedupe, bad input.

Messages are fed straight into an unstarted Client's handler (the sink's), as the receive loop
does."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from wsnotebook.client import Client
from wsnotebook.frame import EventFrame
from wsnotebook.protocol import ResumeState


def ev(i: int, **extra: Any) -> dict[str, Any]:
    e = {
        "id": i,
        "source_app": "app",
        "session_id": "s",
        "hook_event_type": "PreToolUse",
        "payload": {"i": i},
        "timestamp": 1_700_000_000_000 + i,
    }
    e.update(extra)
    return e


def feed(client: Client, obj: Any) -> None:
    raw = obj if isinstance(obj, bytes) else orjson.dumps(obj)
    client._handle(raw, len(raw))


def initial(ids: range | list[int], **extra: Any) -> dict[str, Any]:
    return {"type": "initial", "data": [ev(i) for i in ids], **extra}


def ids_of(frame: EventFrame) -> list[int]:
    return frame.df["id"].tolist()


@pytest.fixture
def client() -> Client:
    return Client("ws://127.0.0.1:9/stream")


def test_first_query_is_extended_without_since_and_later_resumes_with_epoch(
    client: Client,
) -> None:
    assert client._session.query() == {"ext": "1", "batch": "auto", "format": "columns"}
    feed(client, initial(range(1, 6), seq=5, epoch="A", reset=False, more=False))
    assert client._session.query() == {
        "ext": "1",
        "since": "5",
        "epoch": "A",
        "batch": "auto",
        "format": "columns",
    }
    feed(client, {"type": "event", "data": ev(6)})
    feed(client, {"type": "batch", "data": [ev(7), ev(8)]})
    assert client._session.query()["since"] == "8"
    assert client.frame.total == 8


def test_replayed_events_are_appended_exactly_once(client: Client) -> None:
    feed(client, initial(range(1, 6), seq=5, epoch="A"))
    feed(client, initial(range(4, 8), seq=7, epoch="A", reset=False))  # overlap 4, 5
    feed(client, {"type": "batch", "data": [ev(7), ev(8)]})  # 7 again
    assert ids_of(client.frame) == list(range(1, 9))
    assert client.duplicates_skipped == 3
    assert client.metrics()["gaps"] == 0
    assert len(client.frame.gaps) == 0


def test_new_epoch_gap_is_open_ended_with_the_last_heartbeat_seq_as_lower_bound(
    client: Client,
) -> None:
    feed(client, initial(range(1, 6), seq=5, epoch="A"))
    feed(client, {"type": "heartbeat", "timestamp": 1, "seq": 9, "epoch": "A"})
    assert client.metrics()["server_seq"] == 9
    # server restarted with an empty memory store: ids restart at 1
    feed(client, initial(range(1, 3), seq=2, epoch="B", reset=True))
    gaps = client.frame.gaps
    # 6..9 are known lost; the old server may have accepted more after seq 9: end unknown
    assert gaps[["from_id", "to_id"]].values.tolist() == [[6, -1]]
    assert gaps["reason"].iloc[0] == (
        "new epoch B: at least 4 events lost (last seq heard 9); end unknown"
    )
    m = client.metrics()
    assert (m["gaps"], m["gaps_open_ended"], m["gap_events_at_least"]) == (1, 1, 4)
    # the frame forgot the old ids, so the new epoch's 1 and 2 are kept, not deduped
    assert ids_of(client.frame) == [1, 2, 3, 4, 5, 1, 2]
    assert client._session.query()["epoch"] == "B"
    assert client._session.query()["since"] == "2"


def test_new_epoch_without_a_newer_seq_records_an_open_ended_gap(client: Client) -> None:
    feed(client, initial(range(1, 4), seq=3, epoch="A"))
    feed(client, initial([], seq=0, epoch="B", reset=True))
    gaps = client.frame.gaps
    assert gaps[["from_id", "to_id"]].values.tolist() == [[4, -1]]
    assert "events after id 3 lost, if any" in gaps["reason"].iloc[0]
    assert client.metrics()["gap_events_at_least"] == 0
    assert client._session.query()["since"] == "0"  # in sync with the empty new store


def test_reset_in_the_same_epoch_records_the_evicted_range(client: Client) -> None:
    feed(client, initial(range(1, 6), seq=5, epoch="A"))
    feed(client, initial(range(9, 12), seq=11, epoch="A", reset=True))
    assert client.frame.gaps[["from_id", "to_id"]].values.tolist() == [[6, 8]]
    assert client.frame.gaps["reason"].iloc[0] == "evicted"
    assert ids_of(client.frame) == [1, 2, 3, 4, 5, 9, 10, 11]


def test_gap_message_is_recorded_and_advances_resume_point(client: Client) -> None:
    feed(client, initial(range(1, 4), seq=3, epoch="A"))
    feed(
        client,
        {"type": "gap", "data": {"from_id": 4, "to_id": 10, "reason": "slow", "epoch": "A"}},
    )
    assert client.frame.gaps[["from_id", "to_id"]].values.tolist() == [[4, 10]]
    assert client._session.query()["since"] == "10"
    feed(client, {"type": "gap", "data": {"from_id": "x"}})  # malformed: counted, ignored
    assert client.decode_failures == 1
    assert len(client.frame.gaps) == 1


def test_seed_server_restart_is_detected_when_ids_go_back(client: Client) -> None:
    feed(client, initial(range(1, 6)))  # seed-style: no seq, no epoch
    assert client._session.query() == {
        "ext": "1",
        "since": "5",
        "batch": "auto",
        "format": "columns",
    }
    feed(client, initial(range(1, 3)))  # restarted with a fresh store
    assert client.frame.gaps[["from_id", "to_id"]].values.tolist() == [[6, -1]]
    assert ids_of(client.frame) == [1, 2, 3, 4, 5, 1, 2]


def test_seed_server_snapshot_that_misses_events_records_a_gap(client: Client) -> None:
    feed(client, initial(range(1, 6)))
    feed(client, initial(range(301, 601)))  # only the latest 300 are sent
    assert client.frame.gaps[["from_id", "to_id"]].values.tolist() == [[6, 300]]
    assert client.frame.total == 305


def test_seed_server_reconnect_without_loss_dedupes_silently(client: Client) -> None:
    feed(client, initial(range(1, 6)))
    feed(client, initial(range(1, 8)))
    assert ids_of(client.frame) == list(range(1, 8))
    assert len(client.frame.gaps) == 0


def test_bad_input_is_counted_never_raised(client: Client) -> None:
    feed(client, initial(range(1, 3), seq=2, epoch="A"))
    feed(client, b"not json{")
    feed(client, b"\xff\xfe")
    feed(client, b"[1, 2]")
    feed(client, {"type": "surprise", "data": 1})
    feed(client, {"type": "batch", "data": [ev(3), {"id": 4, "payload": "x"}, ev(5, payload=[])]})
    feed(client, {"type": "batch", "data": "not a list"})
    feed(client, {"type": "error", "data": {"message": "bad", "code": "invalid_event"}})
    m = client.metrics()
    assert m["decode_failures"] == 4
    assert m["unknown_messages"] == 1
    assert m["invalid_events"] == 2
    assert m["server_errors"] == 1
    assert m["errors"]["decode"] == 4
    assert ids_of(client.frame) == [1, 2, 3]
    assert client.traffic.df["type"].tolist().count("invalid") == 4


def test_events_get_a_client_received_stamp(client: Client) -> None:
    feed(client, initial([1], seq=1, epoch="A"))
    feed(client, {"type": "event", "data": ev(2, server_received=1.0)})
    df = client.frame.df
    assert df["client_received"].notna().all()
    assert (df["latency_ms"] > 0).all()
    assert client.metrics()["latency_ms"]["p50"] > 0  # the live event's producer -> client


def test_traffic_log_records_each_message(client: Client) -> None:
    feed(client, initial(range(1, 4), seq=3, epoch="A"))
    feed(client, {"type": "heartbeat", "timestamp": 1, "seq": 3, "epoch": "A"})
    df = client.traffic.df
    assert df["type"].tolist() == ["initial", "heartbeat"]
    assert df["n_events"].tolist() == [3, 0]
    assert (df["bytes"] > 0).all()


def test_a_negative_id_from_a_foreign_server_never_becomes_the_resume_position() -> None:
    """since() is sent as ?since=N (N >= 0): -1 or -5 would make every reconnect a 400."""
    state = ResumeState()
    state.on_gap(1, -1)
    state.on_ids([-5])
    assert state.since() is None
    state.on_ids([3, -7])
    assert state.since() == 3
