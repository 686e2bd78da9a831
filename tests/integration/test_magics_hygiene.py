"""%ws hygiene: a magic that fails leaves what runs untouched (a bad URL, a busy port), and
%unload_ext wsnotebook stops everything wsnotebook runs, started by %ws or not."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import wsnotebook.widget as W

pytestmark = pytest.mark.timeout(90)


def test_a_failed_connect_or_serve_leaves_the_running_ones(shell: InteractiveShell) -> None:
    server = shell.run_line_magic("ws", "serve --port 0")
    client = shell.run_line_magic("ws", "connect")
    assert client.wait_state("open", timeout=20)
    with pytest.raises(UsageError):
        shell.run_line_magic("ws", "connect 'not a url'")
    assert shell.user_ns["ws_client"] is client and client.state == "open"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(Exception):  # noqa: B017 - a UsageError or the OSError of the bind
            shell.run_line_magic("ws", f"serve --port {port}")
    assert shell.user_ns["ws_server"] is server and server.running
    assert client.state == "open"


@pytest.mark.parametrize(
    "bad",
    ["--store bogus://x", "--store sqlite:////nonexistent_dir/x.db", "--host 999.1.1.1"],
)
def test_a_failed_serve_on_the_same_port_leaves_the_running_server(
    shell: InteractiveShell, bad: str
) -> None:
    # --port omitted: the new server would take the running one's port, which was stopped
    # before serve() failed
    server = shell.run_line_magic("ws", "serve --port 0")
    with pytest.raises(UsageError):
        shell.run_line_magic("ws", f"serve {bad}")
    assert shell.user_ns["ws_server"] is server and server.running


def test_a_failed_demo_leaves_the_running_demo(shell: InteractiveShell) -> None:
    shell.run_line_magic("ws", "serve --port 0")
    demo = shell.run_line_magic("ws", "demo --rate 10")
    for bad in ("--batch 0", "--max-events -1", "--replay /nonexistent/x.parquet"):
        with pytest.raises(UsageError):
            shell.run_line_magic("ws", f"demo {bad}")
        assert shell.user_ns["ws_demo"] is demo and demo.running, bad
    again = shell.run_line_magic("ws", "demo --rate 20")  # a good one replaces it
    assert again is not demo and again.running and not demo.running


def test_serve_on_another_port_stops_the_demo_and_client_of_the_old_server(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    old = shell.run_line_magic("ws", "serve --port 0")
    demo = shell.run_line_magic("ws", "demo --rate 10")
    client = shell.run_line_magic("ws", "connect")
    assert client.wait_state("open", timeout=20)
    with socket.socket() as probe:  # a free port other than the running server's
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    new = shell.run_line_magic("ws", f"serve --port {port}")
    assert new is not old and new.running and not old.running
    # they would publish into, or reconnect forever to, a server that is gone
    assert not demo.running and client.state == "closed"
    assert "stopped ws_demo and ws_client" in capsys.readouterr().out


def test_serve_with_another_store_on_the_same_port_keeps_the_client(
    shell: InteractiveShell, tmp_path: Any
) -> None:
    old = shell.run_line_magic("ws", "serve --port 0")
    demo = shell.run_line_magic("ws", "demo --rate 10")
    client = shell.run_line_magic("ws", "connect")
    assert client.wait_state("open", timeout=20)
    new = shell.run_line_magic("ws", f"serve --store sqlite:///{tmp_path}/x.db")
    assert new.port == old.port and new.running and not old.running
    # the demo fed the old server object (stopped); the client's URL is the new server's
    assert not demo.running and shell.user_ns["ws_client"] is client
    tick = threading.Event()
    deadline = time.monotonic() + 30
    while client.metrics()["connects"] < 2 and time.monotonic() < deadline:
        tick.wait(0.05)  # a bounded poll of the client's counter
    assert client.metrics()["connects"] >= 2 and client.state == "open"  # it reconnected


def test_unload_stops_everything_wsnotebook_runs(shell: InteractiveShell) -> None:
    import wsnotebook as wsn

    server = wsn.serve(port=0)  # not started by %ws
    client = wsn.connect(server.url)
    mon = wsn.monitor(client)
    assert client.wait_state("open", timeout=20) and mon.running
    shell.run_line_magic("unload_ext", "wsnotebook")
    assert not server.running and client.state == "closed" and not mon.running
    assert mon not in W.running_monitors()


def test_rerunning_a_connect_cell_returns_or_replaces_its_client() -> None:
    import wsnotebook as wsn

    server = wsn.serve(port=0)
    ns: dict[str, object] = {"wsn": wsn, "url": server.url}
    cell = compile("client = wsn.connect(url)", "/tmp/ipykernel_1/0123abcd.py", "exec")
    changed = compile("client = wsn.connect(url, batch=10)", "/tmp/ipykernel_1/0123abcd.py", "exec")
    extra = compile("other = wsn.connect(url, new=True)", "/tmp/ipykernel_1/0123abcd.py", "exec")
    try:
        exec(cell, ns)
        first = ns["client"]
        exec(cell, ns)  # the same cell again: the same running client
        assert ns["client"] is first
        exec(changed, ns)  # other options: the old one is replaced, not stacked
        assert ns["client"] is not first and first.state == "closed"  # type: ignore[attr-defined]
        exec(extra, ns)  # asked for a second one
        assert ns["other"] is not ns["client"]
        a, b = wsn.connect(server.url), wsn.connect(server.url)  # a script: two clients
        assert a is not b
        a.close()
        b.close()
    finally:
        for name in ("client", "other"):
            ns[name].close()  # type: ignore[attr-defined]
        server.stop()
