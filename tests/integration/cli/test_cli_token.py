"""``wsnotebook serve`` follows ``serve()`` on tokens: ``--token ""`` on a non-loopback host
refuses to start (exit 2, one line, nothing bound), a generated token is printed exactly once,
and ``--allowed-host`` reaches the Host check."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a subprocess")

# Runs the CLI with 127.0.0.1 treated as a non-loopback host: the token is generated exactly as
# on 0.0.0.0, but nothing is reachable from another machine.
AS_IF_PUBLIC = (
    "import sys, wsnotebook.server.start as s; s.is_loopback = lambda host: False; "
    "from wsnotebook.cli import main; sys.exit(main(sys.argv[1:]))"
)


def get(port: int, path: str, host: str, token: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Host": host}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


@contextmanager
def cli_server(*args: str, code: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """A ``serve`` subprocess on 127.0.0.1 port 0: yields (port, stdout lines up to "Press
    Ctrl-C"); SIGINT on exit.  The list gets the rest of stdout once it stopped."""
    cmd = [sys.executable, *(["-c", code] if code else ["-m", "wsnotebook"])]
    cmd += ["serve", "--host", "127.0.0.1", "--port", "0", "--memory", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=ENV
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = proc.stdout.readline()
            assert line, f"server exited early: {proc.communicate(timeout=30)}"
            lines.append(line.rstrip("\n"))
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", "\n".join(lines))
        assert match, lines
        yield int(match.group(1)), lines
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        lines.extend(out.splitlines())
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_an_empty_token_on_a_non_loopback_host_refuses_to_start_with_exit_2() -> None:
    # refused before anything is bound (serve() checks options first)
    args = ["serve", "--host", "0.0.0.0", "--port", "0", "--memory", "--token", ""]
    proc = subprocess.run(
        [sys.executable, "-m", "wsnotebook", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=ENV,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert lines == [
        "wsnotebook serve: token='' on non-loopback host '0.0.0.0': "
        "refusing to run open to the network"
    ]


def test_an_empty_token_on_loopback_runs_open_like_serve() -> None:
    with cli_server("--token", "") as (port, lines):
        assert get(port, "/health", f"127.0.0.1:{port}") == 200
    assert not any("token" in line for line in lines)


def test_a_generated_token_is_printed_exactly_once_and_works() -> None:
    with cli_server(code=AS_IF_PUBLIC) as (port, lines):
        text = "\n".join(lines)
        match = re.search(r"token \(send as 'Authorization: Bearer <token>'\): (\S+)", text)
        assert match, text
        token = match.group(1)
        assert get(port, "/health", f"127.0.0.1:{port}") == 401
        assert get(port, "/health", f"127.0.0.1:{port}", token) == 200
    assert "\n".join(lines).count(token) == 1, lines


def test_a_given_token_is_required_and_not_echoed() -> None:
    with cli_server("--token", "s3cret-given") as (port, lines):
        assert get(port, "/health", f"127.0.0.1:{port}") == 401
        assert get(port, "/health", f"127.0.0.1:{port}", "s3cret-given") == 200
    assert "s3cret-given" not in "\n".join(lines)
    assert any("token: required (as given" in line for line in lines)


def test_allowed_host_option_reaches_the_host_check() -> None:
    with cli_server("--allowed-host", "notebook.test", "--allowed-host", "other.test") as (
        port,
        _,
    ):
        assert get(port, "/health", f"notebook.test:{port}") == 200
        assert get(port, "/health", "other.test") == 200
        assert get(port, "/health", "evil.example") == 421
