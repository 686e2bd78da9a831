"""A bare seed-style server for client tests (aiohttp, own thread and loop, 127.0.0.1 only).

It speaks only the seed contract: ``POST /events``, and WebSocket ``/stream`` sending
``{"type":"initial","data":[latest N]}`` then ``{"type":"event","data":ev}`` per new event.
It ignores every query parameter (no resume, no batching, no heartbeat), like the seed's Bun
server.  Hooks let fault tests script misbehaviour:

* ``token``: require ``Authorization: Bearer <token>`` (401 otherwise);
* ``autoping=False``: never answer WebSocket pings (a half-open / frozen peer);
* ``script``: ``async def script(server, ws)`` replaces the live-event phase (send garbage,
  close with a code, ...);
* :meth:`SeedServer.drop_clients`: abort every connection (TCP reset, the client sees 1006).

Also :class:`SilentServer`: accepts TCP connections and never answers the handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import WSMsgType, web

Script = Callable[["SeedServer", web.WebSocketResponse], Awaitable[None]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_event(i: int, **extra: Any) -> dict[str, Any]:
    ev = {
        "source_app": "test",
        "session_id": f"s{i % 3}",
        "hook_event_type": "PreToolUse" if i % 2 else "PostToolUse",
        "payload": {"i": i, "tool": "Bash"},
        "summary": f"event {i}",
    }
    ev.update(extra)
    return ev


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class SeedServer:
    def __init__(
        self,
        port: int = 0,
        *,
        initial_limit: int = 300,
        token: str | None = None,
        autoping: bool = True,
        script: Script | None = None,
    ) -> None:
        self.port = port
        self.initial_limit = initial_limit
        self.token = token
        self.autoping = autoping
        self.script = script
        self.events: list[dict[str, Any]] = []
        self.clients: set[web.WebSocketResponse] = set()
        self.connections = 0  # WebSocket handshakes accepted
        self.handshakes_refused = 0
        self.query_strings: list[str] = []
        self._lt: _LoopThread | None = None
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> SeedServer:
        self._lt = _LoopThread()
        self._lt.run(self._start())
        return self

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_get("/stream", self._stream)
        app.router.add_post("/events", self._post)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def stop(self, *, abort: bool = True) -> None:
        """Stop; ``abort`` drops connections without a close frame (like a killed process)."""
        if self._lt is None:
            return
        lt, self._lt = self._lt, None
        lt.run(self._stop(abort))
        lt.stop()

    async def _stop(self, abort: bool) -> None:
        if abort:
            self._abort_all()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> SeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ test controls

    def publish(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        assert self._lt is not None
        return self._lt.run(self._publish(events))  # type: ignore[no-any-return]

    async def _publish(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        stored = []
        for ev in events:
            ev = dict(ev)
            ev["id"] = len(self.events) + 1
            ev.setdefault("timestamp", int(time.time() * 1000))
            ev["server_received"] = time.time() * 1000
            self.events.append(ev)
            stored.append(ev)
            msg = orjson.dumps({"type": "event", "data": ev}).decode()
            for ws in list(self.clients):
                with contextlib.suppress(Exception):
                    await ws.send_str(msg)
        return stored

    def drop_clients(self) -> int:
        """Abort every WebSocket connection (TCP close without a close frame)."""
        assert self._lt is not None
        return self._lt.run(self._drop())  # type: ignore[no-any-return]

    async def _drop(self) -> int:
        return self._abort_all()

    def _abort_all(self) -> int:
        n = 0
        for ws in list(self.clients):
            transport = ws._req.transport if ws._req is not None else None  # type: ignore[attr-defined]
            if transport is not None:
                transport.abort()
                n += 1
        self.clients.clear()
        return n

    def call(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        assert self._lt is not None
        return self._lt.run(fn())

    # ------------------------------------------------------------------ handlers

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        stored = await self._publish(body if isinstance(body, list) else [body])
        return web.json_response(stored if isinstance(body, list) else stored[0])

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        self.query_strings.append(request.query_string)
        if self.token is not None and request.headers.get("Authorization") != (
            f"Bearer {self.token}"
        ):
            self.handshakes_refused += 1
            return web.json_response({"error": "unauthorized"}, status=401)
        ws = web.WebSocketResponse(autoping=self.autoping, heartbeat=None)
        await ws.prepare(request)
        self.connections += 1
        initial = self.events[-self.initial_limit :] if self.initial_limit else []
        await ws.send_str(orjson.dumps({"type": "initial", "data": initial}).decode())
        self.clients.add(ws)
        try:
            if self.script is not None:
                await self.script(self, ws)
            async for msg in ws:
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.clients.discard(ws)
        return ws


class SilentServer:
    """Accepts TCP connections and never says a word (the handshake hangs)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)

    def __enter__(self) -> SilentServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        for c in self.accepted:
            c.close()
        self.sock.close()
