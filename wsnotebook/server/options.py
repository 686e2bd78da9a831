"""``ServerOptions``: every option of ``serve()``, its default and bounds, checked in one place.

``serve()`` keeps its keyword signature and builds a :class:`ServerOptions`;
:meth:`ServerOptions.validate` is the only place that checks the values (a bad one raises
:class:`~wsnotebook.errors.ConfigError` naming the option).  The options are a frozen value:
``serve()`` compares them (``==``) with those of a server already running on the port to decide
between "return it", "refuse" and (``restart=True``) "replace it".

Bounds (inclusive)::

    port                0..65535 (0: any free port)
    initial_limit       0..100,000 events in the ``initial`` snapshot
    max_event_bytes     1 KiB..1 GiB (lowered to what fits one message once stamped)
    max_message_bytes   1 KiB..1 GiB
    max_batch_events    1..1,000,000
    max_connections     1..100,000
    queue_size          1..1,000,000 messages per client send queue
    max_queue_bytes     1 KiB..16 GiB per client send queue
    heartbeat_interval  0..3600 s (0 disables)
    connect_rate        0..1,000,000 handshakes/s per IP (0 disables)
    connect_burst       1..1,000,000
    max_open_connections  16..1,000,000 TCP connections (HTTP + WebSocket; lowered to fit
                        the descriptor limit, see ``admission``)
    header_timeout      0..3600 s (0 disables)
    keepalive_timeout   0..3600 s (0 disables)
    retain              checked by the store (1..100,000,000)
    retain_bytes        1 KiB..1 TiB of encoded events a store holds in memory (256 MiB)
    allowed_hosts       host names (strings; a port is ignored), kept sorted and lower case
    hitl_hosts          at most 256 host names (or "*") whose responseWebSocketUrl the server may
                        open besides loopback (HITL answers; default: loopback only)
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._validate import bounded, integer, port
from ..errors import ConfigError
from ..events import DEFAULT_MAX_BATCH_EVENTS, DEFAULT_MAX_EVENT_BYTES, DEFAULT_MAX_MESSAGE_BYTES
from ..store import DEFAULT_RETAIN_BYTES, MAX_RETAIN_BYTES, MIN_RETAIN_BYTES, Store
from .admission import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_MAX_OPEN_CONNECTIONS,
)
from .hitl_rules import normalise_hitl_hosts
from .hostcheck import normalise_allowed_hosts

__all__ = [
    "DEFAULT_CONNECT_BURST",
    "DEFAULT_CONNECT_RATE",
    "DEFAULT_MAX_QUEUE_BYTES",
    "DEFAULT_QUEUE_SIZE",
    "LOOPBACK_NAMES",
    "ServerOptions",
    "is_loopback",
]

DEFAULT_QUEUE_SIZE = 4096
DEFAULT_MAX_QUEUE_BYTES = 64 << 20
#: Per-IP WebSocket handshake rate limit defaults (handshakes/s and burst).
DEFAULT_CONNECT_RATE = 50.0
DEFAULT_CONNECT_BURST = 200

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    """Is ``host`` a loopback name or address (a server there needs no token)?"""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerOptions:
    """The options of one server (``serve()``'s keywords but ``restart``); see the module
    docstring for the bounds.  ``allowed_origins`` is kept as a tuple (comparable)."""

    host: str = "127.0.0.1"
    port: int = 4000
    # repr=False: a Redis URL may hold a password (repr, logs and metrics never show it)
    store: str | Store = dataclasses.field(default="memory", repr=False)
    token: str | None = None
    allowed_origins: tuple[str, ...] | None = None
    allowed_hosts: tuple[str, ...] | None = None
    initial_limit: int = 300
    retain: int = 100_000
    retain_bytes: int = DEFAULT_RETAIN_BYTES
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_batch_events: int = DEFAULT_MAX_BATCH_EVENTS
    max_connections: int = 1000
    queue_size: int = DEFAULT_QUEUE_SIZE
    max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    heartbeat_interval: float = 5.0
    compression: bool = True
    connect_rate: float = DEFAULT_CONNECT_RATE
    connect_burst: int = DEFAULT_CONNECT_BURST
    max_open_connections: int = DEFAULT_MAX_OPEN_CONNECTIONS
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    ssl_context: ssl.SSLContext | None = None
    certfile: str | None = None
    keyfile: str | None = None
    hitl_hosts: tuple[str, ...] | None = None

    @classmethod
    def validate(
        cls,
        *,
        allowed_origins: Iterable[str] | None = None,
        allowed_hosts: Iterable[str] | None = None,
        **kwargs: Any,
    ) -> ServerOptions:
        """Check every value (ConfigError naming the first bad one) and return the options,
        normalised: numbers as ``int``/``float``, ``compression`` as ``bool``, origins as a
        tuple."""
        o = cls(**kwargs)  # unknown keywords: TypeError, as for serve()
        ints: dict[str, Any] = {
            "port": port("port", o.port),
            "initial_limit": integer("initial_limit", o.initial_limit, 0, 100_000),
            "retain_bytes": integer(
                "retain_bytes", o.retain_bytes, MIN_RETAIN_BYTES, MAX_RETAIN_BYTES
            ),
            "max_event_bytes": integer("max_event_bytes", o.max_event_bytes, 1024, 1 << 30),
            "max_message_bytes": integer("max_message_bytes", o.max_message_bytes, 1024, 1 << 30),
            "max_batch_events": integer("max_batch_events", o.max_batch_events, 1, 1_000_000),
            "max_connections": integer("max_connections", o.max_connections, 1, 100_000),
            "queue_size": integer("queue_size", o.queue_size, 1, 1_000_000),
            "max_queue_bytes": integer("max_queue_bytes", o.max_queue_bytes, 1024, 1 << 34),
        }
        bounded("heartbeat_interval", o.heartbeat_interval, 0, 3600, unit=" s")
        rate = o.connect_rate
        if isinstance(rate, bool) or not isinstance(rate, (int, float)):
            raise ConfigError("connect_rate: expected a number of handshakes per second")
        if not (math.isfinite(rate) and 0 <= rate <= 1_000_000):
            raise ConfigError(f"connect_rate must be in 0..1,000,000 per s, got {rate}")
        ints["connect_burst"] = integer("connect_burst", o.connect_burst, 1, 1_000_000)
        ints["max_open_connections"] = integer(
            "max_open_connections", o.max_open_connections, 16, 1_000_000
        )
        bounded("header_timeout", o.header_timeout, 0, 3600, unit=" s")
        bounded("keepalive_timeout", o.keepalive_timeout, 0, 3600, unit=" s")
        if not isinstance(o.host, str):
            raise ConfigError(f"host: expected string, got {type(o.host).__name__}")
        if o.token is not None and not isinstance(o.token, str):
            raise ConfigError(f"token: expected string or None, got {type(o.token).__name__}")
        if o.keyfile is not None and o.certfile is None:
            raise ConfigError("keyfile given without certfile")
        hosts = None
        if allowed_hosts is not None:
            try:
                hosts = normalise_allowed_hosts(allowed_hosts)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"allowed_hosts: {exc}") from None
        if o.hitl_hosts is not None:
            hitl = normalise_hitl_hosts(o.hitl_hosts)
            ints["hitl_hosts"] = hitl or None
        return dataclasses.replace(
            o,
            **ints,
            allowed_origins=None if allowed_origins is None else tuple(allowed_origins),
            allowed_hosts=hosts,
            heartbeat_interval=float(o.heartbeat_interval),
            header_timeout=float(o.header_timeout),
            keepalive_timeout=float(o.keepalive_timeout),
            compression=bool(o.compression),
            connect_rate=float(rate),
        )

    def changed(self, other: ServerOptions) -> list[str]:
        """Names of the options that differ from ``other``'s, sorted."""
        return sorted(
            f.name
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        )

    def server_kwargs(self) -> dict[str, Any]:
        """The options as keyword arguments of ``Server(...)``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
