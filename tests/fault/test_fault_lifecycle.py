"""Kernel-style lifecycle: a notebook re-runs ``serve()``/``stop()`` many times in one process.
Nothing may leak: threads, asyncio tasks, file descriptors, sockets or the port itself.

Counts: 50 cycles (CI and ``WSN_FULL=1`` alike), each with an HTTP post, a WebSocket client
and, every 5th cycle, an SQLite store.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
import urllib.request

import psutil
import pytest

import wsnotebook as wsn
from wsnotebook.runtime import loop as _loop

pytestmark = pytest.mark.timeout(240)

CYCLES = 50
EVENT = {"source_app": "a", "session_id": "s", "hook_event_type": "t", "payload": {}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loop_tasks() -> int:
    async def count() -> int:
        return len(asyncio.all_tasks()) - 1  # minus this one

    return _loop.run(count())


def snapshot(proc: psutil.Process, port: int) -> dict[str, object]:
    conns = [
        c for c in proc.net_connections(kind="tcp") if c.status not in (psutil.CONN_TIME_WAIT,)
    ]
    names = [t.name for t in threading.enumerate()]
    pool = [n for n in names if n.startswith("asyncio_")]
    # the loop's default executor (asyncio.to_thread, SQLite reads) keeps a bounded pool
    assert len(pool) <= min(32, (os.cpu_count() or 1) + 4), names
    return {
        "threads": sorted(n for n in names if n not in pool),
        "tasks": loop_tasks(),
        "fds": proc.num_fds(),
        "sockets": len(conns),
        "on_port": sorted(c.status for c in conns if c.laddr and c.laddr.port == port),
    }


def settle(proc: psutil.Process, port: int, baseline: dict[str, object]) -> dict[str, object]:
    """Resources are released asynchronously (closing handshakes): poll up to 10 s."""
    deadline = time.monotonic() + 10
    snap = snapshot(proc, port)
    while snap != baseline and time.monotonic() < deadline:
        time.sleep(0.05)
        snap = snapshot(proc, port)
    return snap


def one_cycle(port: int, store: str) -> None:
    server = wsn.serve(port=port, store=store)
    assert server.port == port
    req = urllib.request.Request(
        server.http_url + "/events",
        data=json.dumps(EVENT).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    client = wsn.connect(server.url)
    assert client.wait_for(1, timeout=15)
    client.close()
    server.stop()


def test_fifty_serve_stop_cycles_on_one_port_leak_nothing(tmp_path):
    proc = psutil.Process()
    port = free_port()
    one_cycle(port, "memory")  # warm-up: starts the background loop, imports aiohttp
    one_cycle(port, f"sqlite:///{tmp_path}/warmup.db")
    baseline = settle(proc, port, snapshot(proc, port))
    assert baseline["on_port"] == [], baseline
    for i in range(CYCLES):
        store = f"sqlite:///{tmp_path}/cycle{i}.db" if i % 5 == 0 else "memory"
        one_cycle(port, store)
    after = settle(proc, port, baseline)
    print(f"\nlifecycle: {CYCLES} cycles; baseline={baseline} after={after}")
    # A leak grows with the cycle count; a single lazily opened descriptor (seen once in a
    # full-suite run: another test's resource closing late, or a one-time import) does not.
    # So fds may differ by at most 2 over 50 cycles; everything else must match exactly.
    fd_growth = int(after["fds"]) - int(baseline["fds"])  # type: ignore[call-overload]
    assert fd_growth <= 2, (fd_growth, proc.open_files(), proc.net_connections("all"))
    assert {k: v for k, v in after.items() if k != "fds"} == {
        k: v for k, v in baseline.items() if k != "fds"
    }
    # and the port is immediately reusable by someone else
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
