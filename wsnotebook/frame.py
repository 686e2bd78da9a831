"""EventFrame placeholder: being written (helper A owns this file)."""

from __future__ import annotations


class EventFrame:  # pragma: no cover - replaced shortly
    def __init__(self, *, max_rows: int = 1_000_000) -> None:
        self.max_rows = max_rows
