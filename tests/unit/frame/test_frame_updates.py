"""The frame's update rule: an event of a known id carrying ``update_seq`` or
``humanInTheLoopStatus`` updates that row (one row, new status) instead of being dropped as a
duplicate; stale versions never take a question back to pending; bounded."""

from __future__ import annotations

from typing import Any

from wsnotebook import EventFrame
from wsnotebook.frame import questions as qmod


def ev(i: int, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": i,
        "source_app": "a",
        "session_id": "s",
        "hook_event_type": "H",
        "payload": {"n": i},
        "timestamp": 1_000.0 + i,
        "server_received": 1_000.0 + i,
    }
    base.update(fields)
    return base


HITL = {"question": "ok?", "type": "permission", "responseWebSocketUrl": "ws://localhost:1"}


def asked(i: int, status: str = "pending", **more: Any) -> dict[str, Any]:
    fields = {"humanInTheLoop": HITL, "humanInTheLoopStatus": {"status": status}, **more}
    return ev(i, **fields)


def test_update_replaces_status_in_one_row() -> None:
    f = EventFrame()
    f.extend([ev(1), asked(2), ev(3)])
    assert f.append(asked(2, "responded", update_seq=4)) is False  # not a new row
    assert f.updates == 1 and f.duplicates == 0
    df = f.df
    assert list(df["id"]) == [1, 2, 3]
    assert df.loc[df["id"] == 2, "humanInTheLoopStatus"].iloc[0] == {"status": "responded"}
    assert "update_seq" not in df.columns
    assert df.loc[df["id"] == 2, "payload"].iloc[0] == {"n": 2}  # own columns: first version
    assert f.tail(1)["id"].tolist() == [3]
    assert f.filter(source_app="a")["humanInTheLoopStatus"].tolist()[1] == {"status": "responded"}


def test_question_and_update_in_one_batch() -> None:
    f = EventFrame()
    f.extend([asked(5), ev(6), asked(5, "responded", update_seq=7)])
    assert len(f) == 2 and f.updates == 1
    assert f.questions()[0]["humanInTheLoopStatus"] == {"status": "responded"}
    assert f.pending(now_ms=0).empty


def test_stale_version_and_plain_duplicates() -> None:
    f = EventFrame()
    f.append(asked(1))
    f.append(asked(1, "responded"))
    f.append(asked(1, "pending"))  # a stale replay: never back to pending
    f.append(ev(1))  # no update mark: a duplicate as before
    assert f.updates == 1 and f.duplicates == 2
    assert f.df["humanInTheLoopStatus"].iloc[0] == {"status": "responded"}


def test_pending_table() -> None:
    f = EventFrame()
    f.extend([asked(1), asked(2, humanInTheLoop={**HITL, "type": "choice", "choices": ["x"]})])
    table = f.pending(now_ms=1_002.0)
    assert list(table["id"]) == [1, 2]
    assert list(table["type"]) == ["permission", "choice"]
    assert table["choices"].iloc[1] == ["x"]
    assert str(table["expires_at"].dtype) == "datetime64[ns, UTC]"
    assert f.pending(now_ms=1_000.0 + 301_000).empty  # past the default 300 s timeout


def test_bounds(monkeypatch: Any) -> None:
    monkeypatch.setattr(qmod, "MAX_QUESTIONS", 2)
    monkeypatch.setattr(qmod, "MAX_UPDATED_ROWS", 1)
    f = EventFrame()
    f.extend([asked(1), asked(2), asked(3)])
    assert [q["id"] for q in f.questions()] == [2, 3]
    f.append(asked(2, "responded"))
    f.append(asked(3, "responded"))
    df = f.df
    # only the newest row's update is kept: row 2 shows its first version again
    assert df["humanInTheLoopStatus"].tolist()[1:] == [
        {"status": "pending"},
        {"status": "responded"},
    ]
