"""``%ws demo --replay``: the shipped session (or a file) replayed into ``ws_server`` as
``ws_demo``; ``%ws stats`` shows it, re-running replaces it, ``%ws stop`` stops it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from wsnotebook.recording import Replay, read_recording, session_path

pytestmark = pytest.mark.timeout(60)


def test_demo_replay_sends_the_shipped_session(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("ws", "serve --port 0")
    first = shell.run_line_magic("ws", "demo --replay --speed 1")
    assert isinstance(first, Replay) and first.running
    second = shell.run_line_magic("ws", "demo --replay --speed max")  # replaces the first
    assert not first.running and shell.user_ns["ws_demo"] is second
    assert second.wait(30) and second.error is None
    n = len(read_recording(session_path()))
    assert second.stats()["sent"] == n
    client = shell.run_line_magic("ws", "connect")
    assert client.wait_for(300, timeout=20)  # the server's initial snapshot of what it holds
    assert "replaying agents_session.parquet" in capsys.readouterr().out
    stats = shell.run_line_magic("ws", "stats")
    assert stats["ws_demo"]["sent"] == n
    shell.run_line_magic("ws", "stop")
    deadline = time.monotonic() + 10
    while client.state != "closed" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.state == "closed"


def test_demo_replay_of_a_bad_file_is_a_one_line_usage_error(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    shell.run_line_magic("ws", "serve --port 0")
    bad = tmp_path / "bad.parquet"
    bad.write_text("nope")
    with pytest.raises(UsageError, match="not a recording") as info:
        shell.run_line_magic("ws", f"demo --replay {bad}")
    assert "\n" not in str(info.value)
