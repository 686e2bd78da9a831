"""What the exactly-once fault tests share: a paced producer of numbered events, the server
closing its subscribers with a given code, and the count of numbers a client's frame holds.

Each event carries a unique producer number ``payload.n``; a test ends by checking that the
client's frame holds every number exactly once (:func:`frame_numbers`).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from wsnotebook.runtime import loop as _loop

BATCH = 25


def event(n: int, source_app: str = "fault", sessions: int = 7) -> dict[str, Any]:
    return {
        "source_app": source_app,
        "session_id": f"s{n % sessions}",
        "hook_event_type": "PreToolUse",
        "payload": {"n": n},
    }


def wait_until(pred: Callable[[], object], timeout: float, what: str) -> None:
    """Poll ``pred`` every 5 ms until it is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.005)


class Producer(threading.Thread):
    """Publishes events 0..total-1 in batches of :data:`BATCH` at ``rate`` ev/s through
    ``server.publish``; ``pause()`` blocks it between batches (while the server restarts),
    ``resume()`` lets it go on."""

    def __init__(
        self, server: Any, total: int, *, rate: float, source_app: str = "fault", sessions: int = 7
    ) -> None:
        super().__init__(daemon=True, name=f"{source_app}-producer")
        self.server, self.total, self.sent = server, total, 0
        self.source_app, self.sessions = source_app, sessions
        self.interval = BATCH / rate
        self.gate, self.idle = threading.Event(), threading.Event()
        self.gate.set()
        self.error: BaseException | None = None
        self.stop_flag = False

    def run(self) -> None:
        try:
            next_at = time.monotonic()
            while self.sent < self.total and not self.stop_flag:
                if not self.gate.is_set():
                    self.idle.set()
                    self.gate.wait(30)
                    self.idle.clear()
                    continue
                n = min(BATCH, self.total - self.sent)
                self.server.publish(
                    [event(self.sent + i, self.source_app, self.sessions) for i in range(n)]
                )
                self.sent += n
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.idle.set()

    def pause(self) -> None:
        self.gate.clear()
        self.idle.wait(30)

    def resume(self) -> None:
        self.gate.set()


def close_subscribers(server: Any, code: int) -> None:
    """The server ends every subscription with ``code`` through its own close path (test-only
    use of the server's live connections)."""

    async def close_all() -> int:
        clients = list(server.broadcaster.clients)
        for c in clients:
            c.start_close(code, b"chaos")
        return len(clients)

    wait_until(lambda: _loop.run(close_all()) > 0, 10, "a subscriber to close")


def frame_numbers(client: Any) -> Counter[int]:
    return Counter(int(p["n"]) for p in client.frame.df["payload"])
