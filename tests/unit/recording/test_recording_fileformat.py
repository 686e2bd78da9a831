"""The recording format: segments committed atomically, a torn last segment tolerated, a torn
middle segment / a file that is not a recording / a truncated file refused with one line, gap
records kept, compact() to one file readable by every reader, the shipped session valid."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from _helpers import make_hook_event

from wsnotebook import EventFrame
from wsnotebook.errors import RecordingError, WsnError
from wsnotebook.recording import (
    compact,
    probe,
    read_recording,
    recording_events,
    session_path,
)
from wsnotebook.recording.fileformat import SegmentWriter


def write_segments(path: Path, sizes: list[int], gaps: dict[int, list[dict]] | None = None) -> None:
    writer = SegmentWriter(path, source="ws://127.0.0.1:1/stream")
    writer.create()
    i = 1
    for k, n in enumerate(sizes):
        frame = EventFrame()
        frame.extend([make_hook_event(j) for j in range(i, i + n)])
        i += n
        tmp = writer.temp_path()
        frame.to_parquet(tmp)
        writer.commit(tmp, (gaps or {}).get(k, []))


def test_segments_read_back_in_order_with_their_gaps(tmp_path: Path) -> None:
    out = tmp_path / "rec.parquet"
    gap = {"from_id": 5, "to_id": -1, "reason": "new epoch", "time": "2026-01-01T00:00:00"}
    write_segments(out, [3, 4, 2], gaps={1: [gap]})
    rec = read_recording(out)
    assert len(rec) == 9 and rec.parts == 3 and rec.torn_parts == 0
    assert rec.table.column("id").to_pylist() == list(range(1, 10))
    assert rec.gaps == [gap]
    assert rec.info["source"] == "ws://127.0.0.1:1/stream"
    # the directory is an ordinary Parquet dataset: the private files are ignored
    assert len(pd.read_parquet(out)) == 9
    assert len(EventFrame.from_parquet(out)) == 9
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_torn_last_segment_is_skipped_a_torn_middle_one_is_an_error(tmp_path: Path) -> None:
    out = tmp_path / "rec.parquet"
    write_segments(out, [3, 4, 2])
    last = out / "part-000003.parquet"
    last.write_bytes(last.read_bytes()[:100])  # a copy cut short
    (out / ".part-000004.parquet.tmp").write_bytes(b"PAR1 half written")
    rec = read_recording(out)
    assert len(rec) == 7 and rec.torn_parts == 1
    middle = out / "part-000002.parquet"
    middle.write_bytes(middle.read_bytes()[:50])
    with pytest.raises(RecordingError, match=r"part-000002\.parquet: truncated segment"):
        read_recording(out)


def test_not_a_recording_and_truncated_files_are_one_line_errors(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    empty_dir = tmp_path / "dir"
    empty_dir.mkdir()
    other = tmp_path / "other.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(other)
    shipped = session_path().read_bytes()
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(shipped[: len(shipped) // 2])
    cases = {
        text: "not a recording",
        empty_dir: "not a recording",
        other: "not a wsnotebook recording",
        cut: "truncated",
        tmp_path / "missing.parquet": "no such file",
    }
    for path, words in cases.items():
        with pytest.raises(RecordingError) as info:
            read_recording(path)
        message = str(info.value)
        assert words in message and "\n" not in message, message
        assert isinstance(info.value, WsnError)
    for path in (text, empty_dir, cut):
        with pytest.raises(RecordingError):
            probe(path)


def test_create_refuses_an_existing_path_and_an_unwritable_one(tmp_path: Path) -> None:
    taken = tmp_path / "taken.parquet"
    taken.write_text("x")
    with pytest.raises(RecordingError, match="exists"):
        SegmentWriter(taken).create()
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(RecordingError, match="cannot record"):
            SegmentWriter(locked / "rec.parquet").create()
    with pytest.raises(RecordingError, match="cannot record"):
        SegmentWriter(Path("/proc/wsnotebook-test/rec.parquet")).create()
    empty = tmp_path / "empty"
    empty.mkdir()
    SegmentWriter(empty).create()  # an empty directory is fine


def test_compact_makes_one_file_with_the_gaps(tmp_path: Path) -> None:
    src = tmp_path / "rec.parquet"
    gap = {"from_id": 2, "to_id": 3, "reason": "evicted", "time": "t"}
    write_segments(src, [2, 2], gaps={0: [gap]})
    dst = compact(src, tmp_path / "one.parquet")
    rec = read_recording(dst)
    assert len(rec) == 4 and rec.gaps == [gap] and rec.parts == 1
    assert len(EventFrame.from_parquet(dst)) == 4 and len(pd.read_parquet(dst)) == 4


def test_recording_events_are_the_events_without_server_fields(tmp_path: Path) -> None:
    src = tmp_path / "rec.parquet"
    write_segments(src, [3])
    events = recording_events(read_recording(src))
    assert len(events) == 3
    ev = events[0]
    assert {"id", "server_received", "client_received"}.isdisjoint(ev)
    assert ev["source_app"] == "app1" and ev["timestamp"] == make_hook_event(1)["timestamp"]


def test_the_shipped_session_is_a_realistic_multi_agent_recording() -> None:
    rec = read_recording(session_path())
    df = rec.df
    assert 2000 <= len(rec) <= 10_000
    assert session_path().stat().st_size < 1_000_000
    assert df["source_app"].nunique() >= 2 and df["session_id"].nunique() >= 10
    assert {"PreToolUse", "PostToolUse", "UserPromptSubmit", "Stop"} <= set(df["hook_event_type"])
    times = rec.times_ms()
    assert times == sorted(times) and times[-1] - times[0] > 5_000  # real pacing, > 5 s
