"""The command line (``python -m wsnotebook ...``) over real loopback sockets."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from wsnotebook import cli as _cli
from wsnotebook.cli import bench as cli_bench

ROOT = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_cli(*args: str, stdin: str = "", timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsnotebook", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=ENV,
    )


# --------------------------------------------------------------------------- help / parsing


@pytest.mark.parametrize("command", ["demo", "serve", "send", "bench"])
def test_every_subcommand_has_help(command: str) -> None:
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f"usage: wsnotebook {command}" in proc.stdout


def test_top_level_help_lists_the_commands() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0
    for command in ("demo", "serve", "send", "bench"):
        assert command in proc.stdout


def test_missing_command_is_a_usage_error() -> None:
    proc = run_cli()
    assert proc.returncode == 2
    assert "required" in proc.stderr


@pytest.mark.parametrize(("value", "expected"), [(None, "auto"), ("0", 0), ("250", 250)])
def test_demo_batch_option_reaches_the_client(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: Any
) -> None:
    import wsnotebook.client as client_pkg

    seen: list[Any] = []
    real_connect = client_pkg.connect

    def spy(url: str, **options: Any) -> Any:
        client = real_connect(url, **options)
        seen.append(client.options.batch)  # the client's own (validated) option
        return client

    monkeypatch.setattr(client_pkg, "connect", spy)  # what the demo command imports
    args = ["demo", "--duration", "0.3", "--refresh", "0.1"]
    args += [] if value is None else ["--batch", value]
    assert _cli.main(args) == 0
    assert seen == [expected]


def test_demo_batch_out_of_bounds_is_a_usage_error() -> None:
    proc = run_cli("demo", "--batch", "-1")
    assert proc.returncode == 2 and "--batch must be in 0..100000" in proc.stderr


# --------------------------------------------------------------------------- send (stub server)


class _Recorder(BaseHTTPRequestHandler):
    status = 200
    reply: bytes = b"{}"
    requests: list[dict[str, Any]] = []  # noqa: RUF012 - per-test class, see stub_server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        self.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.reply)))
        self.end_headers()
        self.wfile.write(self.reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def stub_server() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_send_posts_stdin_json_and_prints_the_stored_event(
    stub_server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = stub_server
    stored = {"id": 7, "source_app": "a", "session_id": "s", "hook_event_type": "Stop",
              "payload": {}, "timestamp": 1}  # fmt: skip
    handler.reply = json.dumps(stored).encode()
    event = {"source_app": "a", "session_id": "s", "hook_event_type": "Stop", "payload": {}}
    proc = run_cli("send", "--url", url, "--token", "tok", stdin=json.dumps(event))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == stored
    (req,) = handler.requests
    assert req["path"] == "/events"
    assert json.loads(req["body"]) == event
    assert req["headers"]["Content-Type"] == "application/json"
    assert req["headers"]["Authorization"] == "Bearer tok"


def test_send_builds_the_event_from_flags(stub_server: tuple[str, type[_Recorder]]) -> None:
    url, handler = stub_server
    proc = run_cli(
        "send", "--url", url.replace("http", "ws") + "/stream", "--source-app", "app",
        "--session-id", "s1", "--type", "PreToolUse", "--payload", '{"tool_name": "Bash"}',
        "--summary", "hi",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(handler.requests[0]["body"]) == {
        "source_app": "app",
        "session_id": "s1",
        "hook_event_type": "PreToolUse",
        "payload": {"tool_name": "Bash"},
        "summary": "hi",
    }


def test_send_exits_nonzero_with_the_servers_error_on_4xx(
    stub_server: tuple[str, type[_Recorder]],
) -> None:
    url, handler = stub_server
    handler.status = 400
    handler.reply = b'{"error": "payload: expected object, got string"}'
    proc = run_cli("send", "--url", url, stdin='{"source_app": "a"}')
    assert proc.returncode == 1
    assert "HTTP 400: payload: expected object, got string" in proc.stderr
    assert proc.stdout == ""


def test_send_reports_a_peer_that_does_not_speak_http_as_unreachable() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"HELLO NOT HTTP\r\n\r\n")

        t = threading.Thread(target=answer, daemon=True)
        t.start()
        proc = run_cli("send", "--url", f"http://127.0.0.1:{port}", stdin='{"a": 1}')
        t.join(10)
    assert proc.returncode == 3, proc.stderr
    assert "cannot reach" in proc.stderr and "BadStatusLine" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["inf", "0", "1e308"])
def test_demo_refresh_and_send_timeout_out_of_bounds_are_usage_errors(value: str) -> None:
    for args in (("demo", "--refresh", value), ("send", "--timeout", value)):
        proc = run_cli(*args)
        assert proc.returncode == 2 and "must be in 0.01..86400 s" in proc.stderr


def test_send_reports_an_unreachable_server() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = run_cli("send", "--url", f"http://127.0.0.1:{port}", stdin='{"a": 1}', timeout=60)
    assert proc.returncode == 3
    assert "cannot reach" in proc.stderr


def _free_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_replay_to_an_unreachable_server_says_so_once_and_readably() -> None:
    proc = run_cli("replay", "--to", f"http://127.0.0.1:{_free_port()}", "--speed", "max")
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("cannot reach") == 1, proc.stderr  # it was printed twice
    assert "ConnectionKey(" not in proc.stderr and "Traceback" not in proc.stderr


def test_record_of_a_stream_that_never_answers_says_why_and_fails(tmp_path: Path) -> None:
    url = f"ws://127.0.0.1:{_free_port()}/stream"
    out = tmp_path / "rec.parquet"
    proc = run_cli("record", url, "--out", str(out), "--duration", "2", "--quiet")
    assert proc.returncode == 3, proc.stderr  # it exited 0 with "recorded 0 events"
    assert "never connected" in proc.stderr and "refused" in proc.stderr


# --------------------------------------------------------------------------- bench


def fake_bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_code: int = 0) -> None:
    """A benchmarks/run_all.py in ``tmp_path`` (the cwd) that writes its arguments to
    args.json and exits with ``exit_code``."""
    bench = tmp_path / "benchmarks"
    bench.mkdir()
    (bench / "run_all.py").write_text(
        "import sys, pathlib, json\n"
        "pathlib.Path('args.json').write_text(json.dumps(sys.argv[1:]))\n"
        f"sys.exit({exit_code})\n"
    )
    monkeypatch.chdir(tmp_path)


def test_bench_runs_run_all_with_quick_passthrough(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bench(tmp_path, monkeypatch, exit_code=5)
    code = _cli.main(["bench", "--quick", "--", "--only", "x"])
    assert code == 5
    assert json.loads((tmp_path / "args.json").read_text()) == ["--quick", "--only", "x"]


def test_bench_passes_unknown_options_through_without_a_double_dash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_bench(tmp_path, monkeypatch)
    assert _cli.main(["bench", "--only", "fanout", "--reps", "3"]) == 0
    assert json.loads((tmp_path / "args.json").read_text()) == ["--only", "fanout", "--reps", "3"]
    with pytest.raises(SystemExit) as info:  # other commands still refuse unknown options
        _cli.main(["send", "--bogus"])
    assert info.value.code == 2


def test_bench_without_a_suite_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli_bench, "find_bench_script", lambda start=None: None)
    assert _cli.main(["bench"]) == 2
    assert "run_all.py not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- serve / demo


def _wait_for_line(proc: subprocess.Popen[str], pattern: str, timeout: float) -> re.Match[str]:
    """Read proc's stdout until a line matches (a reader thread keeps it bounded in time)."""
    found: list[re.Match[str]] = []
    seen: list[str] = []
    done = threading.Event()

    def reader() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            seen.append(line)
            m = re.search(pattern, line)
            if m:
                found.append(m)
                break
        done.set()

    threading.Thread(target=reader, daemon=True).start()
    assert done.wait(timeout), f"no line matching {pattern!r} in {timeout}s; got {seen!r}"
    assert found, f"process ended without {pattern!r}; output {seen!r}"
    return found[0]


def test_serve_accepts_events_from_send_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsnotebook", "serve", "--port", "0", "--db", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=ENV,
    )
    try:
        m = _wait_for_line(proc, r"listening on (http://127\.0\.0\.1:(\d+))", timeout=60)
        url, port = m.group(1), int(m.group(2))
        _wait_for_line(proc, r"^Press Ctrl-C", timeout=60)  # the SIGINT handler is in place
        event = {"source_app": "cli", "session_id": "s", "hook_event_type": "Stop", "payload": {}}
        sent = run_cli("send", "--url", url, "--compact", stdin=json.dumps(event))
        assert sent.returncode == 0, sent.stderr
        stored = json.loads(sent.stdout)
        assert isinstance(stored["id"], int) and stored["source_app"] == "cli"
        assert isinstance(stored["timestamp"], (int, float))
        bad = run_cli("send", "--url", url, stdin='{"source_app": "cli"}')
        assert bad.returncode == 1 and "HTTP 400" in bad.stderr
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert db.exists()
        with socket.socket() as s:  # nobody listens on the port any more
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is fine
            s.bind(("127.0.0.1", port))
            s.listen()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_demo_runs_for_a_duration_and_reports_received_events() -> None:
    proc = run_cli("demo", "--duration", "3", "--rate", "200", "--refresh", "0.5", timeout=90)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "ev/s" in ln]
    assert len(lines) >= 3  # refreshed, one line per tick when not a terminal
    last = re.search(r"events\s+([\d,]+)", lines[-1])
    assert last and int(last.group(1).replace(",", "")) > 100
    assert re.search(r"clients\s+1\b", lines[-1])
    lat = re.search(r"p50\s+([\d.]+)ms p99\s+([\d.]+)ms", lines[-1])
    assert lat and float(lat.group(1)) <= float(lat.group(2)) < 60_000
    done = re.search(r"produced ([\d,]+) events, client received ([\d,]+)", proc.stdout)
    assert done and int(done.group(2).replace(",", "")) > 100
    produced, received = (int(g.strip(",").replace(",", "")) for g in done.groups())
    assert produced == received  # the final count waits for the events in flight


def test_demo_duration_is_not_rounded_up_to_the_refresh_period() -> None:
    # A refresh period of an hour: were the duration rounded up to the first refresh, the demo
    # would outlive the subprocess timeout (a bound on the run, not a speed assertion).
    proc = run_cli("demo", "--duration", "0.5", "--refresh", "3600", timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "ev/s" in ln]
    assert len(lines) == 1  # the first (and only) wait ended with the duration, no refresh
    elapsed = float(re.search(r"\[\s*([\d.]+)s\]", lines[0]).group(1))  # type: ignore[union-attr]
    assert elapsed < 3600  # the summary was printed before the first refresh would have fired
    print(f"demo --duration 0.5 printed its summary at {elapsed:.1f}s")
    assert re.search(r"^done: produced [\d,]+ events", proc.stdout, re.M)


def test_demo_stops_cleanly_on_ctrl_c() -> None:
    """Clean: exit code 130, no traceback, and the final summary still printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsnotebook", "demo", "--refresh", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=ENV,
    )
    try:
        _wait_for_line(proc, r"events\s+[1-9]", timeout=60)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        assert proc.stdout is not None and proc.stderr is not None
        rest, err = proc.stdout.read(), proc.stderr.read()
        assert code == 130, err
        assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
        done = re.search(r"^done: produced ([\d,]+) events, client received ([\d,]+)", rest, re.M)
        assert done, f"no final summary after Ctrl-C; output after the signal: {rest!r}"
        assert int(done.group(1).replace(",", "")) > 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
