"""In-process endpoints: how a client finds a server running in the same process.

The common notebook case is ``wsn.serve()`` then ``wsn.connect(server.url)``: both ends share
one process and one event loop, so the WebSocket framing, the loopback sockets and the
``websockets`` client's parsing are pure overhead.  The server side (``server/local.py``)
installs a resolver here; the client side (``client/local.py``) asks it for the endpoint behind
a URL.  Client and server are siblings in the layer diagram and never import each other: this
module, one layer down, is the seam between them.

Invariants: at most one resolver is installed (the server package's; installing again replaces
it); :func:`find_endpoint` never raises (a resolver error means "no endpoint": the client takes
the socket path) and is called on the loop thread, like everything an endpoint does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

__all__ = ["LocalEndpoint", "LocalLink", "Resolver", "find_endpoint", "set_resolver"]

log = logging.getLogger("wsnotebook")


class LocalLink(Protocol):
    """One in-process subscription (the client's handle on it)."""

    def close(self) -> None:
        """The client is done: stop delivering (idempotent; no close callback follows)."""

    async def publish(self, data: bytes) -> None:
        """A client ``publish`` message (its JSON bytes), handled as the server handles one
        from a WebSocket: rejections come back as ``error`` messages through ``deliver``."""


class LocalEndpoint(Protocol):
    """A running server that accepts in-process subscribers (loop thread only)."""

    def subscribe(
        self,
        deliver: Callable[[bytes], None],
        closed: Callable[[int, str], None],
        *,
        since: int | None,
        epoch: str | None,
    ) -> LocalLink | None:
        """Start a subscription: ``deliver`` gets every message a WebSocket client would get
        (``initial``, ``batch``/``event``, ``gap``, ``heartbeat``; the same bytes), in order, on
        the loop thread; ``closed(code, reason)`` is called once when the server ends it (the
        WebSocket close code it would have sent).  ``None``: not possible now (stopping, full);
        the caller then takes the socket path."""


#: ``resolver(url, token)``: the endpoint serving ``url`` in this process, or ``None``.
Resolver = Callable[[str, "str | None"], "LocalEndpoint | None"]

_resolver: list[Resolver] = []


def set_resolver(resolver: Resolver) -> None:
    """Install the resolver (the server package does, on import)."""
    _resolver[:] = [resolver]


def find_endpoint(url: str, token: str | None) -> LocalEndpoint | None:
    """The in-process endpoint serving ``url`` (with ``token`` when it needs one), or ``None``."""
    if not _resolver:
        return None
    try:
        return _resolver[0](url, token)
    except Exception as exc:  # never fail a connection attempt: the socket path remains
        log.debug("wsnotebook: in-process endpoint lookup failed: %r", exc)
        return None
