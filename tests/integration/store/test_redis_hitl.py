"""Human-in-the-loop on the Redis store against a real ``redis-server`` (tests/_redis.py).

Two servers on one stream: a question posted to one is pending on both, answered through the
other; the fake agent (tests/_helpers.py ``FakeAgent``) gets the seed's response JSON once; every
client of both servers sees the pending then the responded event under one id; a second answer
is a 409 on either server; a client resuming after the answer gets the update; the answered state
survives a Redis restart (AOF).  At the store level: the check-and-set that records an answer
once when two stores race, refusals that use no id, ``recent()`` leaving superseded versions out
(but not for an update made after its read), and the HITL keys trimmed with the stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from _helpers import FakeAgent, StreamReader, hitl_event

from wsnotebook.client import connect
from wsnotebook.errors import AnswerError
from wsnotebook.server import Server
from wsnotebook.server.hitl_rules import responded, timed_out, with_pending
from wsnotebook.store.redis import RedisStore
from wsnotebook.store.redis_local import LocalRedis

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0
JSON_POST = {"Content-Type": "application/json"}


def test_two_servers_one_answer(
    redis_server: LocalRedis,
    server_factory: Callable[..., Server],
    http_request: Callable[..., Any],
    wait_until: Callable[..., Any],
    agent: FakeAgent,
) -> None:
    url = redis_server.store_url("h1")
    a = server_factory(store=url)
    b = server_factory(store=url)
    readers = [StreamReader(a.url), StreamReader(b.url)]
    client = connect(a.url, backoff_base=0.01, backoff_cap=0.2, open_timeout=5.0)
    try:
        for r in readers:
            r.wait(lambda evs: True)  # the initial message arrived: the client is registered
        res = http_request(
            "POST", a.http_url + "/events", json.dumps(hitl_event(agent.url)).encode(), JSON_POST
        )
        assert res.status == 200, res.body
        asked = res.json()
        ident = asked["id"]
        assert asked["humanInTheLoopStatus"] == {"status": "pending"}
        for srv in (a, b):  # pending on both servers
            assert list(srv.pending()["id"]) == [ident]
        wait_until(lambda: list(client.pending()["id"]) == [ident], timeout=WAIT)

        # answered through B
        body = {"permission": True, "respondedBy": "bob"}
        res = http_request(
            "POST", f"{b.http_url}/events/{ident}/respond", json.dumps(body).encode(), JSON_POST
        )
        assert res.status == 200, res.body
        assert res.headers["X-Wsnotebook-Delivery"] == "sent"
        updated = res.json()
        status = updated["humanInTheLoopStatus"]
        assert updated["id"] == ident and status["status"] == "responded"
        assert updated["update_seq"] == ident + 1
        (got,) = agent.wait(1)  # the seed's response JSON
        assert list(got) == ["permission", "respondedBy", "hookEvent", "respondedAt"]
        assert got["permission"] is True and got["respondedBy"] == "bob"
        assert got["hookEvent"] == asked and status["response"] == got

        # every client of both servers: the pending, then the responded event, one id
        for r in readers:
            r.wait(lambda evs: len([e for e in evs if e.get("id") == ident]) == 2)
            assert r.versions(ident) == ["pending", "responded"]
            assert r.events[-1] == updated
        # a wsnotebook client of A: one row, updated in place, no longer pending
        wait_until(lambda: client.frame.updates == 1, timeout=WAIT)
        assert len(client.frame) == 1 and client.pending().empty

        # a second answer, on A or on B: 409, nothing stored, the agent got one message
        for srv in (a, b):
            res = http_request(
                "POST",
                f"{srv.http_url}/events/{ident}/respond",
                b'{"permission": false}',
                JSON_POST,
            )
            assert res.status == 409 and "already answered" in res.json()["error"]
        with pytest.raises(AnswerError) as info:
            a.respond(ident, permission=False)
        assert info.value.status == 409
        assert len(agent.messages) == 1
        for srv in (a, b):
            assert srv.pending().empty
            recent = http_request("GET", srv.http_url + "/events/recent").json()
            assert recent == [updated]  # once, in its newest version, on every server
        assert a.metrics()["hitl"]["refused"] == 2 and b.metrics()["hitl"]["answered"] == 1

        # a client that was away (it saw the question only) resumes and gets the update
        resumed = StreamReader(f"{a.url}?since={ident}&epoch={a.epoch}")
        try:
            resumed.wait(lambda evs: len(evs) >= 1)
            assert resumed.events == [updated]
        finally:
            resumed.close()
        # a fresh client's initial snapshot lists the event once, answered
        fresh = StreamReader(b.url)
        try:
            fresh.wait(lambda evs: len(evs) >= 1)
            assert fresh.events == [updated]
        finally:
            fresh.close()

        # Redis restarts (AOF): the answered state, the ids and the refusals survive
        redis_server.restart()
        sa: Any = a.store
        sb: Any = b.store
        wait_until(lambda: sa.connected and sb.connected, timeout=WAIT)
        for srv in (a, b):
            assert srv.pending().empty
            with pytest.raises(AnswerError) as info:
                srv.respond(ident, permission=True)
            assert info.value.status == 409 and "already answered" in str(info.value)
            recent = http_request("GET", srv.http_url + "/events/recent").json()
            assert recent == [updated]
        assert a.epoch == b.epoch and sa.epoch_changes == sb.epoch_changes == 0
        res = http_request(
            "POST", b.http_url + "/events", json.dumps(hitl_event(agent.url)).encode(), JSON_POST
        )
        assert res.json()["id"] == ident + 2  # no id was used by the refusals
        assert len(agent.messages) == 1
    finally:
        client.close()
        for r in readers:
            r.close()


def test_concurrent_answers_on_two_servers_and_redis_down(
    redis_server: LocalRedis,
    server_factory: Callable[..., Server],
    http_request: Callable[..., Any],
    wait_until: Callable[..., Any],
    agent: FakeAgent,
) -> None:
    url = redis_server.store_url("h4")
    a = server_factory(store=url)
    b = server_factory(store=url)
    asked = [a.publish(hitl_event(agent.url))[0]["id"] for _ in range(4)]
    for ident in asked:  # both servers answer every question at the same moment
        start = threading.Barrier(2, timeout=WAIT)
        codes: list[int] = []

        def answer(
            srv: Server,
            ident: int = ident,
            start: threading.Barrier = start,
            codes: list[int] = codes,
        ) -> None:
            start.wait()
            res = http_request(
                "POST",
                f"{srv.http_url}/events/{ident}/respond",
                b'{"permission": true}',
                JSON_POST,
            )
            codes.append(res.status)

        threads = [threading.Thread(target=answer, args=(srv,)) for srv in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(WAIT)
        assert sorted(codes) == [200, 409], codes
    assert len(agent.wait(len(asked))) == len(asked)  # one delivery per question
    assert a.pending().empty and b.pending().empty
    recent = http_request("GET", a.http_url + "/events/recent").json()
    assert [e["id"] for e in recent] == asked
    assert {e["humanInTheLoopStatus"]["status"] for e in recent} == {"responded"}

    # Redis down: an answer is a 503 and records nothing; back up, it is recorded
    late = b.publish(hitl_event(agent.url))[0]["id"]
    redis_server.kill()
    res = http_request(
        "POST", f"{b.http_url}/events/{late}/respond", b'{"permission": false}', JSON_POST
    )
    assert res.status == 503 and "redis store" in res.json()["error"]
    redis_server.start()
    sb: Any = b.store
    wait_until(lambda: sb.connected, timeout=WAIT)
    assert list(a.pending()["id"]) == [late]
    updated = b.respond(late, permission=False)
    assert updated["humanInTheLoopStatus"]["response"]["permission"] is False
    assert len(agent.wait(len(asked) + 1)) == len(asked) + 1


def test_a_timed_out_question_on_two_servers(
    redis_server: LocalRedis,
    server_factory: Callable[..., Server],
    http_request: Callable[..., Any],
    wait_until: Callable[..., Any],
    agent: FakeAgent,
) -> None:
    url = redis_server.store_url("h5")
    a = server_factory(store=url)
    b = server_factory(store=url)
    ident = a.publish(hitl_event(agent.url, timeout=1))[0]["id"]
    assert list(b.pending()["id"]) == [ident]
    wait_until(lambda: b.pending().empty, timeout=WAIT)  # its 1 s deadline passed
    with pytest.raises(AnswerError) as info:
        b.respond(ident, permission=True)  # stored as timeout on the stream, refused
    assert info.value.status == 409 and "timed out" in str(info.value)
    with pytest.raises(AnswerError) as info:
        a.respond(ident, permission=True)
    assert info.value.status == 409 and "no longer pending (timeout)" in str(info.value)
    for srv in (a, b):
        recent = http_request("GET", srv.http_url + "/events/recent").json()
        assert [(e["id"], e["humanInTheLoopStatus"]["status"]) for e in recent] == [
            (ident, "timeout")
        ]
    assert agent.messages == []


def question(**fields: Any) -> list[dict[str, Any]]:
    return with_pending([{**hitl_event("ws://127.0.0.1:9/"), **fields}])


async def _race(url: str) -> None:
    a, b = RedisStore(url), RedisStore(url)
    await a.open()
    await b.open()
    try:
        (asked,) = await a.append(question())
        ident = asked.id
        # both servers read it pending, both store an answer: the second is refused
        seen_a, seen_b = await a.latest(ident), await b.latest(ident)
        assert seen_a == seen_b and seen_a is not None and seen_b is not None
        first = await b.append_update(ident, responded(seen_b, {"response": "b"}, 1))
        with pytest.raises(AnswerError) as info:
            await a.append_update(ident, responded(seen_a, {"response": "a"}, 2))
        assert info.value.status == 409 and "already answered" in str(info.value)
        with pytest.raises(AnswerError):  # a late timeout is refused the same way
            await a.append_update(ident, timed_out(seen_a, 3))
        assert first.id == ident + 1 and (await a.latest(ident)) == first.event
        assert [e["humanInTheLoopStatus"]["status"] for e in await a.questions(10)] == ["responded"]
        (plain,) = await a.append([{**question()[0], "humanInTheLoop": None}])
        assert plain.id == first.id + 1  # the refusals used no id

        # a question timed out, then answered: refused, stating the state
        (late,) = await b.append(question())
        seen = await b.latest(late.id)
        assert seen is not None
        await a.append_update(late.id, timed_out(seen, 4))
        with pytest.raises(AnswerError) as info:
            await b.append_update(late.id, responded(seen, {"response": "x"}, 5))
        assert "no longer pending (timeout)" in str(info.value)

        # recent() leaves superseded versions out on every store; since() keeps them
        for store in (a, b):
            got = [(s.event["id"], s.id) for s in await store.recent(100)]
            assert got == [(ident, first.id), (plain.id, plain.id), (late.id, late.id + 1)]
        assert [s.id for s in await b.since(0, 100)] == list(range(1, late.id + 2))

        # an update made after a recent() read does not hide the version that read holds
        (q3,) = await a.append(question())
        before = await a.recent(100)
        seen = await a.latest(q3.id)
        assert seen is not None
        await b.append_update(q3.id, responded(seen, {"response": "y"}, 6))
        assert await a._visible(before) == before
        assert [s.id for s in await a.recent(100)][-1] == q3.id + 1

        # a non-question event can be updated too (no check-and-set)
        (note,) = await a.append([{"source_app": "a", "session_id": "s", "hook_event_type": "N"}])
        upd = await a.append_update(note.id, {**note.event, "extra": 1})
        upd2 = await b.append_update(note.id, {**note.event, "extra": 2})
        assert upd2.event["extra"] == 2 and (await b.latest(note.id)) == upd2.event
        assert [s.id for s in await a.recent(2)] == [upd2.id]
        assert upd.id not in [s.id for s in await a.recent(100)]
        assert await a.latest(10**9) is None and await a.latest(0) is None
    finally:
        await a.close()
        await b.close()


def test_store_check_and_set_and_versions(redis_server: LocalRedis) -> None:
    asyncio.run(_race(redis_server.store_url("h2")))


async def _retention(redis_server: LocalRedis) -> None:
    url = redis_server.store_url("h3")
    store = RedisStore(url, retain=5)
    await store.open()
    try:
        (asked,) = await store.append(question())
        seen = await store.latest(asked.id)
        assert seen is not None
        await store.append_update(asked.id, responded(seen, {"response": "r"}, 1))
        (q2,) = await store.append(question())
        assert len(await store.questions(10)) == 2
        filler = {"source_app": "a", "session_id": "s", "hook_event_type": "F"}
        await store.append([filler] * 10)  # both questions and the answer evicted
        assert await store.questions(10) == []
        assert await store.latest(asked.id) is None
        assert await store.latest(q2.id) is None
        with pytest.raises(AnswerError) as info:
            await store.append_update(q2.id, responded(seen, {"response": "r"}, 2))
        assert info.value.status == 404
        client = store._redis
        for suffix in ("questions", "pending", "latest", "superseded"):
            assert await client.zcard(store.target.key(suffix)) == 0, suffix
    finally:
        await store.close()


def test_hitl_keys_are_trimmed_with_the_stream(redis_server: LocalRedis) -> None:
    asyncio.run(_retention(redis_server))
