"""A real kernel: restarting or shutting it down frees the server's port, and the restarted
kernel can serve on the same port again (re-running the notebook just works)."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

pytestmark = pytest.mark.timeout(180)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait(predicate: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _run(kc: Any, code: str) -> dict[str, Any]:
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda msg: None)
    assert reply["content"]["status"] == "ok", reply["content"]
    return dict(reply["content"])


def test_kernel_restart_and_shutdown_free_the_port_and_serving_again_works() -> None:
    port = _free_port()
    km = jupyter_client.KernelManager(kernel_name="python3")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        serve = f"import wsnotebook as wsn; s = wsn.serve(port={port}); assert s.port == {port}"
        _run(kc, serve)
        assert not _port_free(port)

        km.restart_kernel(now=False)  # graceful: the kernel's atexit stops the server
        kc.wait_for_ready(timeout=60)
        assert _wait(lambda: _port_free(port)), "port still bound after the kernel restart"

        _run(kc, serve)  # the restarted kernel serves on the same port again
        assert not _port_free(port)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=False)
    assert _wait(lambda: _port_free(port)), "port still bound after the kernel shutdown"
