"""EventFrame: thread-safe, columnar, bounded event store with pandas snapshots."""

from __future__ import annotations

from .frame import EventFrame

__all__ = ["EventFrame"]
