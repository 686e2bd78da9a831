"""Memory bounded in bytes, not only in event count (issue 23, finding 2).

Reproduces the finding on loopback, scaled down: ~200 POSTs of ~1 MB events into a server with
``retain_bytes=32 MiB`` (the finding: 1,000 such POSTs took RSS from 157 MB to 1.1 GB, and one
``GET /events/recent?limit=1000`` returned 954 MB).  The store's byte counter stays within the
budget, the oldest events are evicted (a client resuming from before them gets ``reset``), and
``/events/recent`` and the WebSocket replay stay within ``max_message_bytes`` per response /
message.  RSS is printed, never asserted (noisy)."""

from __future__ import annotations

import http.client
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from websockets.sync.client import ClientConnection, connect

from wsnotebook.errors import ConfigError
from wsnotebook.server import Server

MiB = 1 << 20
BUDGET = 32 * MiB
MAX_MESSAGE = 4 * MiB
EVENTS = 200
BLOB = "x" * 1_000_000  # an event of ~1 MB of JSON


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        match = re.search(r"VmRSS:\s+(\d+) kB", fh.read())
    return int(match.group(1)) / 1024 if match else float("nan")


def post_big_events(server: Server, count: int) -> None:
    """POST ``count`` ~1 MB events over one keep-alive connection; each must be acknowledged."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        for i in range(count):
            body = json.dumps(
                {
                    "source_app": "big",
                    "session_id": f"s{i}",
                    "hook_event_type": "PreToolUse",
                    "payload": {"n": i, "blob": BLOB},
                }
            )
            conn.request("POST", "/events", body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
    finally:
        conn.close()


def read_replay(ws: ClientConnection, seq: int) -> tuple[dict[str, Any], list[int]]:
    """The ``initial`` message and every event id replayed up to ``seq``; asserts each message
    is within ``MAX_MESSAGE``."""
    raw = ws.recv(timeout=30)
    assert len(raw) <= MAX_MESSAGE
    initial = json.loads(raw)
    assert initial["type"] == "initial"
    got = [e["id"] for e in initial["data"]]
    while initial["more"] and (not got or got[-1] < seq):
        raw = ws.recv(timeout=30)
        assert len(raw) <= MAX_MESSAGE
        msg = json.loads(raw)
        assert msg["type"] in ("batch", "gap"), msg["type"]
        if msg["type"] == "batch":
            got += [e["id"] for e in msg["data"]]
    return initial, got


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_big_events_stay_within_retain_bytes_and_every_reply_within_max_message_bytes(
    kind: str, tmp_path: Any, server_factory: Callable[..., Server], http_request: Any
) -> None:
    store = "memory" if kind == "memory" else f"sqlite:///{tmp_path / 'big.db'}"
    server = server_factory(
        store=store,
        retain_bytes=BUDGET,
        max_message_bytes=MAX_MESSAGE,
        heartbeat_interval=0,
        initial_limit=300,
    )
    before = rss_mb()
    post_big_events(server, EVENTS)
    after = rss_mb()
    stats = server.metrics()["store"]
    print(
        f"\n[{kind}] RSS {before:.0f} MB -> {after:.0f} MB after {EVENTS} x ~1 MB events; "
        f"store holds {stats['retained_bytes'] / MiB:.1f} MiB in memory (budget 32 MiB)"
    )
    assert stats["retain_bytes"] == BUDGET
    assert 0.8 * BUDGET < stats["retained_bytes"] <= BUDGET
    assert stats["last_id"] == EVENTS

    # GET /events/recent?limit=1000: the newest events that fit one message, oldest first,
    # and how many were left out
    resp = http_request("GET", f"{server.http_url}/events/recent?limit=1000")
    assert resp.status == 200
    assert len(resp.body) <= MAX_MESSAGE
    recent = [e["id"] for e in resp.json()]
    assert recent == list(range(EVENTS - len(recent) + 1, EVENTS + 1))
    assert 1 <= len(recent) <= 4
    assert int(resp.headers["X-Wsnotebook-Truncated"]) == stats["retained"] - len(recent)
    assert "X-Wsnotebook-Truncated" in resp.headers["Access-Control-Expose-Headers"]
    assert server.metrics()["recent_truncated"] == 1

    # the initial snapshot of a new client: the newest events that fit, within the limit
    with connect(server.url, max_size=None) as ws:
        raw = ws.recv(timeout=30)
        assert len(raw) <= MAX_MESSAGE
        assert [e["id"] for e in json.loads(raw)["data"]] == recent

    # a client resuming from id 5
    url = f"{server.url}?since=5&epoch={server.epoch}"
    with connect(url, max_size=None) as ws:
        initial, got = read_replay(ws, EVENTS)
    if kind == "memory":
        # ids 6.. were evicted for bytes: the documented reset, replaying what is retained
        assert stats["first_id"] > 6
        assert stats["evicted_by_bytes"] == stats["first_id"] - 1
        assert initial["reset"] is True
        assert got == list(range(stats["first_id"], EVENTS + 1))
    else:
        # the database keeps them (retain is by count); the cache is within the budget and
        # the replay from disk is paged in bytes
        assert stats["first_id"] == 1 and stats["retained"] == EVENTS
        assert stats["cached"] < EVENTS and stats["cache_evicted_by_bytes"] > 0
        assert initial["reset"] is False and initial["more"] is True
        assert got == list(range(6, EVENTS + 1))


def test_recent_that_fits_has_no_truncation_header(
    server_factory: Callable[..., Server], http_request: Any, make_event: Any
) -> None:
    server = server_factory(heartbeat_interval=0)
    server.publish([make_event(n=i) for i in range(5)])
    resp = http_request("GET", f"{server.http_url}/events/recent?limit=1000")
    assert resp.status == 200 and [e["id"] for e in resp.json()] == [1, 2, 3, 4, 5]
    assert "X-Wsnotebook-Truncated" not in resp.headers
    metrics = server.metrics()
    assert metrics["recent_truncated"] == 0
    # the body is the stored bytes of the five events, in brackets with four commas
    assert metrics["store"]["retained_bytes"] == len(resp.body) - 6


def test_retain_bytes_out_of_bounds_is_refused_by_serve(server_factory: Any) -> None:
    with pytest.raises(ConfigError, match="retain_bytes"):
        server_factory(retain_bytes=10)
