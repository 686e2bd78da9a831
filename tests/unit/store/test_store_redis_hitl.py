"""The Redis store's HITL helpers (pure, no Redis): which appended events are questions (and
pending), the state argument of the update script, the JSON of an update (the bytes the memory
store gives it, bounded like one), and the entries the read scripts return."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from wsnotebook.errors import LimitExceeded
from wsnotebook.store.hitl import UPDATE_SLACK, update_stored
from wsnotebook.store.redis_lua import (
    APPEND_LUA,
    HITL_KEYS,
    UPDATE_LUA,
    question_marks,
    splice_update,
    stored_from_raw,
    update_pre,
    update_state,
)
from wsnotebook.store.redis_url import parse_redis_url


def question(status: str | None = "pending", **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "source_app": "a",
        "session_id": "s",
        "hook_event_type": "T",
        "humanInTheLoop": {"question": "?", "type": "question"},
        **fields,
    }
    if status is not None:
        event["humanInTheLoopStatus"] = {"status": status}
    return event


def pre(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def test_question_marks_finds_questions_and_the_pending_ones() -> None:
    plain: dict[str, Any] = {
        "source_app": "a",
        "session_id": "s",
        "hook_event_type": "T",
        "payload": {},
    }
    nested = {**plain, "payload": {"humanInTheLoop": {"question": "not top-level"}}}
    not_object = {**plain, "humanInTheLoop": "a string"}
    pres = [
        pre(plain),
        pre(question()),
        pre(nested),
        pre(question("responded")),
        pre(not_object),
        pre(question(None)),  # no status: pending
    ]
    assert question_marks(pres) == ("1 3 5", "1 5")
    assert question_marks([pre(plain)] * 3) == ("", "")
    assert question_marks([]) == ("", "")


def test_update_state() -> None:
    assert update_state(question()) == "p"
    assert update_state(question(None)) == "p"
    assert update_state(question("responded")) == "t"
    assert update_state(question("timeout")) == "t"
    assert update_state(question("error")) == "t"
    assert update_state({"source_app": "a"}) == "-"


def test_an_update_has_the_memory_stores_bytes() -> None:
    event = question("responded", id=7, payload={"n": 1})
    stored = update_stored(42, 7, event)
    assert splice_update(update_pre(7, event, None, 1), 42) == stored.encoded
    # update_seq of an earlier version is dropped; a missing id is added; id is forced
    again = {**event, "update_seq": 9}
    assert splice_update(update_pre(7, again, None, 1), 42) == stored.encoded
    no_id = {k: v for k, v in event.items() if k != "id"}
    assert orjson.loads(splice_update(update_pre(7, no_id, None, 1), 3))["id"] == 7
    wrong = orjson.loads(splice_update(update_pre(7, {**event, "id": 8}, None, 1), 3))
    assert wrong["id"] == 7 and wrong["update_seq"] == 3


def test_an_update_is_bounded_like_the_other_stores() -> None:
    event = question("responded", id=1, payload={"blob": "x" * 1000})
    size = len(update_stored(99, 1, event).encoded)
    limit = size - UPDATE_SLACK
    assert update_pre(1, event, limit, 99)  # exactly at the bound
    with pytest.raises(LimitExceeded) as info:
        update_pre(1, event, limit - 1, 99)
    assert info.value.bound == limit - 1 + UPDATE_SLACK
    assert "update of event 1" in str(info.value)


def test_stored_from_raw_reads_script_entries() -> None:
    raw = [[b"5-0", [b"j", b'{"id":5}']], [b"12-0", [b"j", b'{"id":5,"update_seq":12}']]]
    got = stored_from_raw(raw)  # type: ignore[arg-type]
    assert [s.id for s in got] == [5, 12]
    assert got[1].event == {"id": 5, "update_seq": 12}
    assert stored_from_raw([]) == []


def test_the_scripts_address_every_key() -> None:
    target = parse_redis_url("redis://h/0?stream=ev")
    assert [target.key(k) for k in HITL_KEYS] == [
        "{ev}:questions",
        "{ev}:pending",
        "{ev}:latest",
        "{ev}:superseded",
    ]
    for script in (APPEND_LUA, UPDATE_LUA):
        assert "for k = 3, 9 do" in script  # every sorted set is trimmed with the stream
