"""Redis store URLs: parsing, checking and redaction (pure logic, no I/O, no redis import).

``redis://[[user]:password@]host[:port][/db][?stream=NAME&...]`` and ``rediss://...`` (TLS).
Query parameters: ``stream`` (the stream key, default ``events``), ``ssl_ca_certs`` (a CA
bundle file, ``rediss://`` only), ``ssl_cert_reqs`` (``required`` (default), ``optional`` or
``none``, ``rediss://`` only), ``connect_timeout`` (seconds, 0.1..300, default 5).  Anything else
is a :class:`~wsnotebook.errors.ConfigError` naming it, as is a malformed host, port or db.

Invariants: the password never appears in any text this module builds (``repr`` of a
:class:`RedisTarget`, :attr:`RedisTarget.safe_url`, error messages: :func:`redact_url`
replaces it with ``***``); keys derived from the stream name share its Redis Cluster hash slot
(``{name}:meta`` hashes like ``name`` when ``name`` holds no braces), so one Lua script may
touch them all.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from dataclasses import dataclass, field

from ..errors import ConfigError

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_STREAM",
    "RedisTarget",
    "is_redis_url",
    "parse_redis_url",
    "redact_url",
]

#: The stream key when the URL names none.
DEFAULT_STREAM = "events"
#: Seconds to wait for a TCP (and TLS) connection to Redis (``connect_timeout=``, 0.1..300).
DEFAULT_CONNECT_TIMEOUT = 5.0

_SCHEMES = ("redis", "rediss")
_STREAM = re.compile(r"[A-Za-z0-9_.:\-/]{1,200}")
_CERT_REQS = ("required", "optional", "none")
_KNOWN = frozenset({"stream", "ssl_ca_certs", "ssl_cert_reqs", "connect_timeout"})


def is_redis_url(text: object) -> bool:
    """Does ``text`` look like a Redis URL (``redis://`` or ``rediss://``)?"""
    return isinstance(text, str) and text.lower().startswith(("redis://", "rediss://"))


def redact_url(text: str) -> str:
    """``text`` with the password of a ``scheme://user:password@host`` URL replaced by
    ``***`` (a URL without a password is returned unchanged)."""
    return re.sub(r"(://[^/@:?#]*:)[^@/?#]*@", r"\1***@", text)


@dataclass(frozen=True)
class RedisTarget:
    """Where a Redis store lives.  ``password`` is left out of ``repr`` and ``safe_url``."""

    tls: bool
    host: str
    port: int
    db: int
    stream: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl_ca_certs: str | None = None
    ssl_cert_reqs: str = "required"
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT

    @property
    def safe_url(self) -> str:
        """The URL with the password shown as ``***`` (for logs, ``repr`` and metrics)."""
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.username or self.password is not None:
            auth = urllib.parse.quote(self.username or "", safe="")
            auth += ":***@" if self.password is not None else "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}{host}:{self.port}/{self.db}?stream={self.stream}"

    @property
    def meta_key(self) -> str:
        """The hash holding the epoch, the id sequence, the oldest id and the byte count."""
        return f"{{{self.stream}}}:meta"

    def facet_key(self, field_name: str) -> str:
        """The sorted set of one facet field: value -> newest id holding it."""
        return f"{{{self.stream}}}:facet:{field_name}"

    def key(self, suffix: str) -> str:
        """Another key of this stream (``{S}:<suffix>``, the same Cluster hash slot as ``S``)."""
        return f"{{{self.stream}}}:{suffix}"


def parse_redis_url(url: str) -> RedisTarget:
    """Parse and check a Redis store URL (ConfigError naming what is wrong; the message never
    holds the password)."""
    if not is_redis_url(url):
        raise ConfigError("store: a Redis URL starts with redis:// or rediss://")
    safe = redact_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        port = parts.port or 6379
    except ValueError as exc:  # a bad port or bracketed host
        raise ConfigError(f"store: invalid Redis URL {safe!r}: {exc}") from None
    if not host:
        raise ConfigError(f"store: Redis URL {safe!r} has no host")
    if parts.fragment:
        raise ConfigError(f"store: Redis URL {safe!r} must not have a #fragment")
    path = parts.path.strip("/")
    if path and not path.isdigit():
        raise ConfigError(f"store: Redis URL {safe!r}: the path must be a db number, got {path!r}")
    db = int(path) if path else 0
    if not 0 <= db <= 100_000:
        raise ConfigError(f"store: Redis db must be in 0..100000, got {db}")
    try:
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    except ValueError as exc:  # pragma: no cover - parse_qs is lenient
        raise ConfigError(f"store: Redis URL {safe!r}: bad query: {exc}") from None
    unknown = sorted(set(query) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"store: Redis URL {safe!r}: unknown parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_KNOWN))})"
        )
    one = {k: v[-1] for k, v in query.items()}
    stream = one.get("stream", DEFAULT_STREAM)
    if not _STREAM.fullmatch(stream):
        raise ConfigError(
            f"store: Redis stream name must be 1-200 of A-Z a-z 0-9 _ . : - /, got {stream!r}"
        )
    tls = parts.scheme.lower() == "rediss"
    if not tls and ({"ssl_ca_certs", "ssl_cert_reqs"} & set(one)):
        raise ConfigError("store: ssl_ca_certs / ssl_cert_reqs need a rediss:// (TLS) URL")
    reqs = one.get("ssl_cert_reqs", "required")
    if reqs not in _CERT_REQS:
        raise ConfigError(f"store: ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}")
    timeout = DEFAULT_CONNECT_TIMEOUT
    if "connect_timeout" in one:
        try:
            timeout = float(one["connect_timeout"])
        except ValueError:
            timeout = math.nan
        if not (math.isfinite(timeout) and 0.1 <= timeout <= 300):
            raise ConfigError("store: connect_timeout must be a number of seconds in 0.1..300")
    username = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password is not None else None
    return RedisTarget(
        tls=tls,
        host=host,
        port=port,
        db=db,
        stream=stream,
        username=username,
        password=password,
        ssl_ca_certs=one.get("ssl_ca_certs") or None,
        ssl_cert_reqs=reqs,
        connect_timeout=timeout,
    )
