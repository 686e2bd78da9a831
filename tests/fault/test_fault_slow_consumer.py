"""A client that stops reading is dropped with 1013, never stalls the others, never grows the
server's memory past its queue bound, and resumes without loss afterwards."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest
from _paced import wait_until

import wsnotebook as wsn

pytestmark = pytest.mark.timeout(180)

QUEUE = 200
EVENTS = 30_000  # upper bound: loopback socket buffers can absorb 10+ MB first
PAD_BYTES = 1_000  # ~2 KB of incompressible hex per event: fills buffers even with deflate


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def batch(start: int, n: int) -> list[dict[str, Any]]:
    return [
        {
            "source_app": "slow",
            "session_id": "s",
            "hook_event_type": "Notification",
            "payload": {"n": i, "pad": os.urandom(PAD_BYTES).hex()},
        }
        for i in range(start, start + n)
    ]


def test_paused_client_is_dropped_with_1013_others_unaffected_and_resume_is_lossless(
    chaos_proxy, logs
):
    server = wsn.serve(port=0, queue_size=QUEUE)
    proxy = chaos_proxy("127.0.0.1", server.port)
    fast = wsn.connect(server.url, batch=None, backoff_base=0.01, backoff_cap=0.1)
    slow = wsn.connect(
        f"ws://127.0.0.1:{proxy.port}/stream", batch=None, backoff_base=0.01, backoff_cap=0.1
    )
    try:
        assert fast.wait_state("open", 15) and slow.wait_state("open", 15)
        server.publish(batch(0, 10))
        slow.wait_for(10, timeout=15)
        proxy.freeze()  # the slow client stops reading
        sent = 10
        while sent < EVENTS and server.metrics()["dropped_slow_clients"] == 0:
            server.publish(batch(sent, 200))
            sent += 200
        m = server.metrics()
        assert m["dropped_slow_clients"] == 1, f"no drop after {sent} events: {m}"
        # memory bound: no send queue ever held more than queue_size messages
        assert m["queue_depth_max"] <= QUEUE
        # the other client kept receiving everything, while the slow one was stuck
        fast.wait_for(sent, timeout=30)
        assert fast.frame.total == sent
        proxy.thaw()  # the slow client reads its buffer, sees 1013, and resumes with ?since=
        wait_until(lambda: slow.connects >= 2, 30, "slow client reconnect")
        slow.wait_for(sent, timeout=30)
        assert "1013" in str(slow.last_disconnect) or slow.errors.get("close_1013"), slow.metrics()
        df = slow.frame.df
        assert sorted(df["id"]) == list(range(1, sent + 1))
        assert len(slow.frame.gaps) == 0
        assert not logs.unhandled(), logs.unhandled()
    finally:
        fast.close()
        slow.close()
        server.stop()
