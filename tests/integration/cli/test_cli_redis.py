"""``python -m wsnotebook serve --store redis://...``: one error line for a bad URL or an
unreachable Redis (never a traceback, never the password); a running server on a real
redis-server prints its store without the password and stops cleanly on SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from _redis import local_redis

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
SECRET = "hunter2-secret"


def run_serve(store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsnotebook", "serve", "--port", "0", "--store", store],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=ENV,
    )


@pytest.mark.parametrize(
    "store",
    [
        f"redis://:{SECRET}@127.0.0.1:1/0?stream=x&connect_timeout=1",  # nothing listens there
        f"redis://:{SECRET}@127.0.0.1:99999/0",  # malformed port
        f"redis://:{SECRET}@127.0.0.1/0?nope=1",  # unknown parameter
    ],
)
def test_bad_store_is_one_error_line(store: str) -> None:
    done = run_serve(store)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wsnotebook serve: store:"), done.stderr
    assert "Traceback" not in done.stderr and SECRET not in done.stderr + done.stdout


def test_serve_on_redis_hides_the_password() -> None:
    red = local_redis(password=SECRET)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wsnotebook", "serve", "--port", "0", "--store",
             red.store_url("cli")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=ENV,
        )  # fmt: skip
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        text = "".join(seen) + out + err
        assert proc.returncode == 0, text
        assert "store: redis://:***@127.0.0.1:" in text and SECRET not in text
    finally:
        red.close()
