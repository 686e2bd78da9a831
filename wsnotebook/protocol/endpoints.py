"""Endpoint URLs derived from a server URL (sans-I/O: string in, string out).

A user names a server by whatever URL they have at hand: its WebSocket stream
(``ws://h:p/stream``), its HTTP root (``http://h:p``), or either behind a path prefix such as
Jupyter's proxy (``https://hub/user/x/proxy/4000/stream``).  :func:`events_endpoint` turns any of
them into the ``POST /events`` URL: the path prefix is kept (a proxied server's ingest lives
under it), ``ws``/``wss`` map to ``http``/``https``, and of the query only ``token=`` is kept
(Jupyter's token; the stream's own options such as ``batch=`` mean nothing to ``/events``).
Every producer of the package (the demo, replay, ``wsnotebook send``) uses it, so a URL that
works for one works for all.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError

__all__ = ["events_endpoint"]

_HTTP_SCHEMES = {"ws": "http", "wss": "https", "http": "http", "https": "https"}


def events_endpoint(url: str) -> str:
    """The ``POST /events`` URL of the server ``url`` names (see the module docstring).

    Raises :class:`~wsnotebook.errors.ConfigError` unless ``url`` is an absolute
    http(s)/ws(s) URL with a host."""
    if not isinstance(url, str):
        raise ConfigError(f"expected a server URL, got {type(url).__name__}")
    parts = urlsplit(url.strip())
    scheme = _HTTP_SCHEMES.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ConfigError(f"expected an http(s):// or ws(s):// URL, got {url!r}")
    path = parts.path.rstrip("/")
    for suffix in ("/stream", "/events"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    query = "&".join(q for q in parts.query.split("&") if q.startswith("token="))
    return urlunsplit((scheme, parts.netloc, path + "/events", query, ""))
