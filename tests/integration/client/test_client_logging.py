"""The client's token stays out of the websockets library's own log (which still works), and the
receive loop offers the CPU-budget checkpoint once per message.  Loopback, bounded."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import wsnotebook.runtime.loop as _loop
from wsnotebook.client import Client, connect
from wsnotebook.server import Server, serve

pytestmark = pytest.mark.timeout(60)

TOKEN = "s3cr3t-T0ken/with+chars"


def ev(i: int) -> dict[str, Any]:
    return {"source_app": "t", "session_id": "s", "hook_event_type": "x", "payload": {"i": i}}


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def ws_debug_log() -> Iterator[Lines]:
    """Every record of the ``websockets`` loggers at DEBUG."""
    handler = Lines()
    logger = logging.getLogger("websockets")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


@pytest.fixture
def server() -> Iterator[Server]:
    srv = serve(port=0, token=TOKEN)
    yield srv
    srv.stop()


def test_websockets_debug_log_still_shows_the_handshake_with_the_token_masked(
    server: Server, ws_debug_log: Lines
) -> None:
    quoted = server.url + "?token=" + TOKEN.replace("/", "%2F").replace("+", "%2B")
    by_header = connect(server.url, token=TOKEN, in_process=False)
    by_query = connect(quoted, in_process=False)
    try:
        assert by_header.wait_state("open", 15) and by_query.wait_state("open", 15)
        lines = ws_debug_log.lines
        leaks = [ln for ln in lines if "s3cr3t" in ln or "T0ken" in ln]
        assert not leaks, leaks[:3]
        # the library's wire log is still there and on its own logger: only the secret is masked
        assert any(ln.startswith("websockets.client DEBUG > GET /stream?") for ln in lines)
        assert any("Authorization: Bearer ***" in ln for ln in lines), lines[:20]
        assert any("token=***" in ln for ln in lines), lines[:20]
    finally:
        by_header.close()
        by_query.close()


def test_receive_loop_offers_the_cpu_budget_checkpoint_once_per_message(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = {"consume": 0}
    lock = threading.Lock()
    original = _loop.budget_checkpoint

    def counting() -> None:
        if sys._getframe(1).f_code.co_name == "consume":  # the session's receive loop
            with lock:
                calls["consume"] += 1
        original()

    monkeypatch.setattr(_loop, "budget_checkpoint", counting)
    c: Client = connect(server.url, token=TOKEN, batch=None, in_process=False)
    try:
        assert c.wait_state("open", 15)
        for i in range(20):
            server.publish([ev(i)])
        assert c.wait_for(20, 15)
    finally:
        c.close()
    # Closed: the receive loop has ended, so both counts are final.  Every received message
    # (initial, events, heartbeats) passed the checkpoint exactly once.
    assert c.state == "closed"
    assert calls["consume"] == c.messages >= 21
