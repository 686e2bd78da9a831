"""A kernel's server reached through Jupyter's own front door (issue 24).

A real ``jupyter_server`` with ``jupyter-server-proxy`` enabled runs on 127.0.0.1 with a token;
a kernel in it calls ``wsn.serve()``.  Then, through the Jupyter URL only
(``http://127.0.0.1:<jupyter port>/proxy/<port>/...``):

* a hook-shaped ``POST /events`` with the Jupyter token is stored;
* a ``wsn.connect()`` WebSocket client through the proxy (``?token=``) receives it;
* the same without a token is refused by Jupyter (and nothing is stored);
* ``server.public_urls`` inside the kernel names exactly those URLs (found from the Jupyter
  runtime file of the kernel's parent process);
* ``python -m wsnotebook send`` takes such a URL with ``--jupyter-token``;
* a forwarded request naming a ``Host`` that only Jupyter knows passes the kernel server's Host
  guard because it carries Jupyter's token; the same ``Host`` sent straight to the kernel's
  server without it is still 421 (nothing else new is accepted).

Bounded: every wait 60 s at most, loopback only; the Jupyter server is terminated at teardown.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("jupyter_server_proxy")
pytest.importorskip("jupyter_server")
from websockets.sync.client import connect as ws_connect

from wsnotebook.cli import EXIT_OK, main
from wsnotebook.client import connect
from wsnotebook.errors import AuthError

pytestmark = [pytest.mark.timeout(120)]

TOKEN = "jupyter-test-token-" + uuid.uuid4().hex[:8]
WAIT = 60.0
HOOK_HEADERS = {
    "Content-Type": "application/json",
    "User-Agent": "Claude-Code-Hook/1.0",
    "Connection": "close",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@dataclass
class Jupyter:
    port: int
    proc: subprocess.Popen[bytes]
    kernel_id: str = ""

    def execute(self, code: str) -> str:
        """Run ``code`` in the kernel through Jupyter's kernel WebSocket; its stdout."""
        url = f"ws://127.0.0.1:{self.port}/api/kernels/{self.kernel_id}/channels?token={TOKEN}"
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {
                "msg_id": msg_id,
                "msg_type": "execute_request",
                "username": "test",
                "session": uuid.uuid4().hex,
                "date": "",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": {
                "code": code,
                "silent": False,
                "store_history": False,
                "user_expressions": {},
                "allow_stdin": False,
                "stop_on_error": True,
            },
            "channel": "shell",
            "buffers": [],
        }
        out: list[str] = []
        deadline = time.monotonic() + WAIT
        with ws_connect(url, open_timeout=30, max_size=None) as ws:
            ws.send(json.dumps(msg))
            while time.monotonic() < deadline:
                reply = json.loads(ws.recv(timeout=WAIT))
                if reply.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = reply["header"]["msg_type"]
                if kind == "stream":
                    out.append(reply["content"]["text"])
                elif kind == "error":
                    raise AssertionError("\n".join(reply["content"]["traceback"]))
                elif kind == "execute_reply":
                    return "".join(out)
        raise AssertionError("no execute_reply in time")


@pytest.fixture(scope="module")
def jupyter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jupyter]:
    root = tmp_path_factory.mktemp("jupyter")
    (root / "config").mkdir()
    (root / "config" / "jupyter_server_config.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_server_proxy": True}}})
    )
    port = free_port()
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
        "JUPYTER_CONFIG_DIR": str(root / "config"),
        "JUPYTER_DATA_DIR": str(root / "data"),
    }
    for key in ("JUPYTERHUB_SERVICE_PREFIX", "JUPYTERHUB_API_TOKEN", "WSNOTEBOOK_PUBLIC_URL"):
        env.pop(key, None)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter_server",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            "--ServerApp.allow_remote_access=True",
            "--allow-root",  # CI runs as root
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(root / "jupyter.log", "wb"),  # noqa: SIM115 - closed with the process
    )
    j = Jupyter(port, proc)
    try:
        deadline = time.monotonic() + WAIT
        while True:
            assert proc.poll() is None, (root / "jupyter.log").read_text()[-3000:]
            try:
                status, _ = request(port, "GET", f"/api/status?token={TOKEN}")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "jupyter server did not start"
            time.sleep(0.05)
        status, body = request(
            port, "POST", "/api/kernels", {"name": "python3"}, {"Authorization": f"token {TOKEN}"}
        )
        assert status == 201, body
        j.kernel_id = json.loads(body)["id"]
        yield j
    finally:
        if j.kernel_id:
            try:
                request(
                    port,
                    "DELETE",
                    f"/api/kernels/{j.kernel_id}",
                    None,
                    {"Authorization": f"token {TOKEN}"},
                )
            except OSError:
                pass
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


@pytest.fixture(scope="module")
def kernel_server(jupyter: Jupyter) -> dict[str, Any]:
    out = jupyter.execute(
        "import json, wsnotebook as wsn\n"
        "server = wsn.serve(port=0)\n"
        "urls = server.public_urls\n"
        "print('WSN' + json.dumps({'port': server.port, 'urls': urls.as_dict() if urls else None,"
        " 'token_known': bool(urls and urls.token)}))\n"
    )
    line = next(x for x in out.splitlines() if x.startswith("WSN"))
    return dict(json.loads(line[3:]))


def hook_event(session: str) -> dict[str, Any]:
    return {
        "source_app": "claude-code",
        "session_id": session,
        "hook_event_type": "PreToolUse",
        "payload": {"tool_name": "Bash", "tool_input": {"command": "ls"}},
    }


def recent(jupyter: Jupyter, port: int) -> list[dict[str, Any]]:
    status, body = request(
        jupyter.port,
        "GET",
        f"/proxy/{port}/events/recent?limit=1000",
        headers={"Authorization": f"token {TOKEN}"},
    )
    assert status == 200, body
    return list(json.loads(body))


def test_public_urls_inside_the_kernel_name_the_jupyter_proxy(
    jupyter: Jupyter, kernel_server: dict[str, Any]
) -> None:
    port = kernel_server["port"]
    urls = kernel_server["urls"]
    assert urls is not None, "the kernel did not find its Jupyter server"
    base = f"http://127.0.0.1:{jupyter.port}/proxy/{port}"
    assert urls["events"] == f"{base}/events"
    assert urls["stream"] == f"ws://127.0.0.1:{jupyter.port}/proxy/{port}/stream"
    assert "parent" in urls["source"] and kernel_server["token_known"]


def test_hook_post_and_websocket_through_jupyter_with_its_token(
    jupyter: Jupyter, kernel_server: dict[str, Any]
) -> None:
    port = kernel_server["port"]
    session = "proxied-" + uuid.uuid4().hex[:6]
    client = connect(
        f"ws://127.0.0.1:{jupyter.port}/proxy/{port}/stream?token={TOKEN}",
        since=0,
        backoff_base=0.01,
        backoff_cap=0.1,
    )
    try:
        status, body = request(
            jupyter.port,
            "POST",
            f"/proxy/{port}/events",
            hook_event(session),
            {**HOOK_HEADERS, "Authorization": f"token {TOKEN}"},
        )
        assert status == 200, body
        stored = json.loads(body)
        assert stored["session_id"] == session and isinstance(stored["id"], int)
        deadline = time.monotonic() + WAIT
        while session not in set(client.frame.df["session_id"].astype(str)):
            assert time.monotonic() < deadline, f"not received; client {client.metrics()}"
            assert client.state != "closed", client.error
            time.sleep(0.02)
        assert client.state == "open"
    finally:
        client.close()


def test_the_one_line_hook_configuration_works_as_the_seed_script_sends(
    jupyter: Jupyter, kernel_server: dict[str, Any]
) -> None:
    """The seed's hook script POSTs to the --server-url it is given, nothing more: the token
    rides in the URL (``public_urls.hook_command()``)."""
    port = kernel_server["port"]
    status, body = request(
        jupyter.port,
        "POST",
        f"/proxy/{port}/events?token={TOKEN}",
        hook_event("hook-line"),
        HOOK_HEADERS,
    )
    assert status == 200, body
    assert "hook-line" in {e["session_id"] for e in recent(jupyter, port)}


def test_without_the_token_jupyter_refuses_http_and_websocket(
    jupyter: Jupyter, kernel_server: dict[str, Any]
) -> None:
    port = kernel_server["port"]
    session = "no-token-" + uuid.uuid4().hex[:6]
    status, _ = request(
        jupyter.port, "POST", f"/proxy/{port}/events", hook_event(session), HOOK_HEADERS
    )
    assert status in (401, 403), status
    assert session not in {e["session_id"] for e in recent(jupyter, port)}
    status, _ = request(jupyter.port, "GET", f"/proxy/{port}/events/recent")
    assert status in (302, 401, 403), status  # a login redirect or a refusal, never the data
    client = connect(
        f"ws://127.0.0.1:{jupyter.port}/proxy/{port}/stream", max_attempts=2, backoff_base=0.01
    )
    try:
        deadline = time.monotonic() + WAIT
        while client.state != "closed":
            assert time.monotonic() < deadline, client.metrics()
            time.sleep(0.02)
        assert isinstance(client.error, AuthError) or "403" in str(client.error), client.error
        assert len(client.frame) == 0
    finally:
        client.close()


def test_send_cli_takes_a_proxied_url_with_the_jupyter_token(
    jupyter: Jupyter, kernel_server: dict[str, Any], capfd: pytest.CaptureFixture[str]
) -> None:
    port = kernel_server["port"]
    url = f"http://127.0.0.1:{jupyter.port}/proxy/{port}"
    code = main(
        [
            "send",
            "--url",
            url,
            "--jupyter-token",
            TOKEN,
            "--source-app",
            "cli",
            "--session-id",
            "via-send",
            "--type",
            "Notification",
            "--compact",
        ]
    )
    assert code == EXIT_OK, capfd.readouterr().err
    code = main(
        [
            "send",
            "--url",
            f"{url}/stream?token={TOKEN}",
            "--source-app",
            "cli",
            "--session-id",
            "via-query",
            "--type",
            "Notification",
        ]
    )
    assert code == EXIT_OK, capfd.readouterr().err
    sessions = {e["session_id"] for e in recent(jupyter, port)}
    assert {"via-send", "via-query"} <= sessions


def test_a_jupyter_only_host_name_passes_with_the_token_and_nothing_else_new(
    jupyter: Jupyter, kernel_server: dict[str, Any]
) -> None:
    port = kernel_server["port"]
    host = f"jupyter.example.test:{jupyter.port}"
    # through Jupyter: it forwards this Host to the kernel's server, with its token
    status, body = request(
        jupyter.port,
        "POST",
        f"/proxy/{port}/events",
        hook_event("named-host"),
        {**HOOK_HEADERS, "Host": host, "Authorization": f"token {TOKEN}"},
    )
    assert status == 200, body
    # straight to the kernel's server (a DNS-rebinding page): still refused
    status, _ = request(port, "GET", "/events/recent", headers={"Host": host})
    assert status == 421
    status, _ = request(
        port, "GET", "/events/recent", headers={"Host": host, "Authorization": "token wrong"}
    )
    assert status == 421
