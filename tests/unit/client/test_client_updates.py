"""Updates through the client's message handling, without sockets: a seed server's update (same
id, new ``humanInTheLoopStatus``) and a wsnotebook server's (``update_seq``) change the one row;
the resume position follows ``update_seq``; a re-sent ``initial`` adds no row; a reset's gap is
computed from stream positions, not from an update's (older) id."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from wsnotebook.client import Client
from wsnotebook.protocol import ResumeState, parse_server_message

HITL = {"question": "ok?", "type": "permission", "responseWebSocketUrl": "ws://localhost:1"}


def ev(i: int, status: str | None = None, **extra: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "id": i,
        "source_app": "app",
        "session_id": "s",
        "hook_event_type": "DecisionPoint",
        "payload": {"i": i},
        "timestamp": 1_700_000_000_000 + i,
    }
    if status is not None:
        e["humanInTheLoop"] = HITL
        e["humanInTheLoopStatus"] = {"status": status}
    e.update(extra)
    return e


def feed(client: Client, obj: Any) -> None:
    raw = orjson.dumps(obj)
    client._handle(raw, len(raw))


def status_rows(client: Client, ident: int) -> list[str]:
    client._sink.flush()
    df = client.frame.df
    return [s["status"] for s in df.loc[df["id"] == ident, "humanInTheLoopStatus"]]


@pytest.fixture
def client() -> Client:
    return Client("ws://127.0.0.1:9/stream")


def test_seed_server_update_changes_the_row(client: Client) -> None:
    feed(client, {"type": "initial", "data": [ev(1), ev(2, "pending")]})
    feed(client, {"type": "event", "data": ev(2, "responded")})
    assert status_rows(client, 2) == ["responded"]
    # the seed dashboard's reconnect: a new initial with the latest state, nothing added
    feed(client, {"type": "initial", "data": [ev(1), ev(2, "responded")]})
    assert status_rows(client, 2) == ["responded"] and len(client.frame) == 2
    assert client.frame.updates >= 1


def test_wsnotebook_update_moves_the_resume_position(client: Client) -> None:
    feed(client, {"type": "initial", "data": [ev(1), ev(2, "pending")], "seq": 2, "epoch": "A"})
    feed(client, {"type": "event", "data": ev(3)})
    feed(client, {"type": "event", "data": ev(2, "responded", update_seq=4)})
    assert status_rows(client, 2) == ["responded"]
    assert client._session.query()["since"] == "4"
    assert "update_seq" not in client.frame.df.columns
    # a replay after a reconnect from 3: the update again, then new events
    feed(
        client,
        {"type": "initial", "data": [ev(2, "responded", update_seq=4)], "seq": 4, "epoch": "A"},
    )
    feed(client, {"type": "batch", "data": [ev(5), ev(2, "pending")]})  # a stale version
    assert status_rows(client, 2) == ["responded"]
    assert sorted(client.frame.df["id"]) == [1, 2, 3, 5]


def test_reset_gap_uses_stream_positions() -> None:
    state = ResumeState()
    state.epoch, state.last_id = "A", 10
    msg = parse_server_message(
        orjson.dumps(
            {
                "type": "initial",
                "data": [ev(3, "responded", update_seq=20), ev(21)],
                "seq": 21,
                "epoch": "A",
                "reset": True,
            }
        )
    )
    (gap,) = state.on_initial(msg)
    assert (gap.from_id, gap.to_id) == (11, 19)
    assert state.last_id == 21
