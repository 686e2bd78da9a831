"""The recording shipped with the package: a captured multi-agent session for demos without a
live source (Binder, the quickstart).

``wsnotebook/data/agents_session.parquet`` was made by ``scripts/make_session_recording.py``:
the project's own demo producer (several agents, sessions and tools, realistic hook payloads)
publishing into a server for a few seconds, captured by ``wsnotebook record`` and merged into
one file with :func:`~.fileformat.compact`.  Replay it with ``wsn.replay(to=server)`` or
``python -m wsnotebook replay --to URL`` (no file argument).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SESSION_FILE", "session_path"]

SESSION_FILE = "agents_session.parquet"


def session_path() -> Path:
    """The path of the shipped session recording (a single Parquet file)."""
    return Path(__file__).resolve().parent.parent / "data" / SESSION_FILE
