"""Crash durability of the SQLite store (issue 23, finding 6): a server process SIGKILLed
mid-ingest, then restarted on the same file.

docs/protocol.md ("Durability of a 200") promises that a 200 from ``POST /events`` on a SQLite
store means the event is committed and survives a crash.  Every other restart test stops the
server gracefully; here a server subprocess (tests/fault/_crash_server.py) is killed with
SIGKILL while several keep-alive posters are in the middle of POSTing, and:

* the store's ``<db>.lock`` (an ``flock``) is held while the server runs and free once it died,
  so a restarted server on the same file takes it over (no StoreError);
* every acknowledged event is in the database exactly once, under the id it was acknowledged
  with; ids are unique and increasing, epoch and id sequence survive the crash;
* live ``wsnotebook.connect`` subscribers resuming with ``since=`` across the kill and restart
  end with every stored event exactly once, in order, and no gap (nothing was lost).

Bounded: a few thousand events, every wait 60 s at most, loopback only; the server subprocess
exits by itself after 120 s whatever happens.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import itertools
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

from wsnotebook.client import Client, connect

pytestmark = pytest.mark.timeout(180)

SERVER_SCRIPT = Path(__file__).with_name("_crash_server.py")
WAIT = 60.0  # seconds, every wait on a condition
POSTERS = 4
PER_POSTER = 2500  # events a poster sends at most (it stops at the first failure)
KILL_AFTER = 1500  # acknowledged events (all posters together) before the SIGKILL
CLIENT_OPTS = {"backoff_base": 0.005, "backoff_cap": 0.05, "open_timeout": 5.0}


class ServerProcess:
    """One ``_crash_server.py`` subprocess on the given SQLite file."""

    def __init__(self, db: Path, port: int = 0) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(SERVER_SCRIPT), "--db", str(db), "--port", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self._read_info()

    def _read_info(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        result: list[dict[str, Any]] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                with contextlib.suppress(ValueError):
                    obj = json.loads(line)
                    if isinstance(obj, dict) and ("port" in obj or "error" in obj):
                        result.append(obj)
                        return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(WAIT)
        assert result, "the server subprocess did not report its port"
        assert "error" not in result[0], f"the server could not start: {result[0]['error']}"
        return result[0]

    @property
    def port(self) -> int:
        return int(self.info["port"])

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        assert self.proc.wait(WAIT) == -signal.SIGKILL

    def stop(self) -> None:
        """Graceful stop (stdin EOF), SIGKILL if it does not exit in time."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                with contextlib.suppress(OSError):
                    f.close()


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    made: list[ServerProcess] = []
    yield made
    for s in made:
        s.stop()


def start(servers: list[ServerProcess], db: Path, port: int = 0) -> ServerProcess:
    s = ServerProcess(db, port)
    servers.append(s)
    return s


class Poster(threading.Thread):
    """POSTs up to ``count`` events over ONE keep-alive connection (batches of ``batch``),
    recording the id of every acknowledged one; stops at the first failure."""

    def __init__(self, port: int, key: str, count: int, batch: int) -> None:
        super().__init__(daemon=True, name=f"poster-{key}")
        self.port, self.key, self.count, self.batch = port, key, count, batch
        self.acked: dict[tuple[str, int], int] = {}  # (source_app, j) -> acknowledged id
        self.failure: BaseException | None = None
        self.bad_reply: str | None = None  # a reply other than 200 (a test failure)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=WAIT)
        try:
            for j0 in range(0, self.count, self.batch):
                events = [
                    {
                        "source_app": self.key,
                        "session_id": f"s{j % 3}",
                        "hook_event_type": "PreToolUse",
                        "payload": {"j": j},
                    }
                    for j in range(j0, min(j0 + self.batch, self.count))
                ]
                body = json.dumps(events if self.batch > 1 else events[0])
                conn.request("POST", "/events", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 200:
                    self.bad_reply = f"{resp.status}: {data[:300]!r}"
                    return
                stored = json.loads(data)
                for s in stored if isinstance(stored, list) else [stored]:
                    self.acked[(s["source_app"], s["payload"]["j"])] = s["id"]
        except (OSError, http.client.HTTPException) as exc:  # the server was killed
            self.failure = exc
        finally:
            conn.close()


def run_posters(port: int, cycle: str, count: int = PER_POSTER) -> list[Poster]:
    """Posters with single events and with batches (grouped commits of several events)."""
    posters = [
        Poster(port, f"{cycle}p{k}", count, batch=1 if k % 2 == 0 else 10) for k in range(POSTERS)
    ]
    for p in posters:
        p.start()
    return posters


def acked_total(posters: list[Poster]) -> int:
    return sum(len(p.acked) for p in posters)


def kill_mid_ingest(server: ServerProcess, posters: list[Poster]) -> dict[tuple[str, int], int]:
    """SIGKILL ``server`` once KILL_AFTER events were acknowledged; the posters' acknowledged
    events after they all stopped."""
    wait_until(
        lambda: acked_total(posters) >= KILL_AFTER, WAIT, f"{KILL_AFTER} acknowledged events"
    )
    server.kill()
    for p in posters:
        p.join(WAIT)
        assert not p.is_alive(), f"{p.name} did not stop after the kill"
        assert p.bad_reply is None, f"{p.name} got {p.bad_reply}"
    # the kill came mid-ingest: the posters were still sending (bounded counts not reached)
    assert any(p.failure is not None for p in posters)
    assert acked_total(posters) < POSTERS * PER_POSTER
    acked: dict[tuple[str, int], int] = {}
    for p in posters:
        acked.update(p.acked)
    return acked


def lock_is_free(db: Path) -> bool:
    """Can another process take the store's ``<db>.lock`` flock right now?"""
    fd = os.open(str(db) + ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    finally:
        os.close(fd)


def get_json(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        data = resp.read()
        assert resp.status == 200, (path, resp.status, data[:300])
        return json.loads(data)
    finally:
        conn.close()


def stored_events(port: int) -> list[dict[str, Any]]:
    return list(get_json(port, "/events/recent?limit=100000"))


def assert_acked_exactly_once(
    events: list[dict[str, Any]], acked: dict[tuple[str, int], int]
) -> None:
    ids = [e["id"] for e in events]
    assert all(a < b for a, b in itertools.pairwise(ids)), "ids not unique and increasing"
    keys = Counter((e["source_app"], e["payload"]["j"]) for e in events)
    assert [k for k, n in keys.items() if n > 1] == [], "an event stored twice"
    by_key = {(e["source_app"], e["payload"]["j"]): e["id"] for e in events}
    lost = sorted(k for k in acked if k not in by_key)
    assert lost == [], f"{len(lost)} acknowledged events lost, e.g. {lost[:5]}"
    moved = [k for k, i in acked.items() if by_key[k] != i]
    assert moved == [], f"acknowledged events stored under another id, e.g. {moved[:5]}"


def test_sigkill_mid_ingest_loses_no_acknowledged_event_and_the_lock_is_taken_over(
    tmp_path: Path, servers: list[ServerProcess]
) -> None:
    db = tmp_path / "events.db"
    first = start(servers, db)
    assert not lock_is_free(db), "the running server does not hold <db>.lock"
    epoch = first.info["epoch"]

    acked = kill_mid_ingest(first, run_posters(first.port, "c1"))
    assert lock_is_free(db), "<db>.lock still held after the server process died"

    second = start(servers, db)  # takes the lock over: no StoreError
    assert second.info["epoch"] == epoch
    assert_acked_exactly_once(stored_events(second.port), acked)
    before = max(acked.values())

    # a second crash, on the restarted server: the id sequence went on, nothing reused
    acked2 = kill_mid_ingest(second, run_posters(second.port, "c2"))
    assert min(acked2.values()) > before
    third = start(servers, db)
    assert third.info["epoch"] == epoch
    events = stored_events(third.port)
    assert_acked_exactly_once(events, {**acked, **acked2})
    # the restarted server's sequence continues after everything stored
    after = get_json(third.port, "/health")
    assert after["seq"] >= events[-1]["id"] and after["epoch"] == epoch


def test_live_subscribers_resume_across_a_sigkill_with_every_event_exactly_once(
    tmp_path: Path, servers: list[ServerProcess], clients: list[Client]
) -> None:
    db = tmp_path / "events.db"
    first = start(servers, db)
    port = first.port
    url = f"ws://127.0.0.1:{port}/stream"
    subs = [connect(url, batch=b, **CLIENT_OPTS) for b in ("auto", None, 50)]
    clients.extend(subs)
    for c in subs:
        assert c.wait_state("open", timeout=WAIT)

    acked = kill_mid_ingest(first, run_posters(port, "c1"))
    second = start(servers, db, port=port)  # same port: the clients reconnect to it
    wait_until(lambda: all(c.connects >= 2 and c.state == "open" for c in subs), WAIT, "reconnects")
    posters = run_posters(port, "c2", count=250)
    for p in posters:
        p.join(WAIT)
        assert p.failure is None and p.bad_reply is None, (p.name, p.failure, p.bad_reply)
        acked.update(p.acked)

    events = stored_events(second.port)
    assert_acked_exactly_once(events, acked)
    stored_ids = [e["id"] for e in events]
    for c in subs:
        wait_until(lambda c=c: c.frame.total >= len(stored_ids), WAIT, "every stored event")
        got = c.frame.df["id"].tolist()
        dups = [i for i, n in Counter(got).items() if n > 1]
        assert dups == [], f"duplicates delivered: {dups[:5]}"
        # every stored event (all acknowledged ones among them) exactly once, in id order
        assert got == stored_ids
        assert len(c.frame.gaps) == 0 and c.metrics()["gaps"] == 0
