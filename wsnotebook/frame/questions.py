"""Updates of rows already in a frame, and the questions among them (human-in-the-loop).

The update rule (docs/protocol.md, "Updates"): an event whose ``id`` the frame already holds
and which carries ``update_seq`` or ``humanInTheLoopStatus`` is an **update of that row**, not
a duplicate: its top-level fields that have no column of their own (``humanInTheLoopStatus``,
``humanInTheLoop``, other extra fields) replace the row's values in every snapshot (``df``,
``snapshot``, ``tail``, ``filter``); the row's own columns (payload, stamps, ...) keep the
first version, and so does ``to_parquet`` (it writes the stored rows).  A version never takes
a question back from a final state (responded, timeout, error) to pending
(:func:`~wsnotebook.events.hitl.newer_state`): such a stale version is counted as a duplicate.
Any other event with a known id is a duplicate, as before.  An update whose id the frame does
not hold (its row was evicted, or the client joined after the original) is a new row, as any
event (its ``update_seq`` then shows as a column).

Owns :class:`RowUpdates` (the replaced fields by id, and the newest version of every question
the frame holds) and :func:`pending_table` (the ``pending()`` DataFrame).  Not thread-safe by
itself: the frame calls it under its lock.

Bounds and drop policies: at most :data:`MAX_UPDATED_ROWS` rows' replaced fields and
:data:`MAX_QUESTIONS` questions are kept (the oldest forgotten first; a forgotten update shows
the row's first version again, a forgotten question is no longer listed by ``pending()``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..events import Event
from ..events.hitl import (
    HITL_FIELD,
    STATUS_FIELD,
    UPDATE_FIELD,
    deadline_ms,
    is_question,
    newer_state,
)
from .ingest import KNOWN

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_QUESTIONS", "MAX_UPDATED_ROWS", "RowUpdates", "apply_updates", "pending_table"]

MAX_UPDATED_ROWS = 100_000
MAX_QUESTIONS = 10_000
#: Fields whose presence on a known id makes an event an update rather than a duplicate.
UPDATE_MARKS = (UPDATE_FIELD, STATUS_FIELD)


def _bounded_put(d: dict[int, Any], key: int, value: Any, bound: int) -> None:
    d.pop(key, None)
    d[key] = value
    while len(d) > bound:
        del d[next(iter(d))]


class RowUpdates:
    """Replaced fields by row id, and the newest version of each question."""

    def __init__(self) -> None:
        self.fields: dict[int, dict[str, Any]] = {}
        self.questions: dict[int, Event] = {}
        self.applied = 0

    def note_new(self, events: Iterable[Event]) -> None:
        """Rows just added: index the questions among them."""
        for event in events:
            ident = event.get("id")
            if type(ident) is int and is_question(event):
                _bounded_put(self.questions, ident, dict(event), MAX_QUESTIONS)

    def apply(self, ident: int, event: Event) -> bool:
        """Apply ``event`` as an update of row ``ident``; False when it is stale."""
        current = self.questions.get(ident)
        if current is not None and not newer_state(current, event):
            return False
        extra = {k: v for k, v in event.items() if k not in KNOWN and k != UPDATE_FIELD}
        if not extra:
            return False
        merged = {**self.fields.get(ident, {}), **extra}
        _bounded_put(self.fields, ident, merged, MAX_UPDATED_ROWS)
        if current is not None or is_question(event):
            newest = {**(current or {}), **event}
            newest.pop(UPDATE_FIELD, None)
            _bounded_put(self.questions, ident, newest, MAX_QUESTIONS)
        self.applied += 1
        return True


def apply_updates(df: pd.DataFrame, fields: dict[int, dict[str, Any]]) -> pd.DataFrame:
    """``df`` (a frame snapshot) with the replaced fields of its updated rows."""
    if not fields or df.empty:
        return df
    import numpy as np
    import pandas as pd

    ids = df["id"].to_numpy()
    positions = np.flatnonzero(np.isin(ids, np.fromiter(fields, dtype=np.int64, count=len(fields))))
    if not len(positions):
        return df
    columns: dict[str, Any] = {}
    for pos in positions.tolist():
        for key, value in fields[int(ids[pos])].items():
            col = columns.get(key)
            if col is None:
                if key in df.columns:
                    col = df[key].to_numpy(dtype=object, copy=True)
                else:
                    col = np.full(len(df), None, dtype=object)
                columns[key] = col
            col[pos] = value
    for key, col in columns.items():
        if key in df.columns:
            df[key] = pd.Series(col, index=df.index, dtype=object)
        else:
            df.insert(list(df.columns).index("server_received"), key, col)
    return df


def pending_table(events: list[Event]) -> pd.DataFrame:
    """One row per question (``events``: their newest versions): ``id`` (int64),
    ``question``, ``type``, ``choices``, ``asked_at`` / ``expires_at`` (datetime64[ns, UTC]),
    ``source_app``, ``session_id``, ``hook_event_type``, ``summary``, ``response_url``."""
    import numpy as np
    import pandas as pd

    nan = float("nan")
    asked, expires = [], []
    for event in events:
        t = event.get("server_received") or event.get("timestamp")
        asked.append(float(t) if isinstance(t, (int, float)) else nan)
        deadline = deadline_ms(event)
        expires.append(nan if deadline is None else deadline)

    def hitl(key: str) -> list[Any]:
        return [(e.get(HITL_FIELD) or {}).get(key) for e in events]

    def field(key: str) -> list[Any]:
        return [e.get(key) for e in events]

    def times(ms: list[float]) -> pd.Series:
        values = pd.to_datetime(np.array(ms, dtype=np.float64), unit="ms", utc=True)
        return pd.Series(values, dtype="datetime64[ns, UTC]")

    return pd.DataFrame(
        {
            "id": pd.Series(field("id"), dtype="int64"),
            "question": pd.Series(hitl("question"), dtype=object),
            "type": pd.Series(hitl("type"), dtype=object),
            "choices": pd.Series(hitl("choices"), dtype=object),
            "asked_at": times(asked),
            "expires_at": times(expires),
            "source_app": pd.Series(field("source_app"), dtype=object),
            "session_id": pd.Series(field("session_id"), dtype=object),
            "hook_event_type": pd.Series(field("hook_event_type"), dtype=object),
            "summary": pd.Series(field("summary"), dtype=object),
            "response_url": pd.Series(hitl("responseWebSocketUrl"), dtype=object),
        }
    )
