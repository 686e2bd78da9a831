"""The ``columns`` wire format over a real socket: negotiated with ``?format=columns`` (our
client's default), live batches arrive as ``columns`` messages and store what a JSON client
stores; events the columns cannot hold arrive as a ``batch``; other clients see no change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from websockets.sync.client import connect as ws_connect

from wsnotebook.client import Client, connect
from wsnotebook.server import Server, serve

pytestmark = pytest.mark.timeout(120)

FAST = {"backoff_base": 0.005, "backoff_cap": 0.05, "open_timeout": 5.0}
COLUMNS = ["id", "source_app", "session_id", "hook_event_type", "payload", "summary", "timestamp"]


def ev(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "source_app": "cols",
        "session_id": f"s{i % 3}",
        "hook_event_type": "PostToolUse",
        "payload": {"i": i, "text": "ü✓" * (i % 4)},
        **({"summary": f"e{i}"} if i % 2 else {}),
        **extra,
    }


@pytest.fixture
def server() -> Iterator[Server]:
    srv = serve(port=0)
    yield srv
    srv.stop()


def types(c: Client) -> set[str]:
    df = c.traffic.df
    return set(df[df["n_events"] > 0]["type"].astype(str)) - {"initial"}


@pytest.mark.parametrize("batch", [25, "auto"])
def test_columns_clients_store_what_json_clients_store(
    server: Server, clients: list[Client], batch: Any
) -> None:
    cols = connect(server.url, batch=batch, interval_ms=20 if batch == 25 else None,
                   in_process=False, **FAST)  # fmt: skip
    json = connect(server.url, batch=batch, wire_format="json", in_process=False, **FAST)
    clients += [cols, json]
    cols.wait_state("open")
    json.wait_state("open")
    for k in range(10):
        server.publish([ev(k * 100 + i) for i in range(100)])
    server.publish([ev(5000, humanInTheLoop={"question": "ok?", "type": "question"}), ev(5001)])
    total = 1002
    cols.wait_for(total, timeout=30)
    json.wait_for(total, timeout=30)
    a, b = cols.frame.df, json.frame.df
    assert a["id"].tolist() == list(range(1, total + 1))
    assert a[COLUMNS].equals(b[COLUMNS])
    assert "columns" in types(cols)
    assert "columns" not in types(json)
    assert cols.metrics()["invalid_events"] == 0 and cols.metrics()["unknown_messages"] == 0


def test_a_foreign_client_without_the_parameter_sees_json_batches(server: Server) -> None:
    with ws_connect(server.url + "?batch=10&interval_ms=20") as ws:
        first = orjson.loads(ws.recv())
        assert first["type"] == "initial"
        server.publish([ev(i) for i in range(30)])
        got = 0
        deadline = time.monotonic() + 20
        while got < 30 and time.monotonic() < deadline:
            msg = orjson.loads(ws.recv(timeout=20))
            assert msg["type"] == "batch"
            got += len(msg["data"])
        assert got == 30
