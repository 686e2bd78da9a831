"""How big is the loss when a server restarts with a fresh (in-memory) epoch?

The client can only know a lower bound: the last ``seq`` it heard from the old server.  Events
the old server accepted after that are lost too, so the recorded gap must not claim an exact
end it cannot know.  A scripted server makes the scenario deterministic.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.sync.server import serve as ws_serve

import wsnotebook as wsn

pytestmark = pytest.mark.timeout(60)


def ev(i: int) -> dict[str, Any]:
    return {"source_app": "a", "session_id": "s", "hook_event_type": "t", "payload": {}, "id": i}


class ScriptedServer:
    """Each connection gets the next script (a list of JSON messages) and is then closed 1001."""

    def __init__(self) -> None:
        self.scripts: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        self.server = ws_serve(self._handler, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handler(self, ws: Any) -> None:
        try:
            script = self.scripts.get(timeout=20)
        except queue.Empty:
            return
        for msg in script:
            ws.send(json.dumps(msg))
        ws.close(1001, "server stopping")

    def close(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    s = ScriptedServer()
    yield s
    s.close()


def test_a_new_epoch_gap_does_not_claim_an_end_the_client_cannot_know(scripted):
    # old epoch A: the client receives 1..10, then hears seq 20 (11..20 still in flight), and
    # the old server goes on to accept 21..60 before it restarts empty as epoch B.
    scripted.scripts.put(
        [
            {
                "type": "initial",
                "data": [ev(i) for i in range(1, 11)],
                "seq": 10,
                "epoch": "A",
                "reset": False,
                "more": False,
            },
            {"type": "heartbeat", "timestamp": int(time.time() * 1000), "seq": 20, "epoch": "A"},
        ]
    )
    scripted.scripts.put(
        [{"type": "initial", "data": [], "seq": 0, "epoch": "B", "reset": True, "more": False}]
    )
    client = wsn.connect(f"ws://127.0.0.1:{scripted.port}/stream", backoff_base=0.01)
    try:
        deadline = time.monotonic() + 20
        while len(client.frame.gaps) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        gaps = client.frame.gaps
        assert len(gaps) == 1, gaps
        assert int(gaps.iloc[0]["from_id"]) == 11
        assert int(gaps.iloc[0]["to_id"]) == -1, gaps.to_dict("records")
        # what the client does know is said: 11..20 (announced by the heartbeat) are lost
        assert gaps.iloc[0]["reason"] == (
            "new epoch B: at least 10 events lost (last seq heard 20); end unknown"
        )
        m = client.metrics()
        assert (m["gaps"], m["gaps_open_ended"], m["gap_events_at_least"]) == (1, 1, 10)
    finally:
        client.close()


def _run_two_epochs(scripted: ScriptedServer, final_seq: int) -> Any:
    """Old epoch A delivers 1..10, then stops gracefully announcing ``final_seq``; B is empty."""
    scripted.scripts.put(
        [
            {
                "type": "initial",
                "data": [ev(i) for i in range(1, 11)],
                "seq": 10,
                "epoch": "A",
                "reset": False,
                "more": False,
            },
            {
                "type": "heartbeat",
                "timestamp": int(time.time() * 1000),
                "seq": final_seq,
                "epoch": "A",
                "final": True,
            },
        ]
    )
    scripted.scripts.put(
        [
            {
                "type": "initial",
                "data": [ev(1)],
                "seq": 1,
                "epoch": "B",
                "reset": True,
                "more": False,
            }
        ]
    )
    return wsn.connect(f"ws://127.0.0.1:{scripted.port}/stream", backoff_base=0.01)


def test_a_graceful_restart_announces_its_final_id_so_the_gap_is_exact(scripted):
    client = _run_two_epochs(scripted, final_seq=25)
    try:
        deadline = time.monotonic() + 20
        while len(client.frame.gaps) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        gaps = client.frame.gaps.to_dict("records")
        assert [(g["from_id"], g["to_id"]) for g in gaps] == [(11, 25)], gaps
        assert "15 events lost" in gaps[0]["reason"]
        assert client.metrics()["gap_events_at_least"] == 15
        assert client.wait_for(11, timeout=20)  # epoch B's event 1 is new, not a duplicate
    finally:
        client.close()


def test_a_graceful_restart_that_lost_nothing_records_no_gap(scripted):
    client = _run_two_epochs(scripted, final_seq=10)
    try:
        assert client.wait_for(11, timeout=20)  # 1..10 of A, then 1 of B
        assert len(client.frame.gaps) == 0
        assert client.metrics()["gaps"] == 0
    finally:
        client.close()
