"""Classification of failures: is a failed attempt or a dropped connection worth retrying?

Pure logic, no I/O: maps an exception raised by ``websockets`` (or the OS) to a :class:`Verdict`
(``kind`` counted in ``client.metrics()["errors"]``, ``retry``, and for a fatal verdict the
:class:`~wsnotebook.errors.WsnError` the client stops with), and counts failures by kind.

Invariants: every exception gets a verdict (an unknown one is ``"internal"``, fatal); a verdict
with ``retry=False`` always carries an ``error``; ``ErrorCounts`` only grows.
"""

from __future__ import annotations

import asyncio
import socket
import ssl as ssl_module
import threading

from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)

from ..errors import AuthError, ClientError, WsnError
from ..protocol import CLOSE_POLICY, CLOSE_TOO_BIG, RETRYABLE_CLOSE_CODES

__all__ = ["RETRYABLE_STATUS", "ErrorCounts", "Verdict", "classify_close", "classify_exception"]

#: HTTP statuses of a refused handshake that are worth retrying (server or proxy trouble).
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class Verdict:
    """How to react to a failed attempt or a dropped connection."""

    __slots__ = ("kind", "retry", "error")

    def __init__(self, kind: str, retry: bool, error: WsnError | None = None) -> None:
        self.kind = kind
        self.retry = retry
        self.error = error

    def __repr__(self) -> str:
        return f"Verdict({self.kind!r}, retry={self.retry}, error={self.error!r})"


class ErrorCounts:
    """Failures by kind (``"refused"``, ``"decode"``, ``"invalid_event"``...): written on the
    loop thread, read from any thread (``metrics()``), hence the lock.  ``counts`` is the live
    dict (``client.errors``)."""

    __slots__ = ("counts", "_lock")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)


def classify_exception(exc: BaseException) -> Verdict:
    """Classify an exception raised while opening or reading a connection.

    Retryable: refused / reset / other network errors, timeouts, EOF during the handshake,
    HTTP 5xx (and 408/425/429), closes 1000/1001/1006/1011/1012/1013 and keepalive ping
    timeouts.  Fatal: HTTP 401/403 (:class:`AuthError`), other HTTP statuses, close 1008
    (:class:`AuthError`), close 1009 and other close codes, invalid URLs, TLS certificate
    failures and handshakes that are not WebSocket at all (:class:`ClientError`).
    """
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403):
            return Verdict(
                "auth",
                False,
                AuthError(f"server refused the WebSocket handshake with HTTP {status}"),
            )
        if status in RETRYABLE_STATUS or 500 <= status < 600:
            return Verdict("http_5xx" if status >= 500 else f"http_{status}", True)
        return Verdict(
            f"http_{status}",
            False,
            ClientError(
                f"server answered the WebSocket handshake with HTTP {status} "
                "(is this a wsnotebook /stream URL?)"
            ),
        )
    if isinstance(exc, InvalidURI):
        return Verdict("bad_url", False, ClientError(f"invalid URL: {exc}"))
    if isinstance(exc, ConnectionClosed):
        return classify_close(exc)
    if isinstance(exc, InvalidMessage):
        # EOF or garbage instead of an HTTP response: EOF is a network error, retry.
        if isinstance(exc.__cause__, EOFError):
            return Verdict("handshake_eof", True)
        return Verdict("handshake", False, ClientError(f"invalid handshake response: {exc}"))
    if isinstance(exc, InvalidHandshake):
        return Verdict("handshake", False, ClientError(f"WebSocket handshake failed: {exc}"))
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return Verdict("tls", False, ClientError(f"TLS certificate verification failed: {exc}"))
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return Verdict("timeout", True)
    if isinstance(exc, ConnectionRefusedError):
        return Verdict("refused", True)
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return Verdict("reset", True)
    if isinstance(exc, socket.gaierror):  # the name did not resolve: retried (DNS comes back)
        return Verdict("dns", True)
    if isinstance(exc, OSError):
        return Verdict("network", True)
    return Verdict("internal", False, ClientError(f"unexpected error: {type(exc).__name__}: {exc}"))


def classify_close(exc: ConnectionClosed) -> Verdict:
    """Classify a dropped connection by its close frames (see :func:`classify_exception`)."""
    rcvd, sent = exc.rcvd, exc.sent
    if rcvd is None:
        if sent is not None and sent.code == 1011 and "ping" in sent.reason:
            return Verdict("ping_timeout", True)
        if sent is not None and sent.code == CLOSE_TOO_BIG:
            return Verdict(
                "too_big",
                False,
                ClientError(f"server sent a message larger than max_message_bytes ({sent.reason})"),
            )
        return Verdict("closed_abnormally", True)  # 1006: TCP dropped without a close frame
    code = rcvd.code
    if code == CLOSE_POLICY:
        return Verdict(
            "policy", False, AuthError(f"server closed the connection with 1008: {rcvd.reason}")
        )
    if code == 1000 or code in RETRYABLE_CLOSE_CODES:
        return Verdict(f"close_{code}", True)
    return Verdict(
        f"close_{code}",
        False,
        ClientError(f"server closed the connection with code {code}: {rcvd.reason}"),
    )
