"""The monitor's human-in-the-loop panel: questions waiting for an answer, with answer controls.

One row per pending question (the newest :data:`MAX_SHOWN`; a line says how many more wait):
the question, its source, and the controls of its type: **Yes / No** for a permission, a choice
list with **Answer** for a choice, a text box with **Send** for a free-text question.  A click
answers through the monitored object (``respond()`` of the Server, or of the Client when the
monitor watches one; a bare EventFrame has no one to answer through, so its rows are read-only).

Threading (see :mod:`.view`): every widget is created once, at construction, on the caller's
thread; the tick (a worker thread, monitor lock held) only sets trait values (a row is shown or
hidden, its texts and options change).  A click (possibly on a comm subshell thread) starts a
daemon thread that calls ``respond()`` (it blocks up to its timeout, never the kernel) and then
sets the panel's status line: ``answered #12 (delivered)`` or the server's refusal, e.g.
``#12: event 12 was already answered``.  Errors never escape: they end up on that line.

What is pending comes from ``frame.pending()`` (the frame applies the answer's update to its
row, so an answered question leaves the list at the next tick) and is refreshed when
``frame.version`` changes and at least once a second (deadlines pass without new events).
"""

from __future__ import annotations

import html
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("wsnotebook")

__all__ = ["MAX_SHOWN", "QuestionPanel"]

#: Pending questions shown at once (the oldest asked first).
MAX_SHOWN = 5
_REFRESH_S = 1.0

Setter = Callable[[Any, str, Any], bool]


class _Row:
    """The widgets of one question slot (hidden while unused)."""

    def __init__(self, panel: QuestionPanel, slot: int) -> None:
        import ipywidgets as w

        self.event_id: int | None = None
        self.label = w.HTML("")
        narrow = w.Layout(width="70px")
        self.yes = w.Button(description="Yes", button_style="success", layout=narrow)
        self.no = w.Button(description="No", button_style="danger", layout=w.Layout(width="70px"))
        self.choices = w.Dropdown(options=[], layout=w.Layout(width="200px"))
        self.pick = w.Button(description="Answer", layout=w.Layout(width="80px"))
        self.text = w.Text(placeholder="your answer", layout=w.Layout(width="260px"))
        self.send = w.Button(description="Send", layout=w.Layout(width="70px"))
        for button in (self.yes, self.no, self.pick, self.send):
            button.add_class("wsn-answer")
        self.yes.add_class("wsn-answer-yes")
        self.no.add_class("wsn-answer-no")
        self.pick.add_class("wsn-answer-choice")
        self.send.add_class("wsn-answer-text")
        self.yes.on_click(lambda _b: panel.answer(self, permission=True))
        self.no.on_click(lambda _b: panel.answer(self, permission=False))
        self.pick.on_click(lambda _b: panel.answer(self, choice=self.choices.value))
        self.send.on_click(lambda _b: panel.answer(self, response=self.text.value))
        self.controls = {
            "permission": w.HBox([self.yes, self.no]),
            "choice": w.HBox([self.choices, self.pick]),
            "question": w.HBox([self.text, self.send]),
        }
        self.box = w.HBox(
            [self.label, *self.controls.values()],
            layout=w.Layout(display="none", align_items="center", flex_flow="row wrap"),
        )
        self.box.add_class("wsn-question")
        self.box.add_class(f"wsn-question-{slot}")


class QuestionPanel:
    """The pending-question list of one monitor (see the module docstring).

    ``answerer``: an object with ``respond(event_id, permission=|response=|choice=)`` (a Server
    or Client), or None (read-only).  ``set_trait``: the monitor's compare-then-set."""

    def __init__(self, answerer: Any, set_trait: Setter) -> None:
        import ipywidgets as w

        self.answerer = answerer
        self._set = set_trait
        self._lock = threading.Lock()
        self._version: Any = None
        self._checked = float("-inf")
        self.answered = 0
        self.title = w.HTML("")
        self.status = w.HTML("")
        self.title.add_class("wsn-questions-title")
        self.status.add_class("wsn-questions-status")
        self.rows = [_Row(self, i) for i in range(MAX_SHOWN)]
        self.widget = w.VBox(
            [self.title, *(r.box for r in self.rows), self.status],
            layout=w.Layout(display="none"),
        )
        self.widget.add_class("wsn-questions")

    # ------------------------------------------------------------------ tick (worker thread)
    def refresh(self, frame: Any, now: float, *, force: bool = False) -> None:
        """Show the frame's pending questions (when its version changed, or once a second)."""
        version = getattr(frame, "version", None)
        if not force and version == self._version and now - self._checked < _REFRESH_S:
            return
        self._version, self._checked = version, now
        pending = getattr(frame, "pending", None)
        if pending is None:
            return
        if not frame.questions():  # the common case: no question at all, no pandas work
            self._set(self.widget.layout, "display", "flex" if self.status.value else "none")
            return
        table = pending()
        n = len(table)
        # shown while a question waits, and after an answer (its outcome stays visible)
        self._set(self.widget.layout, "display", "flex" if n or self.status.value else "none")
        more = f" (showing {MAX_SHOWN})" if n > MAX_SHOWN else ""
        who = "" if self.answerer is not None else " — read-only (monitor a Client or Server)"
        title = f"<b>Questions waiting for an answer: {n}</b>{more}{who}"
        self._set(self.title, "value", title if n else "No questions waiting")
        records = table.head(MAX_SHOWN).to_dict("records")
        for row, record in zip(self.rows, records + [None] * (MAX_SHOWN - len(records))):
            self._show(row, record)

    def _show(self, row: _Row, record: dict[str, Any] | None) -> None:
        if record is None:
            row.event_id = None
            self._set(row.box.layout, "display", "none")
            return
        kind = record.get("type") if record.get("type") in row.controls else "question"
        if row.event_id != record["id"]:
            row.text.value = ""
        row.event_id = int(record["id"])
        label = (
            f"<span class='wsn-q-id'>#{row.event_id}</span> "
            f"<span class='wsn-q-text'>{html.escape(str(record.get('question') or ''))}</span> "
            f"<span class='wsn-q-from'>({html.escape(str(record.get('source_app')))})</span>"
        )
        self._set(row.label, "value", label)
        choices = record.get("choices")
        options = [str(c) for c in choices] if isinstance(choices, list) else []
        self._set(row.choices, "options", options)
        for name, box in row.controls.items():
            shown = name == kind and self.answerer is not None
            self._set(box.layout, "display", "flex" if shown else "none")
        self._set(row.box.layout, "display", "flex")

    # ------------------------------------------------------------------ clicks (any thread)
    def answer(self, row: _Row, **answer: Any) -> None:
        """Answer the row's question in a daemon thread (never on the comm thread)."""
        event_id = row.event_id
        if event_id is None or self.answerer is None:
            return
        if "response" in answer and not answer["response"]:
            self.status.value = f"#{event_id}: type an answer first"
            return
        threading.Thread(
            target=self._respond, args=(event_id, answer), name="wsnotebook-answer", daemon=True
        ).start()

    def _respond(self, event_id: int, answer: dict[str, Any]) -> None:
        try:
            event = self.answerer.respond(event_id, **answer)
        except Exception as exc:  # shown, never raised: this is a background thread
            message = f"#{event_id}: {exc}"
        else:
            with self._lock:
                self.answered += 1
            status = (event.get("humanInTheLoopStatus") or {}).get("status", "?")
            message = f"answered #{event_id} ({status})"
        try:
            self.status.value = f"<span class='wsn-q-result'>{html.escape(message)}</span>"
            self._version = None  # refresh the list at the next tick
        except Exception:
            log.debug("wsnotebook monitor: cannot show the answer's outcome", exc_info=True)
