"""The in-process path loses and duplicates nothing: forced closes and server restarts.

``connect(server.url, in_process=True)`` subscribes without a socket (``client/local.py`` and
``server/local.py``).  While a paced producer streams events numbered ``payload.n``, the server
closes the subscription again and again with the codes a socket client sees (1013: slow
consumer, 1012: restart, 1001: going away), and midway it restarts on the same port.  The
client must resume each time (``since``/``epoch``) through the in-process path again (its
metrics say so, and no TCP byte moved) and end with every number exactly once.

Counts: 10,000 events and 40 forced closes (``WSN_FULL=1``: 30,000 and 100).
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from _paced import Producer, close_subscribers, frame_numbers, wait_until

import wsnotebook as wsn
from wsnotebook.protocol import CLOSE_GOING_AWAY, CLOSE_RESTART, CLOSE_TRY_AGAIN

FULL = os.environ.get("WSN_FULL") == "1"
EVENTS = 30_000 if FULL else 10_000
CLOSES = 100 if FULL else 40
CODES = (CLOSE_TRY_AGAIN, CLOSE_RESTART, CLOSE_GOING_AWAY)

pytestmark = pytest.mark.timeout(300)


def run(store: str, logs: Any) -> tuple[Any, Any]:
    server = wsn.serve(port=0, store=store, heartbeat_interval=0.2)
    port = server.port
    client = wsn.connect(
        server.url, in_process=True, backoff_base=0.01, backoff_cap=0.05, open_timeout=5.0
    )
    assert client.wait_state("open", timeout=15)
    producer = Producer(server, EVENTS, rate=EVENTS / 10.0, source_app="local", sessions=5)
    producer.start()
    try:
        for i in range(CLOSES):
            wait_until(
                lambda i=i: producer.sent >= EVENTS * i // (CLOSES + 1) or producer.error,
                60,
                "producer progress",
            )
            wait_until(lambda: client.state == "open", 30, "client open")
            before = client.connects
            if i == CLOSES // 2:
                producer.pause()
                server.stop()
                server = wsn.serve(port=port, store=store, heartbeat_interval=0.2)
                producer.server = server
                producer.gate.set()
            else:
                close_subscribers(server, CODES[i % len(CODES)])
            wait_until(lambda b=before: client.connects > b, 30, f"reconnect after close {i}")
        producer.join(120)
        assert not producer.is_alive()
        assert producer.error is None, repr(producer.error)
        wait_until(lambda: (EVENTS - 1) in frame_numbers(client), 60, "the last event")
    except BaseException:
        producer.stop_flag = True
        producer.gate.set()
        client.close()
        server.stop()
        raise
    m = client.metrics()
    # Every connection but possibly one went in-process: right after the restart a reconnect
    # may reach the new server's socket in the moment between its bind and its registration.
    assert m["connects"] >= CLOSES + 1
    assert m["in_process"]["connects"] >= m["connects"] - 1, m["in_process"]
    assert m["in_process"]["active"]
    assert not logs.unhandled(), "\n".join(logs.unhandled())
    return server, client


def test_in_process_sqlite_closes_and_restart_lose_and_duplicate_nothing(tmp_path, logs):
    server, client = run(f"sqlite:///{tmp_path}/events.db", logs)
    try:
        counts = frame_numbers(client)
        assert set(counts) == set(range(EVENTS))
        assert sum(c - 1 for c in counts.values()) == 0
        assert client.frame.df["id"].tolist() == list(range(1, EVENTS + 1))
        assert len(client.frame.gaps) == 0
    finally:
        client.close()
        server.stop()


def test_in_process_memory_restart_loses_nothing_in_flight(logs):
    """A graceful stop delivers the tick's events and the final heartbeat before the close
    (delivery is a call, nothing is in flight): the new epoch's client records no gap, and
    every number arrives exactly once."""
    server, client = run("memory", logs)
    try:
        counts = frame_numbers(client)
        assert set(counts) == set(range(EVENTS))
        assert sum(c - 1 for c in counts.values()) == 0
        assert len(client.frame.gaps) == 0
        assert client.metrics()["gaps"] == 0
    finally:
        client.close()
        server.stop()
