"""Round trip (issue 24): record 10,000 events while the source restarts once, replay them at
10x into a fresh server, and the replayed frame equals the recorded one (ids and the
server/client stamps aside).

Timing is not asserted (a shared 2-core machine): the replay's *schedule* is checked to be the
recorded span divided by 10 (the sans-I/O scheduler, unit-tested with an injected clock in
tests/unit/recording/test_replay_schedule.py), and the measured wall-clock ratio is printed
and written to ``artifacts/replay_timing.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from wsnotebook.client import connect
from wsnotebook.demo import start_demo
from wsnotebook.recording import read_recording, record, replay, wait_recorded
from wsnotebook.server import Server

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[3]
HALF = 5000
RATE = 1000.0
STAMPS = ["id", "server_received", "client_received", "latency_ms", "ingest_ms", "transit_ms"]
CATS = ["source_app", "session_id", "hook_event_type", "model_name"]
FAST = {"backoff_base": 0.005, "backoff_cap": 0.05, "open_timeout": 5.0}


def comparable(df: pd.DataFrame) -> pd.DataFrame:
    out = df.drop(columns=[c for c in STAMPS if c in df.columns]).reset_index(drop=True)
    return out.astype({c: object for c in CATS if c in out.columns})


def test_record_across_a_restart_then_replay_at_10x(
    tmp_path: Path, server_factory: Callable[..., Server], wait_until: Callable[..., Any]
) -> None:
    db = tmp_path / "source.db"
    source = server_factory(store=f"sqlite:///{db}")
    port = source.port
    out = tmp_path / "session.parquet"
    recorder = record(source.url, out, flush_interval=0.2, since=0, **FAST)
    start_demo(source, rate=RATE, batch=10, seed=1, max_events=HALF)
    wait_recorded(recorder, HALF, timeout=60)

    source.stop()  # the source restarts once, on the same durable store and port
    source = server_factory(store=f"sqlite:///{db}", port=port)
    start_demo(source, rate=RATE, batch=10, seed=2, max_events=HALF)
    wait_recorded(recorder, 2 * HALF, timeout=60)
    recorder.stop()
    assert recorder.error is None
    assert recorder.client is not None and recorder.client.connects >= 2

    rec = read_recording(out)
    assert len(rec) == 2 * HALF and rec.torn_parts == 0
    assert rec.table.column("id").to_pylist() == list(range(1, 2 * HALF + 1))
    assert rec.gaps == []  # a durable store lost nothing across the restart

    target = server_factory()
    client = connect(target.url, since=0, **FAST)
    try:
        handle = replay(out, target, speed=10)
        stats = handle.result(timeout=60)
        assert stats["sent"] == 2 * HALF and stats["error"] is None
        assert client.wait_for(2 * HALF, timeout=30)
        recorded = comparable(rec.to_frame().df)
        replayed = comparable(client.frame.df)
        pd.testing.assert_frame_equal(replayed, recorded, check_like=True)
    finally:
        client.close()

    # the schedule is the recorded span / 10 (exact up to float rounding)
    times = rec.times_ms()
    span = (max(times) - times[0]) / 1000.0
    assert handle.schedule is not None
    assert handle.schedule.duration == pytest.approx(span / 10, rel=1e-6)
    measured = {
        "events": stats["sent"],
        "speed": 10,
        "recorded_span_s": span,
        "scheduled_s": stats["scheduled_s"],
        "elapsed_s": stats["elapsed_s"],
        "timing_ratio": stats["timing_ratio"],
        "max_lateness_s": stats["max_lateness_s"],
        "posts": stats["posts"],
    }
    print("replay timing:", json.dumps(measured))
    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "replay_timing.json").write_text(json.dumps(measured, indent=2) + "\n")


def test_replay_into_a_server_object_at_max_speed_with_retime(
    server_factory: Callable[..., Server],
) -> None:
    target = server_factory()
    client = connect(target.url, since=0, **FAST)
    try:
        stats = replay(None, target, speed="max", retime=True).result(timeout=60)
        n = stats["total"]
        assert stats["sent"] == n >= 2000 and stats["speed"] == "max"
        assert client.wait_for(n, timeout=30)
        df = client.frame.df
        # retimed: the timestamps are recent (within the last minute), not the recording's
        now = pd.Timestamp.now(tz="UTC")
        assert (now - df["timestamp"].max()) < pd.Timedelta(minutes=1)
    finally:
        client.close()


def test_a_refused_replay_ends_with_an_error_not_an_exception_in_the_loop(
    server_factory: Callable[..., Server],
) -> None:
    target = server_factory(token="s3cret")
    handle = replay(None, target.http_url, speed="max", token="wrong")
    assert handle.wait(30)
    assert handle.error is not None and "HTTP 401" in str(handle.error)
    assert handle.stats()["sent"] == 0
