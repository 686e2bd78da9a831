"""Human-in-the-loop on a real server: a fake agent (a WebSocket server on 127.0.0.1, as the
seed's hook utility) posts a question, the notebook API or HTTP answers, the agent gets exactly
the seed's response JSON, the stream carries the pending then the responded event with one id.
Both stores; SQLite across a restart; every documented refusal."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from _helpers import FakeAgent, StreamReader, hitl_event

from wsnotebook.errors import AnswerError
from wsnotebook.server import Server


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_notebook_answer_reaches_agent_and_stream(
    kind: str, tmp_path: Any, server_factory: Callable[..., Server], agent: FakeAgent, http_request
) -> None:
    store = "memory" if kind == "memory" else f"sqlite:///{tmp_path / 'hitl.db'}"
    srv = server_factory(store=store)
    reader = StreamReader(srv.url)
    try:
        reader.wait(lambda evs: True)
        body = json.dumps(hitl_event(agent.url)).encode()
        res = http_request(
            "POST", srv.http_url + "/events", body, {"Content-Type": "application/json"}
        )
        assert res.status == 200
        asked = res.json()
        assert asked["humanInTheLoopStatus"] == {"status": "pending"}
        ident = asked["id"]
        pending = srv.pending()
        assert list(pending["id"]) == [ident]
        assert pending.iloc[0]["type"] == "permission"

        updated = srv.respond(ident, permission=True)
        status = updated["humanInTheLoopStatus"]
        assert updated["id"] == ident
        assert status["status"] == "responded"
        (got,) = agent.wait(1)
        # exactly the seed's response JSON: the body, then hookEvent (the pending event as
        # stored), then respondedAt
        assert list(got) == ["permission", "respondedBy", "hookEvent", "respondedAt"]
        assert got["permission"] is True and got["respondedBy"] == "notebook"
        assert got["hookEvent"] == asked
        assert got["respondedAt"] == status["respondedAt"] == status["response"]["respondedAt"]
        assert status["response"] == got

        reader.wait(lambda evs: len([e for e in evs if e.get("id") == ident]) == 2)
        mine = [e for e in reader.events if e.get("id") == ident]
        assert [e["humanInTheLoopStatus"]["status"] for e in mine] == ["pending", "responded"]
        assert mine[1]["update_seq"] > ident
        assert srv.pending().empty
        # GET /events/recent lists the event once, in its latest state
        recent = http_request("GET", srv.http_url + "/events/recent").json()
        assert [e["humanInTheLoopStatus"]["status"] for e in recent if e["id"] == ident] == [
            "responded"
        ]
        assert srv.metrics()["hitl"]["delivered"] == 1
    finally:
        reader.close()


def test_http_answer_seed_shape_and_refusals(
    server: Server, agent: FakeAgent, http_request, make_event
) -> None:
    post = {"Content-Type": "application/json"}
    asked = http_request(
        "POST",
        server.http_url + "/events",
        json.dumps(hitl_event(agent.url, "choice", choices=["a", "b"])).encode(),
        post,
    ).json()
    ident = asked["id"]
    url = f"{server.http_url}/events/{ident}/respond"
    # 400: bad JSON, wrong answer for the type, a choice not offered
    assert http_request("POST", url, b"{nope", post).status == 400
    res = http_request("POST", url, json.dumps({"permission": True}).encode(), post)
    assert res.status == 400 and "choice" in res.json()["error"]
    res = http_request("POST", url, json.dumps({"choice": "z"}).encode(), post)
    assert res.status == 400 and "not one of" in res.json()["error"]
    # 404: unknown id (the seed's exact body), and a non-integer id
    res = http_request("POST", f"{server.http_url}/events/999999/respond", b"{}", post)
    assert res.status == 404 and res.json() == {"error": "Event not found"}
    assert http_request("POST", f"{server.http_url}/events/abc/respond", b"{}", post).status == 404
    # the seed dashboard's own request
    body = {"choice": "b", "hookEvent": asked, "respondedBy": "user"}
    res = http_request("POST", url, json.dumps(body).encode(), post)
    assert res.status == 200, res.body
    assert res.headers["X-Wsnotebook-Delivery"] == "sent"
    assert res.json()["humanInTheLoopStatus"]["response"]["choice"] == "b"
    (got,) = agent.wait(1)
    assert list(got) == ["choice", "hookEvent", "respondedBy", "respondedAt"]
    # 409: already answered (recorded once; the agent got one message)
    res = http_request("POST", url, json.dumps(body).encode(), post)
    assert res.status == 409 and "already answered" in res.json()["error"]
    with pytest.raises(AnswerError) as info:
        server.respond(ident, choice="a")
    assert info.value.status == 409
    assert len(agent.messages) == 1
    # 409: not a question
    plain = server.publish(make_event())[0]
    res = http_request(
        "POST", f"{server.http_url}/events/{plain['id']}/respond", b'{"response":"x"}', post
    )
    assert res.status == 409 and "not a question" in res.json()["error"]


def test_timed_out_question_is_refused_and_marked(
    server: Server, agent: FakeAgent, wait_until, http_request
) -> None:
    asked = server.publish(hitl_event(agent.url, timeout=1))[0]
    assert len(server.pending()) == 1
    wait_until(lambda: server.pending().empty, timeout=20)  # its 1 s deadline passed
    with pytest.raises(AnswerError) as info:
        server.respond(asked["id"], permission=True)
    assert info.value.status == 409 and "timed out" in str(info.value)
    assert agent.messages == []
    recent = http_request("GET", server.http_url + "/events/recent").json()
    assert [e["humanInTheLoopStatus"]["status"] for e in recent] == ["timeout"]
    with pytest.raises(AnswerError) as info:
        server.respond(asked["id"], permission=True)
    assert info.value.status == 409 and "no longer pending (timeout)" in str(info.value)


def test_unreachable_agent_does_not_fail_the_answer(server: Server, http_request) -> None:
    asked = server.publish(hitl_event("ws://127.0.0.1:9/"))[0]  # nothing listens on port 9
    res = http_request(
        "POST",
        f"{server.http_url}/events/{asked['id']}/respond",
        b'{"permission": false}',
        {"Content-Type": "application/json"},
    )
    assert res.status == 200
    assert res.headers["X-Wsnotebook-Delivery"] == "failed"
    assert res.json()["humanInTheLoopStatus"]["status"] == "responded"


def test_non_loopback_agent_url_is_not_contacted(
    server_factory: Callable[..., Server], http_request
) -> None:
    srv = server_factory()
    asked = srv.publish(hitl_event("ws://example.com:8765/"))[0]
    res = http_request(
        "POST",
        f"{srv.http_url}/events/{asked['id']}/respond",
        b'{"permission": true}',
        {"Content-Type": "application/json"},
    )
    assert res.status == 200 and res.headers["X-Wsnotebook-Delivery"] == "refused"
    assert srv.metrics()["hitl"]["delivery_refused"] == 1


def test_sqlite_keeps_questions_and_answers_across_restart(
    tmp_path: Any, server_factory: Callable[..., Server], agent: FakeAgent, http_request
) -> None:
    store = f"sqlite:///{tmp_path / 'restart.db'}"
    srv = server_factory(store=store)
    first = srv.publish(hitl_event(agent.url))[0]
    second = srv.publish(hitl_event(agent.url, "question", question="Why?"))[0]
    srv.respond(first["id"], permission=False)
    port = srv.port
    srv.stop()

    srv2 = server_factory(store=store, port=port)
    pending = srv2.pending()
    assert list(pending["id"]) == [second["id"]]  # the answered one is not pending any more
    with pytest.raises(AnswerError) as info:
        srv2.respond(first["id"], permission=True)
    assert info.value.status == 409
    updated = srv2.respond(second["id"], response="because")
    assert updated["humanInTheLoopStatus"]["response"]["response"] == "because"
    msgs = agent.wait(2)
    assert msgs[0]["permission"] is False and msgs[1]["response"] == "because"
    recent = http_request("GET", srv2.http_url + "/events/recent").json()
    states = {e["id"]: e["humanInTheLoopStatus"]["status"] for e in recent}
    assert states == {first["id"]: "responded", second["id"]: "responded"}
    assert len(recent) == 2


def test_second_answer_while_the_first_is_in_flight_is_refused(
    server: Server, http_request, wait_until
) -> None:
    import socket

    # an "agent" that accepts TCP but never completes the WebSocket handshake: the first
    # answer's delivery waits (at most DELIVERY_TIMEOUT_S) while a second answer arrives
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        url = f"ws://127.0.0.1:{silent.getsockname()[1]}"
        asked = server.publish(hitl_event(url))[0]
        results: list[Any] = []
        first = threading.Thread(
            target=lambda: results.append(server.respond(asked["id"], permission=True))
        )
        first.start()
        wait_until(lambda: server.metrics()["hitl"]["answered"] == 1)
        res = http_request(
            "POST",
            f"{server.http_url}/events/{asked['id']}/respond",
            b'{"permission": false}',
            {"Content-Type": "application/json"},
        )
        assert res.status == 409 and "being answered" in res.json()["error"]
        first.join(30)
        assert results[0]["humanInTheLoopStatus"]["response"]["permission"] is True
        assert server.metrics()["hitl"]["delivery_failed"] == 1
    finally:
        silent.close()


def test_oversized_answer_and_store_without_updates(
    server_factory: Callable[..., Server], http_request
) -> None:
    from wsnotebook.store import MemoryStore, Store

    srv = server_factory(max_event_bytes=1024)
    asked = srv.publish(hitl_event("ws://127.0.0.1:9/", "question"))[0]
    url = f"{srv.http_url}/events/{asked['id']}/respond"
    big = json.dumps({"response": "x" * 2000}).encode()
    res = http_request("POST", url, big, {"Content-Type": "application/json"})
    assert res.status == 413
    # small body, but the updated event (with hookEvent and the answer) passes the limit
    res = http_request(
        "POST",
        url,
        json.dumps({"response": "y" * 900}).encode(),
        {"Content-Type": "application/json"},
    )
    assert res.status == 413 and "exceeds the limit" in res.json()["error"]

    class NoUpdates(Store):
        """A store with only the abstract interface (a new backend before it adds updates)."""

        kind = "plain"

        def __init__(self) -> None:
            self.inner = MemoryStore()

        @property
        def last_id(self) -> int:
            return self.inner.last_id

        @property
        def first_id(self) -> int | None:
            return self.inner.first_id

        def __len__(self) -> int:
            return len(self.inner)

        async def append(self, events: Any) -> Any:
            return await self.inner.append(events)

        async def recent(self, limit: int, max_bytes: int | None = None) -> Any:
            return await self.inner.recent(limit, max_bytes)

        async def since(self, after_id: int, limit: int, max_bytes: int | None = None) -> Any:
            return await self.inner.since(after_id, limit, max_bytes)

        async def filter_options(self) -> dict[str, list[str]]:
            return await self.inner.filter_options()

    plain = server_factory(store=NoUpdates())
    asked = plain.publish(hitl_event("ws://127.0.0.1:9/"))[0]
    assert asked["humanInTheLoopStatus"] == {"status": "pending"}
    with pytest.raises(AnswerError) as info:
        plain.respond(asked["id"], permission=True)
    assert info.value.status == 501
    assert plain.pending().empty  # such a store lists no questions


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_publish_nowait_questions_are_pending_and_listed(
    kind: str, tmp_path: Any, server_factory: Callable[..., Server], wait_until, make_event
) -> None:
    store = "memory" if kind == "memory" else f"sqlite:///{tmp_path / 'n.db'}"
    srv = server_factory(store=store)
    assert srv.publish_nowait([make_event(), hitl_event("ws://127.0.0.1:9/")]) == 2
    assert srv.publish_nowait(make_event()) == 1  # batches may be joined when ingested
    wait_until(lambda: len(srv.pending()) == 1)
    assert srv.pending().iloc[0]["id"] == 2
