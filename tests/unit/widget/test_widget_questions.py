"""The monitor's question panel (no sockets): pending questions shown with the controls of their
type, a click answers through the answerer in a background thread, an answered question leaves
the list, a frame-only monitor is read-only."""

from __future__ import annotations

import threading
from typing import Any

from _monitor_helpers import make_events, new_monitor, wait_until

from wsnotebook.frame import EventFrame
from wsnotebook.widget.questions import MAX_SHOWN, QuestionPanel
from wsnotebook.widget.traits import set_if_changed


def asked(i: int, kind: str, **hitl: Any) -> dict[str, Any]:
    import time

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


def shown(panel: QuestionPanel) -> list[int]:
    return [r.event_id for r in panel.rows if r.box.layout.display == "flex"]  # type: ignore[misc]


def test_panel_controls_and_answers(wire: list[Any]) -> None:
    frame = EventFrame()
    frame.extend(
        [asked(1, "permission"), asked(2, "choice", choices=["a", "b"]), asked(3, "question")]
    )
    answerer = FakeAnswerer(frame)
    panel = QuestionPanel(answerer, set_if_changed)
    panel.refresh(frame, 0.0)
    assert panel.widget.layout.display == "flex"
    assert shown(panel) == [1, 2, 3]
    r1, r2, r3 = panel.rows[:3]
    assert r1.controls["permission"].layout.display == "flex"
    assert r1.controls["choice"].layout.display == "none"
    assert list(r2.choices.options) == ["a", "b"]
    assert r3.controls["question"].layout.display == "flex"
    assert "Q1?" in r1.label.value and "3" in panel.title.value

    r1.yes.click()
    assert wait_until(lambda: "answered #1" in panel.status.value)
    assert answerer.calls[0] == (1, {"permission": True})
    panel.refresh(frame, 0.5)
    assert shown(panel) == [2, 3]

    panel.rows[0].choices.value = "b"
    panel.rows[0].pick.click()
    assert wait_until(lambda: len(answerer.calls) == 2)
    assert answerer.calls[1] == (2, {"choice": "b"})
    panel.rows[1].send.click()  # empty text: not sent
    assert "type an answer first" in panel.status.value
    panel.rows[1].text.value = "hello"
    panel.rows[1].send.click()
    assert wait_until(lambda: len(answerer.calls) == 3)
    assert answerer.calls[2] == (3, {"response": "hello"})
    assert wait_until(lambda: "answered #3" in panel.status.value)
    panel.refresh(frame, 2.0)
    assert shown(panel) == []
    # the last outcome stays visible under "No questions waiting"
    assert panel.widget.layout.display == "flex" and "No questions" in panel.title.value


def test_refusals_are_shown_not_raised(wire: list[Any]) -> None:
    frame = EventFrame()
    frame.append(asked(99, "permission"))
    panel = QuestionPanel(FakeAnswerer(frame), set_if_changed)
    panel.refresh(frame, 0.0)
    panel.rows[0].no.click()
    assert wait_until(lambda: "already answered" in panel.status.value)


def test_many_questions_and_read_only_monitor(wire: list[Any], clock: Any) -> None:
    frame = EventFrame()
    frame.extend([asked(i, "permission") for i in range(1, MAX_SHOWN + 3)])
    mon = new_monitor(frame, clock)
    mon.refresh()
    panel = mon.questions
    assert shown(panel) == list(range(1, MAX_SHOWN + 1))
    assert f"showing {MAX_SHOWN}" in panel.title.value and "read-only" in panel.title.value
    assert all(box.layout.display == "none" for r in panel.rows for box in r.controls.values())
    panel.rows[0].yes.click()  # read-only: nothing happens
    assert panel.status.value == ""
