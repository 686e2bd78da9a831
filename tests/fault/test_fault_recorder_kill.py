"""A recorder SIGKILLed mid-run (issue 24): what it flushed stays readable (and SIGTERM, the
normal stop, flushes everything it received and exits 0).

``python -m wsnotebook record`` runs as a subprocess against a live in-process source (the demo
producer at 1,000 ev/s), flushing every 0.1 s; once a few segments are on disk it is killed
with SIGKILL (no handler, no final flush).  The recording then reads back with every committed
segment intact: ids contiguous and each once, the ordinary Parquet readers agree, and a
half-written temporary segment (if the kill landed mid-write) is ignored.

Bounded: every wait 60 s at most, loopback only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from _paced import wait_until

from wsnotebook.demo import start_demo
from wsnotebook.frame import EventFrame
from wsnotebook.recording import read_recording
from wsnotebook.server import serve

pytestmark = pytest.mark.timeout(120)

WAIT = 60.0


def parts(out: Path) -> list[Path]:
    return sorted(out.glob("part-*.parquet")) if out.is_dir() else []


def test_the_recording_survives_a_sigkill_of_the_recorder(tmp_path: Path) -> None:
    source = serve(port=0)
    producer = start_demo(source, rate=1000, batch=10, seed=3)
    out = tmp_path / "killed.parquet"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wsnotebook",
            "record",
            source.url,
            "--out",
            str(out),
            "--flush-interval",
            "0.1",
            "--since",
            "0",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: len(parts(out)) >= 5 or proc.poll() is not None, WAIT, "5 segments")
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(WAIT) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
        producer.stop()
        source.stop()

    committed = parts(out)
    rec = read_recording(out)
    assert rec.parts == len(committed) >= 5 and rec.torn_parts == 0
    ids = rec.table.column("id").to_pylist()
    assert len(ids) > 0 and ids == list(range(ids[0], ids[0] + len(ids)))  # each once, in order
    assert len(pd.read_parquet(out)) == len(ids) == len(EventFrame.from_parquet(out))
    leftovers = [p.name for p in out.iterdir() if p.name.endswith(".tmp")]
    print(f"after SIGKILL: {len(ids)} events in {len(committed)} segments; temp files {leftovers}")

    # a torn tail (a copy cut short, a file system without atomic rename) is skipped, the
    # segments before it stay readable
    last = committed[-1]
    kept = len(ids) - pd.read_parquet(last).shape[0]
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    torn = read_recording(out)
    assert torn.torn_parts == 1 and len(torn) == kept


def test_sigterm_flushes_everything_received_and_exits_0(tmp_path: Path) -> None:
    source = serve(port=0)
    producer = start_demo(source, rate=1000, batch=10, seed=4)
    out = tmp_path / "stopped.parquet"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wsnotebook",
            "record",
            source.url,
            "--out",
            str(out),
            "--flush-interval",
            "5",
            "--since",
            "0",
            "--quiet",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the first segment is written once 5 s passed; stop before: only the final flush
        # can have written what was received
        wait_until(
            lambda: (out / "_recording.json").exists() or proc.poll() is not None,
            WAIT,
            "the recording to be created",
        )
        assert proc.poll() is None
        producer_sent = producer.sent
        wait_until(lambda: producer.sent >= producer_sent + 200, WAIT, "200 more events")
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)
        producer.stop()
        source.stop()
    assert proc.returncode == 0, stderr
    rec = read_recording(out)
    assert stdout.startswith(f"recorded {len(rec)} events") and len(rec) > 0, stdout
    ids = rec.table.column("id").to_pylist()
    assert ids == list(range(ids[0], ids[0] + len(ids)))
