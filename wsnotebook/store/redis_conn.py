"""Connections of the Redis store: its options (:class:`RedisOptions`, with bounds), redis-py
clients on bounded blocking pools, closing them, and error text without the password.

redis-py (``pip install 'wsnotebook[redis]'``) is imported here, when a store opens, never
before: ``import wsnotebook`` and the other stores do not need it.  Clients never retry a command
(a script retried after a lost reply could store an event twice); a command waits for a free
pooled connection up to ``command_timeout`` instead of failing past a connection count.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .._validate import bounded, integer
from ..errors import ConfigError
from .redis_url import RedisTarget, redact_url

__all__ = ["RedisOptions", "close_clients", "error_text", "make_client", "redis_module"]


@dataclass(frozen=True)
class RedisOptions:
    """Timing of a :class:`RedisStore` (bounds inclusive):

    * ``block_ms=1000`` (10..60,000): how long one ``XREAD BLOCK`` waits for new entries;
    * ``read_count=1000`` (1..100,000): most entries one tail read takes;
    * ``command_timeout=10.0`` s (0.1..300): a command without a reply this long fails (503);
    * ``max_connections=32`` (2..10,000): connections per pool (commands, and the tail's); a
      command waits for a free one up to ``command_timeout`` (appends use one: group commit);
    * ``backoff_base=0.05`` s (0.001..60), ``backoff_cap=2.0`` s (base..300): the tail's
      reconnect delays (full jitter, :class:`~wsnotebook.protocol.Backoff`).
    """

    block_ms: int = 1000
    read_count: int = 1000
    command_timeout: float = 10.0
    max_connections: int = 32
    backoff_base: float = 0.05
    backoff_cap: float = 2.0

    def __post_init__(self) -> None:
        integer("block_ms", self.block_ms, 10, 60_000)
        integer("read_count", self.read_count, 1, 100_000)
        bounded("command_timeout", self.command_timeout, 0.1, 300, unit=" s")
        integer("max_connections", self.max_connections, 2, 10_000)
        bounded("backoff_base", self.backoff_base, 0.001, 60, unit=" s")
        bounded("backoff_cap", self.backoff_cap, self.backoff_base, 300, unit=" s")


def redis_module() -> Any:
    """``redis.asyncio`` (ConfigError naming the extra when redis-py is missing)."""
    try:
        import redis.asyncio as aioredis
    except ImportError:  # pragma: no cover - the extra is installed in tests
        raise ConfigError(
            "store: a redis:// store needs redis-py: pip install 'wsnotebook[redis]'"
        ) from None
    return aioredis


def make_client(target: RedisTarget, options: RedisOptions, read_timeout: float) -> tuple[Any, Any]:
    """A redis-py client for ``target`` and its pool (the caller closes both: the pool is not
    the client's to close)."""
    aioredis = redis_module()
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    kwargs: dict[str, Any] = {
        "host": target.host,
        "port": target.port,
        "db": target.db,
        "username": target.username,
        "password": target.password,
        "socket_connect_timeout": target.connect_timeout,
        "socket_timeout": read_timeout,
        "retry": Retry(NoBackoff(), 0),  # never retried (see the module docstring)
        "client_name": "wsnotebook",
        "protocol": 2,  # the reply shapes redis_lua.stored_from_entries reads (RESP2)
    }
    if target.tls:
        kwargs.update(
            connection_class=aioredis.SSLConnection,
            ssl_cert_reqs=target.ssl_cert_reqs,
            ssl_ca_certs=target.ssl_ca_certs,
        )
    pool = aioredis.BlockingConnectionPool(
        max_connections=options.max_connections, timeout=options.command_timeout, **kwargs
    )
    return aioredis.Redis(connection_pool=pool), pool


async def close_clients(clients: Iterable[Any], pools: Iterable[Any]) -> None:
    """Close clients, then their pools; never raises."""
    for client in clients:
        close = getattr(client, "aclose", None) or client.close
        with contextlib.suppress(Exception):
            await close()
    for pool in pools:
        with contextlib.suppress(Exception):
            await pool.disconnect()


def error_text(exc: BaseException, password: str | None) -> str:
    """An error's text without the password (redis-py does not put it there; be sure)."""
    text = f"{type(exc).__name__}: {exc}"
    if password:
        text = text.replace(password, "***")
    return redact_url(text)
