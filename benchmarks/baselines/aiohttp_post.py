"""Baseline floor for ``POST /events``: a minimal aiohttp handler, no validation or storage.

It reads the body, ``orjson.loads`` it, assigns an id and answers the event as JSON -- the least
work a seed-compatible ingest endpoint can do.  Control on stdin: ``PORT``/``STATS``/``QUIT``
(see benchmarks/_harness.py; ``GO`` is not supported).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from typing import Any

import orjson
from aiohttp import web

state = {"next_id": 1, "events_in": 0}


async def post_events(request: web.Request) -> web.Response:
    event: Any = orjson.loads(await request.read())
    event["id"] = state["next_id"]
    state["next_id"] += 1
    state["events_in"] += 1
    return web.Response(body=orjson.dumps(event), content_type="application/json")


async def main() -> None:
    app = web.Application()
    app.router.add_post("/events", post_events)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(f"PORT {port}", flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def control() -> None:
        for line in sys.stdin:
            word = line.strip()
            if word == "STATS":
                print("STATS " + json.dumps({"events_in": state["events_in"]}), flush=True)
            elif word == "QUIT":
                break
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=control, daemon=True).start()
    await done.wait()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
