"""The Host-header check (DNS rebinding): a loopback server answers only requests naming a
loopback host (or a configured one), on every HTTP route and the WebSocket handshake."""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from wsnotebook.errors import ConfigError
from wsnotebook.server import Server, serve

UPGRADE = (
    "GET /stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def get(http_request: Any, srv: Server, path: str, host: str) -> Any:
    return http_request("GET", srv.http_url + path, headers={"Host": host})


def handshake_status(srv: Server, host: str) -> tuple[int, bytes]:
    """Status line code and the rest of a raw WebSocket handshake's reply."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        sock.sendall(UPGRADE.format(host=host).encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        if int(head.split()[1]) != 101:  # read the JSON body of a refusal
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
            )
            while len(body) < length:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                body += chunk
        return int(head.split()[1]), body


def test_a_tokenless_loopback_server_refuses_a_foreign_host_with_421(
    server: Server, http_request: Any, make_event: Any
) -> None:
    server.publish(make_event())
    res = get(http_request, server, "/events/recent", "evil.example")
    assert res.status == 421
    assert res.json() == {"error": "host not allowed: 'evil.example'"}
    assert b"PreToolUse" not in res.body
    assert get(http_request, server, "/events/recent", f"evil.example:{server.port}").status == 421
    assert server.metrics()["rejected"] == {"421": 2}


@pytest.mark.parametrize("host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}"])
def test_loopback_names_on_any_port_are_answered(
    server: Server, http_request: Any, make_event: Any, host: str
) -> None:
    server.publish(make_event())
    res = get(http_request, server, "/events/recent", host.format(port=server.port))
    assert res.status == 200
    assert [e["id"] for e in res.json()] == [1]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/events"),
        ("GET", "/events/filter-options"),
        ("GET", "/health"),
        ("GET", "/metrics"),
        ("OPTIONS", "/events"),
        ("GET", "/no-such-route"),
    ],
)
def test_every_route_checks_the_host(
    server: Server, http_request: Any, make_event: Any, method: str, path: str
) -> None:
    headers = {"Host": "evil.example", "Content-Type": "application/json"}
    body = json.dumps(make_event()) if method == "POST" else None
    res = http_request(method, server.http_url + path, body, headers)
    assert res.status == 421
    assert res.json()["error"].startswith("host not allowed")
    assert server.store.last_id == 0


def test_the_websocket_handshake_checks_the_host(server: Server) -> None:
    status, body = handshake_status(server, "evil.example")
    assert status == 421
    assert json.loads(body) == {"error": "host not allowed: 'evil.example'"}
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}", f"[::1]:{server.port}"):
        assert handshake_status(server, host)[0] == 101
    assert server.metrics()["connections_total"] == 3


def test_a_configured_name_is_accepted(server_factory: Any, http_request: Any) -> None:
    srv = server_factory(allowed_hosts=["notebook.test"])
    assert get(http_request, srv, "/health", f"notebook.test:{srv.port}").status == 200
    assert get(http_request, srv, "/health", "NOTEBOOK.test").status == 200
    assert get(http_request, srv, "/health", "other.test").status == 421
    assert handshake_status(srv, "notebook.test")[0] == 101
    assert srv.options is not None and srv.options.allowed_hosts == ("notebook.test",)


def test_a_request_without_a_host_header_is_allowed_on_loopback(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        data = b""
        while chunk := sock.recv(4096):
            data += chunk
    assert data.startswith(b"HTTP/1.0 200") or data.startswith(b"HTTP/1.1 200")


def test_bad_allowed_hosts_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="allowed_hosts"):
        serve(port=0, allowed_hosts="notebook.test")
    with pytest.raises(ConfigError, match="allowed_hosts"):
        serve(port=0, allowed_hosts=["bad:port"])
