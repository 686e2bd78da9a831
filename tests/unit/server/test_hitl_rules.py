"""The rules of answering a question (pure): delivery URL policy, answer checks, pending
marking, the hitl_hosts option, the question model's deadline and state order."""

from __future__ import annotations

import pytest

from wsnotebook.errors import AnswerError, ConfigError
from wsnotebook.events.hitl import deadline_ms, is_pending, newer_state, status_of, timeout_s
from wsnotebook.server.hitl_rules import (
    check_answer,
    delivery_refusal,
    normalise_hitl_hosts,
    responded,
    timed_out,
    with_pending,
)
from wsnotebook.server.options import ServerOptions


@pytest.mark.parametrize(
    "url",
    ["ws://localhost:5000", "ws://127.0.0.1:1/x", "wss://127.9.9.9", "ws://[::1]:8000/"],
)
def test_loopback_urls_are_allowed(url: str) -> None:
    assert delivery_refusal(url, ()) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ws://example.com:1", "not loopback"),
        ("ws://10.0.0.1:1", "not loopback"),
        ("http://127.0.0.1:1", "ws://"),
        ("ws://127.0.0.1:99999", "malformed"),
        ("ws://", "no host"),
        (None, "no responseWebSocketUrl"),
        (42, "no responseWebSocketUrl"),
    ],
)
def test_other_urls_are_refused(url: object, why: str) -> None:
    reason = delivery_refusal(url, ())
    assert reason is not None and why in reason


def test_allow_list() -> None:
    assert delivery_refusal("ws://agent.lan:9", ("agent.lan",)) is None
    assert delivery_refusal("ws://other.lan:9", ("agent.lan",)) is not None
    assert delivery_refusal("wss://anything:9", ("*",)) is None
    assert normalise_hitl_hosts(["B.lan", "a.lan", "a.lan", "[::2]"]) == ("::2", "a.lan", "b.lan")
    assert normalise_hitl_hosts(None) == ()
    for bad in ("a.lan", [""], [1], ["x" * 300], [f"h{i}" for i in range(300)]):
        with pytest.raises(ConfigError, match="hitl_hosts"):
            normalise_hitl_hosts(bad)  # type: ignore[arg-type]
    opts = ServerOptions.validate(hitl_hosts=["Agent.LAN"])
    assert opts.hitl_hosts == ("agent.lan",)
    assert ServerOptions.validate().hitl_hosts is None
    with pytest.raises(ConfigError):
        ServerOptions.validate(hitl_hosts="agent.lan")


def q(kind: str, **more: object) -> dict[str, object]:
    return {"question": "?", "type": kind, "responseWebSocketUrl": "ws://localhost:1", **more}


@pytest.mark.parametrize(
    ("question", "body", "message"),
    [
        (q("permission"), [], "JSON object"),
        (q("permission"), {"permission": "yes"}, "true or false"),
        (q("permission"), {"response": "yes"}, "answered with 'permission'"),
        (q("question"), {"permission": True}, "answered with 'response'"),
        (q("question"), {"response": 5}, "must be a string"),
        (q("choice", choices=["a"]), {"choice": "b"}, "not one of"),
        (q("other"), {}, "needs response, permission or choice"),
        (q("question"), {"response": "x", "hookEvent": 3}, "hookEvent"),
        (q("question"), {"response": "x" * 100_001}, "at most"),
    ],
)
def test_bad_answers(question: dict[str, object], body: object, message: str) -> None:
    with pytest.raises(AnswerError, match=message) as info:
        check_answer(question, body, 7)
    assert info.value.status == 400


def test_good_answers_are_kept_as_sent() -> None:
    body = {"choice": "a", "hookEvent": {"id": 1}, "respondedBy": "me", "extra": 1}
    assert check_answer(q("choice", choices=["a"]), body, 1) is body
    assert check_answer(q("other"), {"response": "x"}, 1) == {"response": "x"}


def test_with_pending_marks_only_questions_without_status() -> None:
    plain = {"source_app": "a"}
    asked = {"humanInTheLoop": q("permission")}
    answered = {"humanInTheLoop": q("permission"), "humanInTheLoopStatus": {"status": "responded"}}
    events = [plain, asked, answered]
    assert with_pending([plain]) == [plain]
    out = with_pending(events)
    assert out[0] is plain and out[2] is answered
    assert out[1]["humanInTheLoopStatus"] == {"status": "pending"}
    assert "humanInTheLoopStatus" not in asked  # the caller's dict is not changed


def test_question_model() -> None:
    event = {"humanInTheLoop": q("permission", timeout=2), "server_received": 1000.0, "id": 1}
    assert status_of(event) == "pending" and status_of({"x": 1}) is None
    assert deadline_ms(event) == 3000.0
    assert is_pending(event, 2999) and not is_pending(event, 3000)
    assert timeout_s({"timeout": -1}) == 300 and timeout_s({"timeout": 10**9}) == 7 * 86400
    assert timeout_s({"timeout": True}) == 300 and timeout_s({"timeout": 0.1}) == 1
    assert deadline_ms({"humanInTheLoop": {}}) is None
    done = responded({**event, "update_seq": 9}, {"permission": True}, 5)
    assert "update_seq" not in done and status_of(done) == "responded"
    assert not newer_state(done, event) and newer_state(event, done)
    assert status_of(timed_out(event, 5)) == "timeout"
