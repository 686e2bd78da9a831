"""Error replies are flushed before a 1008 close (issue 23, finding 7).

Ten invalid messages sent back to back must each get their ``error`` reply (docs/protocol.md:
"A rejected message gets {"type":"error",...}"; after 10 consecutive ones the server closes with
1008), and all ten arrive before the close frame.  Before the fix, a compressed connection (whose
messages go through the writer task's queue) lost the replies still queued when the tenth
message started the close: the client saw 0-9 of them.  Each test repeats the burst 20 times on
fresh connections so a race shows.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from wsnotebook.server import Server
from wsnotebook.server.ws import MAX_CONSECUTIVE_ERRORS

ROUNDS = 20


def read_until_close(ws: ClientConnection, timeout: float = 15.0) -> tuple[list[Any], int | None]:
    """Every message until the server's close frame, and that frame's code."""
    msgs: list[Any] = []
    try:
        while True:
            msgs.append(json.loads(ws.recv(timeout=timeout)))
    except ConnectionClosed as exc:
        return msgs, (exc.rcvd.code if exc.rcvd is not None else None)


def client_errors(srv: Server, code: str) -> int:
    return int(srv.metrics()["errors"].get(f"client_{code}", 0))


def burst_and_read(srv: Server, *, compression: str | None, read_initial_first: bool) -> None:
    with connect(srv.url, compression=compression, open_timeout=10) as ws:
        if read_initial_first:
            assert json.loads(ws.recv(timeout=10))["type"] == "initial"
        for _ in range(MAX_CONSECUTIVE_ERRORS):
            ws.send("{nope")
        msgs, code = read_until_close(ws)
    errors = [m for m in msgs if m["type"] == "error"]
    assert code == 1008
    assert [m["data"]["code"] for m in errors] == ["invalid_json"] * MAX_CONSECUTIVE_ERRORS
    # nothing else but the snapshot (when it was not read already) comes with them
    assert [m["type"] for m in msgs if m["type"] != "error"] == (
        [] if read_initial_first else ["initial"]
    )


@pytest.mark.parametrize("compression", [None, "deflate"], ids=["plain", "compressed"])
@pytest.mark.parametrize("read_initial_first", [True, False], ids=["after-initial", "at-once"])
def test_every_error_reply_of_a_burst_arrives_before_the_1008_close(
    server_factory: Any, compression: str | None, read_initial_first: bool
) -> None:
    srv = server_factory()
    before = client_errors(srv, "invalid_json")
    for _ in range(ROUNDS):
        burst_and_read(srv, compression=compression, read_initial_first=read_initial_first)
    assert client_errors(srv, "invalid_json") - before == ROUNDS * MAX_CONSECUTIVE_ERRORS


def test_error_replies_held_during_a_long_replay_arrive_before_the_1008_close(
    server_factory: Any, make_event: Any
) -> None:
    # a resume with several replay pages: the burst's replies are held until the replay ends
    srv = server_factory(compression=True)
    for start in range(0, 3000, 500):
        srv.publish([make_event(n=i) for i in range(start, start + 500)])
    for _ in range(5):
        with connect(srv.url + "?since=0", open_timeout=10) as ws:
            for _ in range(MAX_CONSECUTIVE_ERRORS):
                ws.send("{nope")
            msgs, code = read_until_close(ws)
        assert code == 1008
        errors = [m for m in msgs if m["type"] == "error"]
        assert len(errors) == MAX_CONSECUTIVE_ERRORS
