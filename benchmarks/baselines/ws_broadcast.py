"""Baseline: a bare ``websockets`` broadcast server speaking the seed's wire protocol.

No validation, storage or per-client queues: on connect it sends ``{"type":"initial","data":[the
latest 300 events]}``, then ``websockets.broadcast`` of ``{"type":"event","data":ev}`` per event
(encoded once with orjson, like our server).  Controlled on stdin (see benchmarks/_harness.py).
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.server import ServerConnection, broadcast, serve

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _control import rss, serve_control
from _harness import make_event

clients: set[ServerConnection] = set()
recent: deque[bytes] = deque(maxlen=300)
state = {"next_id": 1, "sent": 0, "events_in": 0}


async def handler(ws: ServerConnection) -> None:
    await ws.send(b'{"type":"initial","data":[' + b",".join(recent) + b"]}", text=True)
    clients.add(ws)
    try:
        async for raw in ws:  # client -> server: count ``publish``ed events (ingest floor)
            msg = orjson.loads(raw)
            if msg.get("type") == "publish":
                data = msg.get("data")
                state["events_in"] += len(data) if isinstance(data, list) else 1
    finally:
        clients.discard(ws)


def emit_many(start: int, n: int) -> None:
    for i in range(start, start + n):
        ev = make_event(i)
        ev["id"] = state["next_id"]
        state["next_id"] += 1
        ev["server_received"] = time.time() * 1000.0
        enc = orjson.dumps(ev)
        recent.append(enc)
        broadcast(clients, (b'{"type":"event","data":' + enc + b"}").decode())
        state["sent"] += len(clients)


def stats() -> dict[str, Any]:
    return {
        "connections": len(clients),
        "sent": state["sent"],
        "events_in": state["events_in"],
        "rss": rss(),
    }


async def main() -> None:
    import resource

    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    loop = asyncio.get_running_loop()
    async with serve(handler, "127.0.0.1", 0, max_size=16 << 20) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print(f"PORT {port}", flush=True)
        done = asyncio.Event()

        def control() -> None:
            serve_control(loop, emit_many, stats)
            loop.call_soon_threadsafe(done.set)

        threading.Thread(target=control, daemon=True).start()
        await done.wait()


if __name__ == "__main__":
    asyncio.run(main())
