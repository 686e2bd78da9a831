"""Human-in-the-loop through a client: the question reaches the frame, ``client.pending()``
lists it, ``client.respond()`` answers it through the server, the fake agent gets the seed's
response JSON, and the frame holds ONE row whose status is ``responded`` (the update of a known
id is applied, not dropped as a duplicate).  Resume after a disconnect brings the latest state.
Both stores."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import pytest
from _helpers import FakeAgent, hitl_event

import wsnotebook as wsn
from wsnotebook.errors import AnswerError, ClientError
from wsnotebook.server import Server


def status_of(client: Any, ident: int) -> Any:
    df = client.frame.df
    rows = df[df["id"] == ident]
    if len(rows) != 1 or "humanInTheLoopStatus" not in df.columns:
        return None
    return rows.iloc[0]["humanInTheLoopStatus"]["status"]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_client_answers_and_frame_holds_one_updated_row(
    kind: str, tmp_path: Any, server_factory: Callable[..., Server], agent: FakeAgent, wait_until
) -> None:
    store = "memory" if kind == "memory" else f"sqlite:///{tmp_path / 'c.db'}"
    srv = server_factory(store=store, token="s3cret")
    srv.publish({"source_app": "a", "session_id": "s", "hook_event_type": "Note", "payload": {}})
    client = wsn.connect(srv.url, token="s3cret")
    try:
        asked = srv.publish(hitl_event(agent.url, "question", question="Name?"))[0]
        ident = asked["id"]
        wait_until(lambda: len(client.pending()) == 1)
        row = client.pending().iloc[0]
        assert row["id"] == ident and row["question"] == "Name?" and row["type"] == "question"

        updated = client.respond(ident, response="Ada")
        assert updated["humanInTheLoopStatus"]["status"] == "responded"
        (got,) = agent.wait(1)
        assert got["response"] == "Ada" and got["hookEvent"]["id"] == ident
        assert list(got) == ["response", "respondedBy", "hookEvent", "respondedAt"]

        wait_until(lambda: status_of(client, ident) == "responded")
        df = client.frame.df
        assert (df["id"] == ident).sum() == 1
        assert len(df) == 2
        assert client.frame.updates == 1
        assert client.pending().empty
        with pytest.raises(AnswerError) as info:
            client.respond(ident, response="again")
        assert info.value.status == 409
        with pytest.raises(AnswerError) as info:
            client.respond(999_999, response="x")
        assert info.value.status == 404 and str(info.value) == "Event not found"
    finally:
        client.close()


def test_resume_after_disconnect_brings_the_answer(
    tmp_path: Any, server_factory: Callable[..., Server], agent: FakeAgent, wait_until
) -> None:
    store = f"sqlite:///{tmp_path / 'resume.db'}"
    srv = server_factory(store=store)
    port = srv.port
    client = wsn.connect(srv.url)
    try:
        asked = srv.publish(hitl_event(agent.url))[0]
        ident = asked["id"]
        wait_until(lambda: status_of(client, ident) == "pending")
        srv.stop()
        # answered while the client is away (another server on the same database)
        other = server_factory(store=store)
        other.respond(ident, permission=True)
        other.publish({"source_app": "a", "session_id": "s", "hook_event_type": "N", "payload": {}})
        other.stop()
        server_factory(store=store, port=port)  # back where the client reconnects
        wait_until(lambda: status_of(client, ident) == "responded", timeout=30)
        wait_until(lambda: len(client.frame) == 2, timeout=30)
        df = client.frame.df
        assert (df["id"] == ident).sum() == 1
        assert client.frame.gaps.empty
        assert agent.wait(1)[0]["permission"] is True
    finally:
        client.close()


def test_unreachable_server_is_a_client_error() -> None:
    with socket.socket() as s:  # a port nobody listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        client = wsn.connect(f"ws://127.0.0.1:{port}/stream?token=abc")
        try:
            with pytest.raises(ClientError, match="cannot reach"):
                client.respond(1, permission=True, timeout=5)
            assert client.pending().empty
        finally:
            client.close()
