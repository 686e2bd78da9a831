"""monitor(server) on a TLS (wss://) loopback server: the monitor's own client gets an SSL context
that trusts the server's certificate, and the widget receives the server's events."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from typing import Any

import pytest
from _helpers import use_fake_comms, wss_first_message

import wsnotebook.widget as W
from wsnotebook import monitor
from wsnotebook.widget import view

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def no_kernel_comms(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Widgets without a kernel: comms that send nothing; every monitor stopped afterwards."""
    use_fake_comms(monkeypatch)
    yield
    W.stop_all()


def published_ids_shown(mon: W.Monitor, ids: list[int]) -> bool:
    frame_ids = set(mon.frame.df["id"].tolist()) if len(mon.frame) else set()
    return set(ids) <= frame_ids and mon.status.get("events", 0) >= len(ids)


def test_monitor_of_a_tls_server_receives_its_events(
    server_factory: Any, tls_cert: Any, make_event: Any, wait_until: Any
) -> None:
    srv = server_factory(certfile=tls_cert.certfile, keyfile=tls_cert.keyfile)
    assert srv.url.startswith("wss://")
    mon = monitor(srv, refresh_hz=20)
    try:
        client = mon.client
        assert client is mon._owned_client
        wait_until(lambda: client.state == "open" or client.error is not None, timeout=20)
        assert client.error is None and client.state == "open"
        stored = srv.publish([make_event(summary=f"tls {i}") for i in range(3)])
        ids = [e["id"] for e in stored]
        wait_until(lambda: published_ids_shown(mon, ids), timeout=20)
        assert mon.errors == 0
        assert srv.metrics()["connections"] >= 1
    finally:
        mon.close()
    assert client.state == "closed"


def test_the_servers_client_context_trusts_its_own_certificate_only(
    server_factory: Any, tls_cert: Any, tmp_path: Any
) -> None:
    """The context pins the certificate the server loaded from certfile: another certificate for
    127.0.0.1, even from the same CA, fails verification."""
    srv = server_factory(certfile=tls_cert.certfile, keyfile=tls_cert.keyfile)
    assert server_factory().client_ssl_context() is None  # plain ws://
    ctx = srv.client_ssl_context()
    assert isinstance(ctx, ssl.SSLContext) and ctx.verify_mode == ssl.CERT_REQUIRED
    assert '"initial"' in wss_first_message(srv.url, ctx)

    sibling = tls_cert.ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "sibling.pem", tmp_path / "sibling.key"
    sibling.cert_chain_pems[0].write_to_path(str(certfile))
    sibling.private_key_pem.write_to_path(str(keyfile))
    other = server_factory(certfile=str(certfile), keyfile=str(keyfile))
    with pytest.raises(ssl.SSLCertVerificationError):
        wss_first_message(other.url, ctx)


def test_monitor_of_a_tls_server_subscribes_in_process_without_a_certificate_check(
    server_factory: Any, tls_cert: Any, make_event: Any, wait_until: Any
) -> None:
    """The monitor's own client of a server is in-process (no socket, so no TLS to verify):
    it works even when the server, built from an ssl.SSLContext, cannot say which certificate
    it serves.  ``ssl=`` is kept for the socket fallback."""
    srv = server_factory(ssl_context=tls_cert.server_context())
    for mon in (monitor(srv), monitor(srv, ssl=tls_cert.client_context(), new=True)):
        try:
            wait_until(lambda mon=mon: mon.client.state == "open", timeout=20)
            assert mon.client.metrics()["in_process"]["active"]
            ids = [srv.publish(make_event())[0]["id"]]
            wait_until(lambda mon=mon, ids=ids: published_ids_shown(mon, ids), timeout=20)
        finally:
            mon.close()


def test_a_socket_client_of_that_server_still_checks_the_certificate(
    server_factory: Any, tls_cert: Any, wait_until: Any
) -> None:
    from wsnotebook import connect

    srv = server_factory(ssl_context=tls_cert.server_context())
    client = connect(srv.url, in_process=False)
    try:
        wait_until(lambda: client.error is not None, timeout=20)
        assert "certificate verify failed" in str(client.error)
    finally:
        client.close()


def test_ssl_option_is_refused_for_a_client_or_frame_target(server: Any) -> None:
    from wsnotebook import EventFrame
    from wsnotebook.errors import ConfigError

    with pytest.raises(ConfigError, match="ssl="):
        monitor(EventFrame(), ssl=ssl.create_default_context())


def test_connect_to_wss_without_ssl_uses_default_verification(
    server_factory: Any, tls_cert: Any, wait_until: Any
) -> None:
    """No ``ssl=``: the system trust store applies, so a self-signed certificate is refused
    (a certificate error the client reports and retries), not a ValueError from websockets."""
    import wsnotebook as wsn

    srv = server_factory(certfile=tls_cert.certfile, keyfile=tls_cert.keyfile)
    client = wsn.connect(srv.url)
    try:
        wait_until(lambda: client.last_disconnect is not None or client.error is not None, 20)
        reason = f"{client.last_disconnect} {client.error}"
        assert "CERTIFICATE_VERIFY_FAILED" in reason or "certificate verify failed" in reason
        assert "incompatible" not in reason
    finally:
        client.close()
    trusted = wsn.connect(srv.url, ssl=srv.client_ssl_context())
    try:
        assert trusted.wait_state("open", timeout=20)
    finally:
        trusted.close()


def test_a_monitor_that_fails_to_build_closes_the_client_it_opened(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import wsnotebook as wsn
    from wsnotebook.client import client as _client

    server = wsn.serve(port=0)
    try:
        before = len(_client.running_clients())

        def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("widget construction failed")

        monkeypatch.setattr(view, "register", broken)  # fails after the client connected
        with pytest.raises(RuntimeError, match="widget construction failed"):
            monitor(server)
        assert len(_client.running_clients()) == before
    finally:
        server.stop()


def test_a_restarted_server_monitor_is_registered_and_has_a_live_client() -> None:
    import wsnotebook as wsn

    server = wsn.serve(port=0)
    try:
        mon = monitor(server)
        first = mon.client
        mon.stop()
        assert first.state == "closed" and mon not in W.running_monitors()
        mon.start()
        assert mon in W.running_monitors()
        assert mon.client is not first and mon.client.wait_state("open", timeout=20)
        server.publish({"source_app": "a", "session_id": "s", "hook_event_type": "T",
                        "payload": {}})  # fmt: skip
        assert mon.client.wait_for(1, timeout=20)
        W.stop_all()
        assert not mon.running and mon.client.state == "closed"
    finally:
        W.stop_all()
        server.stop()
