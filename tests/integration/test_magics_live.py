"""%ws serve / demo / connect / monitor / stats / stop against a real loopback server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import wsnotebook.widget as W

pytestmark = pytest.mark.timeout(90)


def wait_until(pred: Callable[[], bool], timeout: float = 20.0) -> bool:
    cond = threading.Condition()
    deadline = time.monotonic() + timeout
    with cond:
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            cond.wait(min(0.05, left))
    return True


def test_serve_demo_monitor_stats_stop_in_a_shell(
    shell: InteractiveShell, capsys: pytest.CaptureFixture
):
    from wsnotebook import server as _server
    from wsnotebook.client import client as _client
    from wsnotebook.demo import producer as _demo

    server = shell.run_line_magic("ws", "serve --port 0")
    assert server.running and shell.user_ns["ws_server"] is server
    assert shell.run_line_magic("ws", "serve --port 0") is server  # re-run: same server

    producer = shell.run_line_magic("ws", "demo --rate 200")
    assert shell.user_ns["ws_demo"] is producer

    mon = shell.run_line_magic("ws", "monitor")  # no client yet: monitors the server
    assert isinstance(mon, W.Monitor) and mon.server is server
    assert wait_until(lambda: mon.status.get("state") == "open")
    assert wait_until(lambda: mon.frame.total >= 20)
    assert wait_until(lambda: mon.sends > 0 and mon.status.get("events", 0) > 0)
    assert wait_until(lambda: mon.status.get("clients") == 1)

    client = shell.run_line_magic("ws", "connect")
    assert shell.user_ns["ws_client"] is client and client.url.startswith(server.url[:-7])
    assert shell.run_line_magic("ws", "connect") is client  # re-run: same client
    assert client.wait_for(10, timeout=20)
    mon2 = shell.run_line_magic("ws", "monitor")  # now the client
    assert mon2.client is client and mon.running  # a different target: both live

    capsys.readouterr()
    stats = shell.run_line_magic("ws", "stats")
    assert stats["ws_server"]["events_in"] > 0 and "ws_client" in stats
    assert "ws_server: " in str(stats)

    own_client = mon.client
    stopped = shell.run_line_magic("ws", "stop")
    assert stopped >= 5
    assert not server.running and client.state == "closed" and not producer.running
    assert not mon.running and not mon2.running and own_client.state == "closed"
    assert server not in _server.running_servers()
    assert client not in _client.running_clients()
    assert producer not in _demo.active_producers()


def test_stop_all_stops_objects_started_outside_the_extension(shell: InteractiveShell):
    import wsnotebook as wsn
    from wsnotebook import server as _server

    server = wsn.serve(port=0)
    client = wsn.connect(server.url)
    try:
        assert client.wait_state("open", timeout=20)
        shell.run_line_magic("ws", "stop all")
        assert not server.running and client.state == "closed"
        assert server not in _server.running_servers()
    finally:
        client.close()
        server.stop()


def test_stop_all_also_stops_demo_producers_and_monitors_started_outside(
    shell: InteractiveShell,
) -> None:
    import wsnotebook as wsn
    from wsnotebook.demo import producer as _demo
    from wsnotebook.demo import start_demo
    from wsnotebook.frame import EventFrame

    server = wsn.serve(port=0)
    producer = start_demo(server, rate=50)
    mon = wsn.monitor(EventFrame())
    try:
        assert producer.running and mon.running
        stopped = shell.run_line_magic("ws", "stop all")
        assert stopped >= 3  # the producer, the monitor and the server reported running
        assert not producer.running and not mon.running and not server.running
        assert producer not in _demo.active_producers() and mon not in W.running_monitors()
    finally:
        producer.stop()
        mon.stop()
        server.stop()


def test_rerunning_serve_with_other_options_replaces_the_server_instead_of_leaking_it(
    shell: InteractiveShell, tmp_path: Any
) -> None:
    from wsnotebook import server as _server

    first = shell.run_line_magic("ws", "serve --port 0 --store memory")
    assert shell.run_line_magic("ws", "serve --port 0 --store memory") is first  # same options
    db = f"sqlite:///{tmp_path / 'e.db'}"
    second = shell.run_line_magic("ws", f"serve --port 0 --store {db}")
    assert second is not first and not first.running  # the replaced one is stopped
    assert shell.run_line_magic("ws", f"serve --port 0 --store {db}") is second
    mine = [s for s in _server.running_servers() if s in (first, second)]
    assert mine == [second]
    shell.run_line_magic("ws", "stop all")


def test_a_user_variable_named_ws_server_is_not_taken_for_a_server(
    shell: InteractiveShell,
) -> None:
    shell.user_ns["ws_server"] = "ws://127.0.0.1:9/stream"  # the user's own string
    server = shell.run_line_magic("ws", "serve --port 0")
    assert server.running and shell.user_ns["ws_server"] is server
    shell.run_line_magic("ws", "stop all")


def test_serve_again_on_the_port_it_picked_returns_the_same_server() -> None:
    import wsnotebook as wsn

    server = wsn.serve(port=0)
    try:
        assert wsn.serve(port=server.port) is server  # was: ConfigError "different options"
    finally:
        server.stop()
