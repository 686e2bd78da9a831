"""Loopback fixtures shared by the integration tests.

* ``server_factory(**options)`` -> a running :class:`wsnotebook.server.Server` on 127.0.0.1 with
  a free port (``port=0``); every server it made is stopped at teardown.
* ``server`` -> one default server (memory store, no token).
* ``http_request(method, url, body=None, headers=None, timeout=10)`` -> ``HTTPResult`` with
  ``status``, ``headers`` (case-insensitive) and ``body`` (bytes) plus ``.json()``.
* ``wait_until(predicate, timeout=10, interval=0.01)`` -> polls a condition, fails loudly on
  timeout (never a bare sleep-and-hope).
* ``make_event(**fields)`` -> a valid seed-style hook event.
* ``tls_cert`` -> ``TLSCert``: a certificate for 127.0.0.1 and localhost issued by a throwaway
  CA (trustme), written to ``certfile``/``keyfile``; ``server_context()`` serves with it,
  ``client_context()`` trusts its CA.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest
import trustme

from wsnotebook.server import Server, serve


def make_event(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "source_app": "app",
        "session_id": "sess-1",
        "hook_event_type": "PreToolUse",
        "payload": {"tool_name": "Bash", "tool_input": {"command": "ls"}},
    }
    event.update(fields)
    return event


@dataclass
class HTTPResult:
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def do_request(
    method: str,
    url: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
    context: Any = None,
) -> HTTPResult:
    parts = urllib.parse.urlsplit(url)
    conn: http.client.HTTPConnection
    if parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return HTTPResult(resp.status, resp.headers, resp.read())
    finally:
        conn.close()


def poll(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {predicate}")
        time.sleep(interval)


@pytest.fixture
def server_factory() -> Iterator[Callable[..., Server]]:
    made: list[Server] = []

    def factory(**options: Any) -> Server:
        options.setdefault("port", 0)
        options.setdefault("host", "127.0.0.1")
        srv = serve(**options)
        made.append(srv)
        return srv

    yield factory
    for srv in made:
        srv.stop()


@pytest.fixture
def server(server_factory: Callable[..., Server]) -> Server:
    return server_factory()


@pytest.fixture
def http_request() -> Callable[..., HTTPResult]:
    return do_request


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    return poll


@pytest.fixture(name="make_event")
def make_event_fixture() -> Callable[..., dict[str, Any]]:
    return make_event


@dataclass
class TLSCert:
    ca: trustme.CA
    cert: trustme.LeafCert
    certfile: str
    keyfile: str

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.cert.configure_cert(ctx)
        return ctx

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx


@pytest.fixture
def tls_cert(tmp_path: Any) -> TLSCert:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return TLSCert(ca, cert, str(certfile), str(keyfile))
