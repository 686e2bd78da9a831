"""``Host`` header validation against DNS rebinding (pure functions, no I/O).

A page on ``evil.example`` whose name the attacker re-points at 127.0.0.1 can make same-origin
``GET`` requests to a loopback server without an ``Origin`` header; what gives it away is the
``Host`` header, which names ``evil.example``.  A loopback server therefore accepts only the
loopback names (``localhost``, any ``127.x.y.z``, ``[::1]``; any port) plus the names configured
in ``allowed_hosts``.  A non-loopback bind requires a token anyway and checks ``Host`` only when
``allowed_hosts`` is given (then the loopback names, the bind address and those names are
accepted).  A request without ``Host`` (HTTP/1.0) is allowed: a browser always
sends one.

**Through Jupyter** (``jupyter-server-proxy``, ``<jupyter>/proxy/<port>/...``): the proxy
forwards the client's own ``Host`` (Jupyter's public name, e.g. ``hub.example.org``) and
``Origin``.  Such a request is accepted when its ``Host`` is one of the Jupyter server's own
names, or when it carries a token Jupyter accepts (``Authorization: token T`` or ``?token=T``,
which Jupyter checked before forwarding); a page served by Jupyter's origin passes the
``Origin`` check the same way (:meth:`HostPolicy.jupyter_origin_ok`).  What this kernel's Jupyter
server is comes from :mod:`.jupyter` (looked up only for a request that would otherwise be
refused, cached).  Nothing else is new: a rebinding page names its own host and cannot know
Jupyter's token.

:class:`HostPolicy` is built once per server; :meth:`HostPolicy.allows` runs once per request
(a dict lookup for the common names).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping

from .jupyter import JupyterServer, jupyter_server

__all__ = [
    "HostPolicy",
    "host_name",
    "is_loopback_host",
    "jupyter_token_given",
    "normalise_allowed_hosts",
    "valid_host_name",
]

#: names always accepted on a loopback bind (the ``Host`` value without its port, lower case)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "localhost."})


def host_name(value: str) -> str | None:
    """The name part of a ``Host`` header value, lower case, without the port and the brackets
    of an IPv6 literal; ``None`` when the value is malformed (bad port, unbalanced brackets,
    empty name)."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            return None
        name, rest = value[1:end], value[end + 1 :]
        if rest and not (rest.startswith(":") and _port_ok(rest[1:])):
            return None
        return name or None
    name, sep, port = value.rpartition(":")
    if not sep:
        name = value
    elif ":" in name or not _port_ok(port):  # a bare IPv6 address or a bad port
        return None
    return name or None


#: a DNS name (labels of letters, digits, ``-`` and ``_``; a trailing dot allowed) -- what a
#: configured host name must be unless it is an IP address
_DNS_NAME = re.compile(
    r"(?=.{1,253}$)[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_][a-z0-9_-]{0,62})*\.?"
)


def valid_host_name(name: str) -> bool:
    """Is ``name`` (lower case, no port, no brackets) a DNS name or an IP address?  Options that
    list host names refuse anything else (a path, a space, a URL) instead of never matching."""
    if _DNS_NAME.fullmatch(name):
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _port_ok(port: str) -> bool:
    return port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535


def is_loopback_host(name: str) -> bool:
    """Is ``name`` (as returned by :func:`host_name`) a loopback name or address?"""
    if name in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def normalise_allowed_hosts(hosts: Iterable[str]) -> tuple[str, ...]:
    """``allowed_hosts`` as a sorted tuple of lower-case names (ValueError on a non-string or
    empty name; a port or brackets given with a name are dropped: any port is accepted)."""
    if isinstance(hosts, str):
        raise ValueError("expected an iterable of host names, got a string")
    out: set[str] = set()
    for h in hosts:
        if not isinstance(h, str):
            raise ValueError(f"expected host names (strings), got {type(h).__name__}")
        name = host_name(h)
        if name is None or not valid_host_name(name):
            raise ValueError(f"not a host name: {h!r}")
        out.add(name)
    return tuple(sorted(out))


class HostPolicy:
    """Which ``Host`` header values a server accepts (see the module docstring)."""

    __slots__ = ("_jupyter", "_seen", "allowed", "enabled")

    #: Distinct ``Host`` values whose verdict is remembered (the check runs on every request;
    #: a client sends the same value each time).  Past it the memory starts over.
    MAX_SEEN = 1024

    def __init__(
        self,
        *,
        bind_host: str,
        allowed_hosts: Iterable[str] | None,
        jupyter: Callable[[], JupyterServer | None] = jupyter_server,
    ) -> None:
        bind = bind_host.strip().strip("[]").lower() or None
        loopback_bind = bind is not None and is_loopback_host(bind)
        names = set(normalise_allowed_hosts(allowed_hosts or ()))
        if bind and bind not in ("0.0.0.0", "::"):
            names.add(bind)  # the address the server is bound to is its own name
        #: configured names (lower case, no port), plus the bind address
        self.allowed = frozenset(names)
        #: check at all: always on a loopback bind, elsewhere only with allowed_hosts given
        self.enabled = loopback_bind or allowed_hosts is not None
        self._seen: dict[str, bool] = {}
        self._jupyter = jupyter

    def allows(
        self,
        host: str | None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, str] | None = None,
    ) -> bool:
        """Is a request with this ``Host`` header value (``None``: absent) accepted?  When the
        check is on, loopback names are always accepted (a rebinding page cannot send them:
        the browser names the attacker's host), plus the configured names, plus requests
        forwarded by this kernel's Jupyter server (given ``headers``/``query``; module doc)."""
        if not self.enabled or host is None or self._seen.get(host) or self._host_ok(host):
            return True
        return headers is not None and self._via_jupyter(host, headers, query or {})

    def _host_ok(self, host: str) -> bool:
        verdict = self._seen.get(host)
        if verdict is None:
            name = host_name(host)
            verdict = name is not None and (name in self.allowed or is_loopback_host(name))
            if len(self._seen) >= self.MAX_SEEN:
                self._seen.clear()
            self._seen[host] = verdict
        return verdict

    def _via_jupyter(self, host: str, headers: Mapping[str, str], query: Mapping[str, str]) -> bool:
        server = self._jupyter()
        if server is None:
            return False
        name = host_name(host)
        if name is not None and name in server.hosts:
            return True
        return jupyter_token_given(server, headers, query)

    def jupyter_origin_ok(
        self,
        origin: str,
        host: str | None,
        headers: Mapping[str, str],
        query: Mapping[str, str],
    ) -> bool:
        """An ``Origin`` outside the allow-list, accepted because it is the Jupyter server's
        own (its names), or the request's own host on a request carrying Jupyter's token."""
        server = self._jupyter()
        if server is None:
            return False
        try:
            origin_name = (urllib.parse.urlsplit(origin).hostname or "").lower()
        except ValueError:
            return False
        if origin_name in server.hosts:
            return True
        same = host is not None and host_name(host) == origin_name
        return same and jupyter_token_given(server, headers, query)


def jupyter_token_given(
    server: JupyterServer, headers: Mapping[str, str], query: Mapping[str, str]
) -> bool:
    """Does the request carry a token of ``server`` (``Authorization: token T`` or
    ``?token=T``)?  Compared in constant time."""
    if not server.tokens:
        return False
    auth = headers.get("Authorization", "")
    given = auth[6:].strip() if auth[:6].lower() == "token " else ""
    given = given or query.get("token", "")
    if not given:
        return False
    return any(hmac.compare_digest(given.encode(), t.encode()) for t in server.tokens)
