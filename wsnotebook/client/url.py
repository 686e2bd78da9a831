"""Stream URLs: normalisation, host checks and query building.  Pure logic, no I/O.

Invariants: :func:`normalize_url` returns a ``ws://``/``wss://`` URL with a path (``/stream``
when none was given) and a host that is a DNS name or an IP address, or raises
:class:`~wsnotebook.errors.ClientError` (never a bare ``ValueError``): text that is not a host
used to become a client retrying DNS lookups forever.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from typing import Any

from websockets.exceptions import InvalidURI
from websockets.uri import parse_uri

from ..errors import ClientError

__all__ = [
    "MAX_URLS",
    "check_host",
    "is_loopback_url",
    "normalize_url",
    "normalize_urls",
    "with_query",
]

#: Most URLs a client fails over between.
MAX_URLS = 64


def normalize_url(url: Any) -> str:
    """Accept ``ws(s)://``, ``http(s)://`` (mapped to ``ws(s)://``) or an object with ``.url``
    (a server); a bare ``host:port`` or a URL without path gets ``/stream``."""
    if not isinstance(url, str):
        inner = getattr(url, "url", None)
        if not isinstance(inner, str):
            raise ClientError(f"invalid URL: expected a string, got {type(url).__name__}")
        url = inner
    text = url.strip()
    if "://" not in text:
        text = "ws://" + text
    try:
        parts = urllib.parse.urlsplit(text)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
        path = parts.path if parts.path not in ("", "/") else "/stream"
        text = urllib.parse.urlunsplit((scheme, parts.netloc, path, parts.query, ""))
        parse_uri(text)
        # urlsplit and websockets take any text as a host ("not a url" became a client
        # retrying DNS lookups forever)
        check_host(parts.hostname or "")
    except (InvalidURI, ValueError) as exc:  # ValueError: a bad port, host or bracketed host
        raise ClientError(f"invalid URL {url!r}: {exc}") from None
    return text


def normalize_urls(url: Any) -> tuple[str, ...]:
    """One URL (anything :func:`normalize_url` takes) or a list/tuple of 1..:data:`MAX_URLS` of
    them (servers sharing one store, to fail over between), normalised, duplicates dropped
    (first kept)."""
    if isinstance(url, (list, tuple)):
        if not 1 <= len(url) <= MAX_URLS:
            raise ClientError(f"invalid URL list: expected 1..{MAX_URLS} URLs, got {len(url)}")
        return tuple(dict.fromkeys(normalize_url(u) for u in url))
    return (normalize_url(url),)


_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def check_host(host: str) -> None:
    """``host`` (as urlsplit gives it: no brackets) must be a DNS name (IDNA, a trailing dot
    and ``_`` allowed), an IPv4 address or an IPv6 address with an optional zone; else
    ``ValueError`` (turned into a ``ClientError`` by :func:`normalize_url`)."""
    bad = ValueError(f"{host!r} is not a host name or address")
    if ":" in host:  # only inside brackets: IPv6
        addr, _, zone = host.partition("%")
        try:
            ipaddress.IPv6Address(addr)
        except ValueError:
            raise bad from None
        if zone and not re.fullmatch(r"[\w.~-]+", urllib.parse.unquote(zone)):
            raise bad
        return
    name = urllib.parse.unquote(host).rstrip(".")
    if name and all(c.isdigit() or c == "." for c in name):  # digits and dots: IPv4 only
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise bad from None
        return
    try:
        ascii_name = name.encode("idna").decode("ascii")  # checks label lengths, empty labels
    except UnicodeError:
        raise bad from None
    if not ascii_name or len(ascii_name) > 253:
        raise bad
    if not all(_LABEL.fullmatch(label) for label in ascii_name.split(".")):
        raise bad


def is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is a loopback address or ``localhost``."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def with_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` set in its query (replacing any existing value of each key)."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k not in params] + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
