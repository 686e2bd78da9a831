"""Scale-out on Redis Streams under faults (issue 22, "Done when").

Three server processes (tests/fault/_redis_server.py) on one stream of one real ``redis-server``
(AOF, ``appendfsync always``; started by the test in a temp dir); three ``wsnotebook.connect``
clients spread over them, each given all three URLs to fail over between; a producer posting to
all three in turn.  Meanwhile one server is SIGKILLed and restarted on its port, and Redis is
SIGKILLed and restarted once (its AOF replayed).  At the end:

* every acknowledged (200) event is in every client's frame exactly once, under the id it was
  acknowledged with; every client holds the same ids in the same order (one total order across
  servers); no gap was recorded, no event was stored twice (each posted ``n`` at most once);
* all three servers give the same ``/events/recent`` and ``/events/filter-options``.

POSTs refused while Redis or a server is down are not acknowledged (503 or a connection error)
and the producer moves on with a new ``n``: nothing is retried, so nothing can be stored twice.
Bounded: ~1,200 acknowledged events, every wait 40 s at most, loopback only; subprocesses exit by
themselves after 120 s whatever happens.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _paced import wait_until
from _redis import local_redis

from wsnotebook.client import Client, connect
from wsnotebook.store.redis_local import LocalRedis

pytestmark = pytest.mark.timeout(120)

SERVER_SCRIPT = Path(__file__).with_name("_redis_server.py")
WAIT = 40.0
PHASE = 300  # acknowledged events between faults
CLIENT_OPTS = {"backoff_base": 0.01, "backoff_cap": 0.1, "open_timeout": 5.0}


class ServerProcess:
    """One ``_redis_server.py`` subprocess; :meth:`restart` starts it again on the same port."""

    def __init__(self, store: str, port: int = 0) -> None:
        self.store = store
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--store", store, "--port", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # one JSON line once bound (or an error)
        info = json.loads(line)
        assert "error" not in info, f"the server could not start: {info['error']}"
        self.port: int = info["port"]
        self.epoch: str = info["epoch"]

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/stream"

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(WAIT) == -signal.SIGKILL
        self._close_pipes()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()


class Producer(threading.Thread):
    """POSTs single events (``payload.n`` unique per attempt) to the servers in turn, one
    keep-alive connection per server (a new one after a failure); records what was
    acknowledged.  Never retries an event: a refused ``n`` is never sent again."""

    def __init__(self, ports: list[int]) -> None:
        super().__init__(daemon=True, name="producer")
        self.ports = ports
        self.acked: dict[int, int] = {}  # n -> acknowledged id
        self.refused = 0
        self.bad: list[str] = []  # replies other than 200 / 503 (test failures)
        self.stop_event = threading.Event()

    def run(self) -> None:
        conns: dict[int, http.client.HTTPConnection] = {}
        n = 0
        while not self.stop_event.is_set():
            port = self.ports[n % len(self.ports)]
            n += 1
            event = {
                "source_app": f"app{n % 3}",
                "session_id": f"s{n % 5}",
                "hook_event_type": "PreToolUse",
                "payload": {"n": n},
            }
            conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conns[port] = conn
            try:
                conn.request(
                    "POST", "/events", json.dumps(event), {"Content-Type": "application/json"}
                )
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conns.pop(port, None)
                self.refused += 1
                self.stop_event.wait(0.005)  # that server is down: let the others take it
                continue
            if resp.status == 200:
                self.acked[n] = json.loads(data)["id"]
            elif resp.status == 503:
                self.refused += 1
                self.stop_event.wait(0.005)
            else:
                self.bad.append(f"{resp.status}: {data[:200]!r}")
        for conn in conns.values():
            conn.close()


@pytest.fixture
def redis() -> Iterator[LocalRedis]:
    server = local_redis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def procs() -> Iterator[list[ServerProcess]]:
    made: list[ServerProcess] = []
    yield made
    for p in made:
        p.stop()


def get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200
        return json.loads(resp.read())
    finally:
        conn.close()


def test_three_servers_one_stream_survive_server_and_redis_kills(
    redis: LocalRedis, procs: list[ServerProcess], clients: list[Client]
) -> None:
    store = redis.store_url("scaleout")
    procs += [ServerProcess(store) for _ in range(3)]
    assert len({p.epoch for p in procs}) == 1, "the epoch is the stream's, shared by all"
    urls = [p.url for p in procs]
    for i in range(3):  # spread: client i starts on server i, fails over to the next ones
        clients.append(connect(urls[i:] + urls[:i], **CLIENT_OPTS))
    wait_until(lambda: all(c.state == "open" for c in clients), WAIT, "3 clients open")
    producer = Producer([p.port for p in procs])
    producer.start()
    try:
        wait_until(lambda: len(producer.acked) >= PHASE, WAIT, "events before the server kill")
        victim = procs[0]
        victim.kill()  # client 0 fails over to server 1
        mark = len(producer.acked)
        wait_until(
            lambda: len(producer.acked) >= mark + PHASE, WAIT, "events while a server is down"
        )
        procs[0] = ServerProcess(store, victim.port)  # restarted on its port, same epoch
        assert procs[0].epoch == procs[1].epoch
        mark = len(producer.acked)
        wait_until(lambda: len(producer.acked) >= mark + PHASE, WAIT, "events after the restart")
        redis.kill()  # POSTs get 503, WebSocket clients stay, servers reconnect with backoff
        refused = producer.refused
        wait_until(
            lambda: producer.refused >= refused + 20, WAIT, "POSTs refused while Redis is down"
        )
        redis.start()  # AOF replayed: every acknowledged event is back
        mark = len(producer.acked)
        wait_until(
            lambda: len(producer.acked) >= mark + PHASE, WAIT, "events after the Redis restart"
        )
    finally:
        producer.stop_event.set()
        producer.join(WAIT)
    assert not producer.bad, producer.bad[:5]
    acked = producer.acked
    top = max(acked.values())
    wait_until(
        lambda: all(c.frame.total and c.frame.df["id"].max() >= top for c in clients),
        WAIT,
        "every client to reach the last acknowledged id",
    )
    frames = [c.frame.df for c in clients]
    ids = [list(df["id"]) for df in frames]
    assert ids[0] == ids[1] == ids[2], "one order on every client"
    assert ids[0] == sorted(set(ids[0])), "ids increasing, none twice"
    by_n = [dict(zip((p["n"] for p in df["payload"]), df["id"])) for df in frames]
    for df, seen in zip(frames, by_n):
        counts = Counter(p["n"] for p in df["payload"])
        assert max(counts.values()) == 1, "an event stored twice"
        missing = {n: i for n, i in acked.items() if seen.get(n) != i}
        assert not missing, f"acknowledged events missing or under another id: {len(missing)}"
    for c in clients:
        assert c.gaps == 0, c.frame.gaps
        assert c.connects >= 1
    assert clients[0].metrics()["failovers"] >= 1  # client 0 moved off the killed server
    # the servers that lived kept their WebSocket clients while Redis was down
    assert clients[1].connects == 1 and clients[2].connects == 1
    # every server answers the same recent events and filter options
    recent = [get_json(p.port, f"/events/recent?limit={len(ids[0])}") for p in procs]
    assert recent[0] == recent[1] == recent[2]
    assert [e["id"] for e in recent[0]] == ids[0]
    options = [get_json(p.port, "/events/filter-options") for p in procs]
    assert options[0] == options[1] == options[2]
    assert options[0]["source_apps"] == ["app0", "app1", "app2"]
    print(
        f"\nscale-out: {len(acked)} acknowledged, {len(ids[0])} delivered to each of 3 clients, "
        f"{producer.refused} refused while down, failovers "
        f"{[c.metrics()['failovers'] for c in clients]}, gaps 0"
    )
