"""The monitor's human-in-the-loop panel: questions waiting for an answer, and answering them.

Pure of widgets: :meth:`QuestionPanel.refresh` returns the list the browser shows (one dict per
pending question, the oldest asked first, at most :data:`MAX_SHOWN`: ``id``, ``type``
(``permission`` -> Yes / No, ``choice`` -> a choice list, ``question`` -> free text),
``question``, ``choices``, ``source_app``) or ``None`` when it did not change;
:meth:`QuestionPanel.answer` answers through the monitored object (``respond()`` of the Server,
or of the Client; a bare EventFrame has no one to answer through: read-only) in a daemon thread
(it blocks up to its timeout, never the kernel nor the comm thread) and reports the outcome
through a callback: ``answered #12 (delivered)`` or the server's refusal, e.g.
``#12: event 12 was already answered``.  Errors never escape: they end up in that text.

What is pending comes from ``frame.pending()`` (the frame applies the answer's update to its
row, so an answered question leaves the list at the next tick) and is refreshed when
``frame.version`` changes and at least once a second (deadlines pass without new events).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("wsnotebook")

__all__ = ["MAX_SHOWN", "QuestionPanel"]

#: Pending questions shown at once (the oldest asked first).
MAX_SHOWN = 5
_REFRESH_S = 1.0
_KINDS = ("permission", "choice", "question")


class QuestionPanel:
    """The pending-question list of one monitor (see the module docstring)."""

    def __init__(self, answerer: Any) -> None:
        self.answerer = answerer
        self._version: Any = None
        self._checked = float("-inf")
        self._shown: list[dict[str, Any]] | None = None
        self.answered = 0
        self.pending = 0

    def refresh(
        self, frame: Any, now: float, *, force: bool = False
    ) -> list[dict[str, Any]] | None:
        """The questions to show, or ``None`` when nothing changed since the last call."""
        version = getattr(frame, "version", None)
        if not force and version == self._version and now - self._checked < _REFRESH_S:
            return None
        self._version, self._checked = version, now
        shown: list[dict[str, Any]] = []
        if frame is not None and getattr(frame, "pending", None) is not None and frame.questions():
            table = frame.pending()
            self.pending = len(table)
            for record in table.head(MAX_SHOWN).to_dict("records"):
                kind = record.get("type") if record.get("type") in _KINDS else "question"
                choices = record.get("choices")
                shown.append(
                    {
                        "id": int(record["id"]),
                        "type": kind,
                        "question": str(record.get("question") or ""),
                        "choices": [str(c) for c in choices] if isinstance(choices, list) else [],
                        "source_app": str(record.get("source_app") or ""),
                        "read_only": self.answerer is None,
                    }
                )
        else:
            self.pending = 0
        if shown == self._shown:
            return None
        self._shown = shown
        return shown

    def invalidate(self) -> None:
        """Recompute the list at the next :meth:`refresh`."""
        self._version, self._shown = None, None

    def answer(self, event_id: Any, done: Callable[[str], Any], **answer: Any) -> bool:
        """Answer question ``event_id`` in a daemon thread; ``done(text)`` gets the outcome.
        False (and ``done`` called at once) when there is nothing to answer with."""
        if self.answerer is None:
            done("read-only: monitor a Client or Server to answer")
            return False
        if isinstance(event_id, bool) or not isinstance(event_id, (int, float)):
            done(f"not a question id: {event_id!r}")
            return False
        event_id = int(event_id)
        if "response" in answer and not answer["response"]:
            done(f"#{event_id}: type an answer first")
            return False
        threading.Thread(
            target=self._respond,
            args=(event_id, answer, done),
            name="wsnotebook-answer",
            daemon=True,
        ).start()
        return True

    def _respond(self, event_id: int, answer: dict[str, Any], done: Callable[[str], Any]) -> None:
        try:
            event = self.answerer.respond(event_id, **answer)
        except Exception as exc:  # shown, never raised: this is a background thread
            message = f"#{event_id}: {exc}"
        else:
            self.answered += 1
            status = (event.get("humanInTheLoopStatus") or {}).get("status", "?")
            message = f"answered #{event_id} ({status})"
        self.invalidate()
        try:
            done(message)
        except Exception:
            log.debug("wsnotebook monitor: cannot show the answer's outcome", exc_info=True)
