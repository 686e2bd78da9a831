"""Client errors stay client errors: a client that disconnects mid-body, a corrupt compressed
body and a flood of malformed requests are counted as 4xx, logged at most once per kind and
period (rate-limited), never with a traceback and never as a 500."""

from __future__ import annotations

import gzip
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wsnotebook.server import Server

ROOT = Path(__file__).resolve().parents[3]
POST_HEAD = (
    "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    "{extra}Content-Length: {length}\r\n\r\n"
)


def tracebacks(records: list[logging.LogRecord]) -> list[logging.LogRecord]:
    return [r for r in records if r.exc_info is not None or r.levelno >= logging.ERROR]


def reply(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def post_raw(port: int, body: bytes, extra: str = "", length: int | None = None) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        head = POST_HEAD.format(extra=extra, length=len(body) if length is None else length)
        sock.sendall(head.encode() + body)
        return reply(sock)


def abort_mid_body(port: int) -> None:
    """Headers announcing 100,000 bytes, 10 bytes of body, then close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(POST_HEAD.format(extra="", length=100_000).encode() + b"0123456789")


def test_a_client_that_disconnects_mid_body_is_a_client_abort_not_a_500(
    server: Server, wait_until: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    abort_mid_body(server.port)
    assert wait_until(lambda: server.metrics()["errors"].get("client_abort") == 1)
    metrics = server.metrics()
    assert metrics["errors"] == {"client_abort": 1}
    assert metrics["rejected"] == {"400": 1}
    assert tracebacks(caplog.records) == []
    aborts = [r for r in caplog.records if "closed the connection" in r.getMessage()]
    assert len(aborts) == 1 and aborts[0].levelno == logging.INFO


@pytest.mark.parametrize(
    "body",
    [
        b"x" * 5000,  # not gzip at all (more than one read's worth)
        gzip.compress(b'{"source_app":"a"}')[:-8] + b"garbage!",  # a bad trailer
    ],
    ids=["bad-header", "bad-trailer"],
)
def test_a_corrupt_gzip_body_is_400_with_one_log_line_and_no_traceback(
    server: Server, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    caplog.set_level(logging.DEBUG)
    data = post_raw(server.port, body, extra="Content-Encoding: gzip\r\n")
    assert data.startswith(b"HTTP/1.1 400 ")
    assert data.endswith(b'{"error":"body: cannot decode Content-Encoding \'gzip\'"}')
    assert b"Connection: close" in data
    server.metrics()  # a round trip through the loop: anything logged after the reply is in
    assert tracebacks(caplog.records) == []
    assert len(caplog.records) <= 1
    assert server.metrics()["rejected"] == {"400": 1}
    assert server.metrics()["errors"] == {}


def test_a_rejected_request_with_an_unread_corrupt_gzip_body_logs_no_traceback(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    # refused before the body is read (wrong Content-Type): aiohttp used to drain the body
    # after the reply and log its decode error as an "Unhandled exception"
    caplog.set_level(logging.DEBUG)
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = (
            "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
            "Content-Encoding: gzip\r\nContent-Length: 20000\r\n\r\n"
        )
        sock.sendall(head.encode() + b"y" * 10_000)
        data = reply(sock)
    assert data.startswith(b"HTTP/1.1 415 ")
    server.metrics()
    assert tracebacks(caplog.records) == []
    assert server.metrics()["rejected"] == {"415": 1}


def test_a_flood_of_bad_requests_produces_a_bounded_number_of_log_records(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bad = [
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: zz\r\n\r\n",
        b"GET /events/recent HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
        POST_HEAD.format(extra="Content-Encoding: gzip\r\n", length=5).encode() + b"xxxxx",
    ]
    for i in range(500):
        raw = bad[i % len(bad)]
        if i % 5 == 4:
            abort_mid_body(server.port)
            continue
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(raw)
            assert reply(sock).startswith(b"HTTP/1.")
    server.metrics()
    assert tracebacks(caplog.records) == []
    # 5 lines per kind per minute: malformed request (aiohttp), host, bad body, client abort
    assert len(caplog.records) <= 5 * 6, [r.getMessage() for r in caplog.records]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a subprocess")
def test_the_cli_server_prints_no_traceback_for_a_corrupt_gzip_body() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wsnotebook", "serve", "--port", "0", "--memory"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        # SIGINT only once the CLI says Ctrl-C stops it (its handler is installed by then;
        # before, Python's default handler exits 130)
        while not lines or not lines[-1].startswith("Press Ctrl-C"):
            line = proc.stdout.readline()
            assert line, f"server exited early: {lines}"
            lines.append(line)
        match = re.search(r"http://127\.0\.0\.1:(\d+)", lines[0])
        assert match, lines
        port = int(match.group(1))
        for body in (b"x" * 5000, gzip.compress(b"{}")[:-8] + b"garbage!"):
            data = post_raw(port, body, extra="Content-Encoding: gzip\r\n")
            assert data.startswith(b"HTTP/1.1 400 ")
        abort_mid_body(port)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "Traceback" not in err, err
    assert err.strip() == "", err


def test_a_refused_large_compressed_body_is_drained_so_the_client_reads_the_reply(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = gzip.compress(os.urandom(1 << 20))  # ~1 MiB that does not compress
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        head = (
            "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)  # completes: the server reads the rest
        data = reply(sock)
    assert data.startswith(b"HTTP/1.1 415 ")
    assert tracebacks(caplog.records) == []
