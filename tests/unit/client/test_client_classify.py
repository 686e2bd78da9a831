"""What the client retries and what stops it (classify.py): no sockets, exceptions built by hand."""

from __future__ import annotations

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosedError, InvalidMessage, InvalidStatus, InvalidURI
from websockets.frames import Close
from websockets.http11 import Response

from wsnotebook.client.classify import classify_close, classify_exception
from wsnotebook.errors import AuthError, ClientError


def _status(code: int) -> InvalidStatus:
    return InvalidStatus(Response(code, "x", Headers()))


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(),
        ConnectionResetError(),
        TimeoutError(),
        OSError("network unreachable"),
        _status(500),
        _status(503),
        _status(429),
    ],
)
def test_transient_failures_are_retried(exc: Exception) -> None:
    v = classify_exception(exc)
    assert v.retry and v.error is None


def test_eof_during_handshake_is_retried() -> None:
    exc = InvalidMessage("did not receive a valid HTTP response")
    exc.__cause__ = EOFError()
    assert classify_exception(exc).retry


@pytest.mark.parametrize("code", [401, 403])
def test_auth_refusals_stop_with_auth_error(code: int) -> None:
    v = classify_exception(_status(code))
    assert not v.retry
    assert isinstance(v.error, AuthError)
    assert str(code) in str(v.error)


def test_other_http_statuses_and_bad_urls_stop_with_client_error() -> None:
    v = classify_exception(_status(404))
    assert not v.retry and isinstance(v.error, ClientError)
    assert not isinstance(v.error, AuthError)
    v = classify_exception(InvalidURI("htp://x", "scheme isn't ws or wss"))
    assert not v.retry and isinstance(v.error, ClientError)


@pytest.mark.parametrize("code", [1000, 1001, 1011, 1012, 1013])
def test_retryable_close_codes(code: int) -> None:
    v = classify_close(ConnectionClosedError(Close(code, "bye"), None))
    assert v.retry
    assert v.kind == f"close_{code}"


def test_abnormal_close_and_ping_timeout_are_retried() -> None:
    assert classify_close(ConnectionClosedError(None, None)).kind == "closed_abnormally"
    v = classify_close(ConnectionClosedError(None, Close(1011, "keepalive ping timeout")))
    assert v.retry and v.kind == "ping_timeout"


def test_policy_close_stops_with_auth_error_naming_the_reason() -> None:
    v = classify_close(ConnectionClosedError(Close(1008, "bad token"), None))
    assert not v.retry
    assert isinstance(v.error, AuthError)
    assert "bad token" in str(v.error)


@pytest.mark.parametrize("code", [1002, 1003, 1007, 4000])
def test_unexpected_close_codes_stop(code: int) -> None:
    v = classify_close(ConnectionClosedError(Close(code, "nope"), None))
    assert not v.retry and isinstance(v.error, ClientError)


def test_message_too_big_stops() -> None:
    v = classify_close(ConnectionClosedError(None, Close(1009, "over size limit")))
    assert not v.retry and isinstance(v.error, ClientError)


def test_a_name_that_does_not_resolve_is_its_own_retried_kind() -> None:
    import socket

    # it was counted as the generic "network": "last failure: network" said nothing
    v = classify_exception(socket.gaierror(-2, "Name or service not known"))
    assert v.kind == "dns" and v.retry
