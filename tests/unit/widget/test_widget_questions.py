"""The monitor's question panel (no sockets): pending questions listed with their type, an answer
goes through the answerer in a background thread, an answered question leaves the list, a refusal
is a message, a frame-only monitor is read-only."""

from __future__ import annotations

import threading
import time
from typing import Any

from _monitor_helpers import make_events, new_monitor, wait_until

from wsnotebook.frame import EventFrame
from wsnotebook.widget.questions import MAX_SHOWN, QuestionPanel


def asked(i: int, kind: str, **hitl: Any) -> dict[str, Any]:
    (ev,) = make_events(1, start=i)
    ev["server_received"] = time.time() * 1000
    ev["humanInTheLoop"] = {"question": f"Q{i}?", "type": kind, "responseWebSocketUrl": "ws://x"}
    ev["humanInTheLoop"].update(hitl)
    ev["humanInTheLoopStatus"] = {"status": "pending"}
    return ev


class FakeAnswerer:
    def __init__(self, frame: EventFrame) -> None:
        self.frame = frame
        self.calls: list[tuple[int, dict[str, Any]]] = []
        self.done = threading.Event()

    def respond(self, event_id: int, **answer: Any) -> dict[str, Any]:
        self.calls.append((event_id, answer))
        if event_id == 99:
            raise ValueError("event 99 was already answered")
        update = asked(event_id, "permission")
        update["humanInTheLoopStatus"] = {"status": "responded"}
        self.frame.append(update)
        self.done.set()
        return update


def test_pending_questions_are_listed_and_answered() -> None:
    frame = EventFrame()
    frame.extend(make_events(2))
    panel = QuestionPanel(FakeAnswerer(frame))
    assert panel.refresh(frame, 0.0) == []
    frame.extend([asked(3, "permission"), asked(4, "choice", choices=["a", "b"]), asked(5, "x")])
    shown = panel.refresh(frame, 1.0)
    assert shown is not None
    assert [(q["id"], q["type"]) for q in shown] == [
        (3, "permission"),
        (4, "choice"),
        (5, "question"),
    ]
    assert shown[1]["choices"] == ["a", "b"] and not shown[0]["read_only"]
    assert panel.refresh(frame, 1.1) is None  # nothing changed: nothing to send
    notes: list[str] = []
    assert panel.answer(3, notes.append, permission=True)
    assert wait_until(lambda: notes == ["answered #3 (responded)"])
    shown = panel.refresh(frame, 2.0)
    assert shown is not None and [q["id"] for q in shown] == [4, 5]


def test_refusals_and_empty_text_are_messages_not_exceptions() -> None:
    frame = EventFrame()
    panel = QuestionPanel(FakeAnswerer(frame))
    notes: list[str] = []
    panel.answer(99, notes.append, permission=True)
    assert wait_until(lambda: notes == ["#99: event 99 was already answered"])
    assert not panel.answer(5, notes.append, response="")
    assert notes[-1] == "#5: type an answer first"
    assert not panel.answer("x", notes.append, permission=True)


def test_many_questions_are_capped_and_a_frame_monitor_is_read_only(
    wire: list[Any], clock: Any
) -> None:
    frame = EventFrame()
    frame.extend([asked(i, "permission") for i in range(1, MAX_SHOWN + 4)])
    mon = new_monitor(frame, clock)
    mon.refresh()
    assert len(mon.questions) == MAX_SHOWN and mon.status["pending"] == MAX_SHOWN + 3
    assert all(q["read_only"] for q in mon.questions)
