"""The chaos run of ``test_fault_disconnects.py`` (100 forced disconnects and a restart, sqlite
store: nothing lost, nothing duplicated) for each wire format of the client: ``columns`` is the
default that file runs; this one runs the JSON ``batch`` messages (``wire_format="json"``) and
checks which messages each run actually carried."""

from __future__ import annotations

import functools
from typing import Any

import pytest
from test_fault_disconnects import EVENTS, frame_numbers, run_chaos

import wsnotebook as wsn

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("wire_format", ["json", "columns"])
def test_every_wire_format_survives_the_chaos_run(
    tmp_path: Any, chaos_proxy: Any, logs: Any, monkeypatch: pytest.MonkeyPatch, wire_format: str
) -> None:
    monkeypatch.setattr(wsn, "connect", functools.partial(wsn.connect, wire_format=wire_format))
    store = f"sqlite:///{tmp_path}/events.db"
    server, client, _producer, faults = run_chaos(store=store, chaos_proxy=chaos_proxy, logs=logs)
    try:
        assert faults["restart"] == 1
        client.wait_for(EVENTS, timeout=60)
        counts = frame_numbers(client)
        assert set(counts) == set(range(EVENTS))
        assert sum(c - 1 for c in counts.values()) == 0
        assert client.frame.df["id"].tolist() == list(range(1, EVENTS + 1))
        assert len(client.frame.gaps) == 0
        kinds = set(client.traffic.df["type"].astype(str))
        if wire_format == "json":
            assert "columns" not in kinds
        else:
            assert "columns" in kinds
        assert not logs.unhandled(), "\n".join(logs.unhandled())
    finally:
        client.close()
        server.stop()
