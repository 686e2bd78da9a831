"""What the recorder writes besides events: the client's gap records (events the source had
already evicted), its own overflow (a burst larger than ``buffer_rows`` before a flush), and a
fatal refusal that ends the recording with a one-line error."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from _helpers import posted_events

from wsnotebook.cli import EXIT_USAGE, main
from wsnotebook.errors import AuthError
from wsnotebook.recording import FlushOptions, Recorder, read_recording, record, wait_recorded
from wsnotebook.server import Server

pytestmark = pytest.mark.timeout(60)

FAST = {"backoff_base": 0.005, "backoff_cap": 0.05, "open_timeout": 5.0}


def test_events_evicted_at_the_source_are_a_gap_in_the_recording(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    source = server_factory(retain=100)
    source.publish(posted_events(500))  # ids 1..500, the source keeps 401..500
    out = tmp_path / "late.parquet"
    rec = record(source.url, out, since=0, flush_interval=0.05, **FAST)
    wait_recorded(rec, 100, timeout=30)
    rec.stop()
    got = read_recording(out)
    assert got.table.column("id").to_pylist() == list(range(401, 501))
    assert [(g["from_id"], g["to_id"]) for g in got.gaps] == [(1, 400)]
    assert "evicted" in got.gaps[0]["reason"]
    assert rec.stats()["gaps"] == 1


def test_a_burst_beyond_buffer_rows_is_recorded_as_an_overflow_gap(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    source = server_factory()
    source.publish(posted_events(1000))
    out = tmp_path / "burst.parquet"
    flush = FlushOptions(interval=0.05, rows=10, buffer_rows=10)
    rec = Recorder(source.url, out, flush=flush, since=0, batch=1000, **FAST).start()
    try:
        deadline = time.monotonic() + 30
        while not rec.gaps_written:
            assert time.monotonic() < deadline and rec.running, rec.stats()
            time.sleep(0.01)
    finally:
        rec.stop()
    got = read_recording(out)
    overflow = [g for g in got.gaps if g["reason"].startswith("recorder overflow")]
    assert overflow and "990 events" in overflow[0]["reason"]
    assert len(got) == 10  # the newest 10 of the burst, and the loss is on record


def test_a_refused_recorder_ends_with_one_line(
    tmp_path: Path, server_factory: Callable[..., Server], capsys: pytest.CaptureFixture[str]
) -> None:
    source = server_factory(token="s3cret")
    rec = record(source.url, tmp_path / "refused.parquet", **FAST)
    assert rec.wait(30)
    assert isinstance(rec.error, AuthError)
    code = main(["record", source.url, "--out", str(tmp_path / "cli.parquet"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == EXIT_USAGE and len(err.splitlines()) == 1
    assert err.startswith("wsnotebook record: ") and "s3cret" not in err
