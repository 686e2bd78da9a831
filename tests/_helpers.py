"""Plain helpers shared by the test suites, imported as ``from _helpers import ...``.

A module of its own because test modules cannot ``import conftest``: there are several
``conftest.py`` files (tests/, tests/integration/, tests/fault/, ...) and which one the name
``conftest`` resolves to depends on collection order.  ``tests/`` is on ``sys.path`` because
pytest's default ``prepend`` import mode inserts the directory of the root ``tests/conftest.py``
(it is not a package) before importing it, so every test module under ``tests/`` can import this.

* ``use_fake_comms(monkeypatch)``: ipywidgets comms that send nothing (widgets without a kernel
  or front end), undone with the monkeypatch.
* ``make_hook_event(i, **fields)`` -> a valid seed-style hook event with ``id == i`` and the three
  epoch-ms stamps (``timestamp`` = ``T0_MS + i``, ``server_received`` +1.5 ms,
  ``client_received`` +4 ms); ``fields`` override or add top-level fields.
* ``FakeAgent()`` -> an agent waiting for a human-in-the-loop answer, as the seed's hook
  utility: a WebSocket server on 127.0.0.1 (``.url``) recording what it receives (``.wait(n)``);
  ``hitl_event(url, kind, **fields)`` -> a question with the seed's request shape.
* ``StreamReader(url)`` -> a raw ``/stream`` reader in a thread (the sync ``websockets``
  client): ``events`` in order, ``wait(pred)``, ``versions(id)`` (the HITL statuses an id went
  through), ``close()``.
* ``wss_first_message(url, ssl_context)`` -> the first message a ``wss://`` stream sends, read
  with the asyncio ``websockets`` client on a private loop.  Not the sync client: in about half
  of the full-suite runs here (2026-11-26) its ``wss://`` handshake got no response while our
  server sat idle, and joining its reader thread (blocked in an SSL read) hung until
  pytest-timeout.  That client reads the TLS socket in one thread while the caller's thread
  writes the request; our suspicion, not proven, is that shared OpenSSL connection.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any

import pytest

T0_MS = 1_760_000_000_000.0
HOOK_TYPES = ("PreToolUse", "PostToolUse", "Notification", "Stop")


def make_hook_event(i: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": i,
        "source_app": f"app{i % 2}",
        "session_id": f"session-{i % 3}",
        "hook_event_type": HOOK_TYPES[i % len(HOOK_TYPES)],
        "payload": {"tool_name": "Bash", "tool_input": {"command": f"echo {i}"}, "n": i},
        "timestamp": T0_MS + i,
        "server_received": T0_MS + i + 1.5,
        "client_received": T0_MS + i + 4.0,
    }
    event.update(fields)
    return event


def posted_events(n: int) -> list[dict[str, Any]]:
    """``n`` hook events as a producer posts them: :func:`make_hook_event` without the
    ``id`` / ``server_received`` / ``client_received`` stamps the server and client add."""
    stamps = ("id", "server_received", "client_received")
    return [{k: v for k, v in make_hook_event(i).items() if k not in stamps} for i in range(n)]


class FakeComm:
    """An ipywidgets comm with no kernel behind it: every message goes nowhere."""

    kernel = None

    def __init__(self, **kw: Any) -> None:
        self.comm_id = kw.get("comm_id") or f"c{id(self)}"

    def send(self, *a: Any, **k: Any) -> None: ...
    def close(self, *a: Any, **k: Any) -> None: ...
    def on_msg(self, cb: Any) -> None: ...
    def on_close(self, cb: Any) -> None: ...


def use_fake_comms(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ipywidgets create :class:`FakeComm` comms until ``monkeypatch`` is undone."""
    import ipywidgets.comm

    monkeypatch.setattr(ipywidgets.comm, "create_comm", lambda **kw: FakeComm(**kw))


def wss_first_message(url: str, ssl_context: ssl.SSLContext, timeout: float = 10.0) -> str:
    """The first message of the ``wss://`` stream at ``url`` (see the module docstring)."""
    from websockets.asyncio.client import connect

    async def first() -> str:
        async with connect(url, ssl=ssl_context, open_timeout=timeout) as ws:
            return str(await asyncio.wait_for(ws.recv(), timeout))

    return asyncio.run(first())


class FakeClock:
    """An injected clock for the sans-I/O classes: returns ``now``, which tests move by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeAgent:
    """A fake agent for human-in-the-loop tests, as the seed's hook utility does it: a
    WebSocket server on 127.0.0.1 (free port, its own thread) that records every message it
    receives.  ``url`` goes into ``humanInTheLoop.responseWebSocketUrl``; ``wait(n)`` returns
    the first ``n`` messages (decoded JSON) once they arrived; ``close()`` stops it."""

    def __init__(self) -> None:
        import threading

        from websockets.sync.server import serve

        self.messages: list[Any] = []
        self._cond = threading.Condition()

        def handler(ws: Any) -> None:
            import json

            for raw in ws:
                with self._cond:
                    self.messages.append(json.loads(raw))
                    self._cond.notify_all()

        self._server = serve(handler, "127.0.0.1", 0)
        self.port = self._server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, n: int = 1, timeout: float = 20.0) -> list[Any]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.messages) >= n, timeout):
                raise AssertionError(f"the agent got {len(self.messages)} of {n} messages")
            return list(self.messages[:n])

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(10)


def hitl_event(url: str, kind: str = "permission", **question: Any) -> dict[str, Any]:
    """A question with the seed's request shape (``humanInTheLoop`` answered on ``url``)."""
    hitl: dict[str, Any] = {
        "question": question.pop("question", "May I run the tests?"),
        "responseWebSocketUrl": url,
        "type": kind,
        "choices": question.pop("choices", None),
        "timeout": question.pop("timeout", 300),
        "requiresResponse": True,
    }
    return {
        "source_app": "agent",
        "session_id": "s-hitl",
        "hook_event_type": "DecisionPoint",
        "payload": {"agent_name": "alice", "permission_type": "run_tests"},
        "humanInTheLoop": hitl,
        "summary": "a question",
        **question,
    }


class StreamReader:
    """A raw ``/stream`` client in a thread: ``events`` are the events of every ``initial``,
    ``batch`` and ``event`` message it got, in order.  Read errors end the reader quietly (the
    test's ``wait`` then fails with the events seen so far)."""

    def __init__(self, url: str) -> None:
        import threading

        from websockets.sync.client import connect

        self.events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.ws = connect(url, open_timeout=10)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import json

        try:
            with self.ws:
                for raw in self.ws:
                    msg = json.loads(raw)
                    kind, data = msg.get("type"), msg.get("data")
                    if kind in ("initial", "batch", "event"):
                        with self.cond:
                            self.events += data if kind != "event" else [data]
                            self.cond.notify_all()
        except Exception:
            pass

    def wait(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 30.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: pred(self.events), timeout), self.events

    def versions(self, ident: int) -> list[str]:
        """The ``humanInTheLoopStatus`` statuses event ``ident`` arrived with, in order."""
        with self.cond:
            return [
                e["humanInTheLoopStatus"]["status"] for e in self.events if e.get("id") == ident
            ]

    def close(self) -> None:
        self.ws.close()
        self.thread.join(10)
