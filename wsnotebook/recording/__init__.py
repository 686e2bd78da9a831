"""Record a stream to disk and replay it into a server.

This ``__init__`` is the subpackage's interface.  Modules: ``fileformat`` (the crash-safe
segment writer, the reader that tolerates a torn tail, :func:`compact`), ``flush`` (when a
segment is written: :class:`FlushPolicy`, sans-I/O), ``recorder`` (the reconnecting recorder, an
asyncio shell), ``schedule`` (when each event is sent again: :class:`ReplaySchedule`, sans-I/O),
``replayer`` (the replay shell and its handle), ``data`` (the shipped session).

``python -m wsnotebook record URL --out FILE.parquet`` and ``python -m wsnotebook replay FILE
--to URL --speed 10`` are the command-line faces; ``wsn.replay(...)`` the notebook one.
"""

from __future__ import annotations

from .data import SESSION_FILE, session_path
from .fileformat import RECORDING_FORMAT, Recording, compact, probe, read_recording
from .flush import FlushOptions, FlushPolicy
from .recorder import Recorder, record, running_recorders, stop_recorders, wait_recorded
from .replayer import Replay, events_url, recording_events, replay, running_replays
from .schedule import MAX_SPEED, ReplaySchedule, parse_speed


def running() -> list[Recorder | Replay]:
    """Every recorder and replay of this process still running (``%ws stop all`` uses it)."""
    return [*running_recorders(), *running_replays()]


def stop_all(timeout: float = 10.0) -> int:
    """Stop every recorder (with its final flush) and every replay; returns how many ran."""
    replays = running_replays()
    for r in replays:
        r.stop(timeout)
    return stop_recorders(timeout) + len(replays)


__all__ = [
    "MAX_SPEED",
    "RECORDING_FORMAT",
    "SESSION_FILE",
    "FlushOptions",
    "FlushPolicy",
    "Recorder",
    "Recording",
    "Replay",
    "ReplaySchedule",
    "compact",
    "events_url",
    "parse_speed",
    "probe",
    "read_recording",
    "record",
    "recording_events",
    "replay",
    "running",
    "running_recorders",
    "running_replays",
    "session_path",
    "stop_all",
    "stop_recorders",
    "wait_recorded",
]
