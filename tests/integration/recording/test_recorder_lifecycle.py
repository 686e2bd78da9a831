"""Recorders and replays are registered while they run; ``stop_all()`` stops them (recorders
with their final flush; ``%ws stop all`` calls it), and at interpreter exit the recorders are
stopped before the clients close, so a script or kernel that exits without ``stop()`` keeps
everything it received."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from _helpers import posted_events

from wsnotebook.recording import (
    read_recording,
    record,
    replay,
    running,
    running_recorders,
    running_replays,
    stop_all,
)
from wsnotebook.server import Server

pytestmark = pytest.mark.timeout(60)


def test_stop_all_flushes_every_running_recorder(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    source = server_factory()
    source.publish(posted_events(50))
    recs = [
        record(source.url, tmp_path / f"r{i}.parquet", since=0, flush_interval=60) for i in range(2)
    ]
    for rec in recs:
        assert rec.client is not None and rec.client.wait_for(50, timeout=20)
    assert set(map(id, running_recorders())) >= set(map(id, recs))
    assert stop_all() >= 2
    assert not [r for r in running_recorders() if r in recs]
    for rec in recs:
        assert len(read_recording(rec.path)) == 50  # the final flush wrote them


def test_a_script_that_exits_without_stop_keeps_what_it_received(
    tmp_path: Path, server_factory: Callable[..., Server]
) -> None:
    source = server_factory()
    source.publish(posted_events(120))
    out = tmp_path / "atexit.parquet"
    script = textwrap.dedent(
        f"""
        from wsnotebook.recording import record
        rec = record({source.url!r}, {str(out)!r}, since=0, flush_interval=60)
        assert rec.client.wait_for(120, timeout=20)
        print("received", flush=True)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "received" in proc.stdout, proc.stderr
    assert len(read_recording(out)) == 120


def test_stop_all_also_stops_running_replays(server_factory: Callable[..., Server]) -> None:
    target = server_factory()
    slow = replay(None, target, speed=0.01)  # the shipped session over ~30 minutes
    assert slow in running_replays() and slow in running()
    assert stop_all() >= 1
    assert slow.wait(10) and not slow.running and slow not in running_replays()
    assert slow.error is None and slow.stats()["sent"] < slow.stats()["total"]
