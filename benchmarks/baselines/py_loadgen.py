"""Load generator: C Python ``websockets`` clients in one process (same I/O as ws_loadgen.js).

Usage: ``python py_loadgen.py '<json>'`` with keys url, clients, expect, timeout_s, deflate,
max_samples.  Prints ``READY`` then ``RESULT {json}`` (see benchmarks/_harness.py).
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from typing import Any

import orjson
from websockets.asyncio.client import connect


def pct(s: list[float], q: float) -> float | None:
    if not s:
        return None
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


async def main(cfg: dict[str, Any]) -> None:
    n_clients, expect = int(cfg["clients"]), int(cfg["expect"])
    cap = int(cfg.get("max_samples", 2_000_000))
    samples: list[float] = []
    stats = [[0, 0.0, 0.0, 0] for _ in range(n_clients)]
    ready = asyncio.Event()
    go_ready = [0]
    connect_errors = [0]
    negotiated = [0]

    async def one(k: int) -> None:
        st = stats[k]
        try:
            async with connect(
                cfg["url"],
                compression="deflate" if cfg.get("deflate") else None,
                max_size=64 << 20,
                open_timeout=60,
            ) as ws:
                first = True
                if ws.protocol.extensions:
                    negotiated[0] += 1
                async for raw in ws:
                    t = time.time() * 1000.0
                    msg = orjson.loads(raw)
                    kind = msg.get("type")
                    if kind == "event":
                        evs = [msg["data"]]
                    elif kind == "batch":
                        evs = msg["data"]
                    else:
                        if kind == "initial" and first:
                            first = False
                            go_ready[0] += 1
                            if go_ready[0] == n_clients:
                                ready.set()
                        continue
                    if st[0] == 0:
                        st[1] = t
                    st[0] += len(evs)
                    st[2] = t
                    if len(samples) < cap:
                        samples.extend(t - e["timestamp"] for e in evs)
                    if st[0] >= expect:
                        break
                st[3] = 1000
        except Exception as exc:  # counted, reported in the RESULT
            code = getattr(getattr(exc, "rcvd", None), "code", None)
            st[3] = code or 1006
            if st[0] == 0 and not ready.is_set():
                connect_errors[0] += 1

    tasks = [asyncio.create_task(one(k)) for k in range(n_clients)]

    async def announce() -> None:
        await ready.wait()
        print("READY", flush=True)

    ann = asyncio.create_task(announce())
    _done, pending = await asyncio.wait(tasks, timeout=float(cfg["timeout_s"]))
    for t in [*pending, ann]:
        t.cancel()
    samples.sort()
    lat = {
        "p50": pct(samples, 0.5),
        "p90": pct(samples, 0.9),
        "p99": pct(samples, 0.99),
        "p99_9": pct(samples, 0.999),
        "max": samples[-1] if samples else None,
        "n": len(samples),
    }
    out = {
        "clients": stats,
        "lat": lat,
        "connect_errors": connect_errors[0],
        "deflate_negotiated": negotiated[0],
        "timed_out": bool(pending),
    }
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
