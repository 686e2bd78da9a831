"""The monitor's status tells the truth with real clients and servers: a refused URL says so
and names the URL, a closed client and a stopped server are shown as such (no traceback), a
stopped monitor says "stopped"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from _helpers import use_fake_comms

import wsnotebook as wsn
import wsnotebook.widget as W

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_kernel_comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_fake_comms(monkeypatch)
    yield
    W.stop_all()


def test_a_refused_url_and_a_closed_client(wait_until) -> None:  # type: ignore[no-untyped-def]
    client = wsn.connect("ws://127.0.0.1:9/stream")
    try:
        mon = wsn.monitor(client, refresh_hz=20)
        wait_until(lambda: mon.status.get("reason") == "connection refused", timeout=20)
        assert mon.status["state"] in ("reconnecting", "connecting")
        assert mon.status["url"] == "ws://127.0.0.1:9/stream"
    finally:
        client.close()
    closed = wsn.monitor(client, refresh_hz=20)  # a closed client: shown, not raised
    closed.refresh()
    assert closed.status["state"] == "closed"
    closed.stop()
    assert closed.status["state"] == "stopped"


def test_a_stopped_server_opens_no_client_and_says_so() -> None:
    server = wsn.serve(port=0)
    server.stop()
    mon = wsn.monitor(server, refresh_hz=20)
    mon.refresh()
    assert mon.client is None and mon.status["state"] == "server stopped"
