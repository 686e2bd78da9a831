"""Which Jupyter server runs this kernel: its URL, base URL, token and host names.

Used for the URLs at which the kernel's server is reachable through Jupyter's own front door
(``jupyter-server-proxy``: ``<jupyter base url>/proxy/<port>/...``, see :mod:`.public`) and by
the ``Host`` guard (:mod:`.hostcheck`) to recognise requests that Jupyter forwarded.

How a kernel learns it (no API for this exists; these are the facts Jupyter leaves around):

* every running ``jupyter_server`` writes ``jpserver-<pid>.json`` in the Jupyter runtime
  directory (``jupyter_core.paths.jupyter_runtime_dir()``, ``$JUPYTER_RUNTIME_DIR``) with its
  ``url``, ``base_url``, ``hostname``, ``port``, ``token`` and ``pid`` (what ``jupyter server
  list`` prints).  A kernel is started by its server (jupyter_client's local provisioner), so
  the file whose ``pid`` is this process's parent is the one; if there is no such file, this
  process is an IPython kernel and exactly one server runs, that one (a kernel started through
  a wrapper);
* on JupyterHub (and Binder, which runs one) the single-user server's environment, inherited
  by its kernels, has ``JUPYTERHUB_SERVICE_PREFIX`` (the base URL, ``/user/<name>/``) and
  ``JUPYTERHUB_API_TOKEN`` (a token the hub and the server accept);
* the public origin (scheme, host, port) is not known to a server behind a hub's proxy: give it
  with ``$WSNOTEBOOK_PUBLIC_URL`` (or the hub's ``$JUPYTERHUB_PUBLIC_URL`` when set), e.g.
  ``https://hub.example.org``.  Without it the URLs are paths (``/user/x/proxy/4000/...``)
  behind a hub (its own URL names an internal address), else the server's own origin.

Reading the runtime directory is a few small files; the answer is cached (``CACHE_S``).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JupyterServer", "find_jupyter_server", "jupyter_server"]

#: environment variables naming the public origin, first set wins
PUBLIC_URL_ENV = ("WSNOTEBOOK_PUBLIC_URL", "JUPYTERHUB_PUBLIC_URL")
#: how long a discovery result is reused (a miss is retried after this)
CACHE_S = 5.0


@dataclass(frozen=True)
class JupyterServer:
    """What the kernel knows of its Jupyter server.

    ``origin``: ``scheme://host[:port]`` users reach it at (``""`` when unknown);
    ``base_url``: its path prefix, ``/`` or ``/user/<name>/`` (always ends with ``/``);
    ``token``: a token Jupyter accepts (``None`` when unknown; never logged);
    ``hosts``: host names (lower case, no port) that are Jupyter's own;
    ``source``: where this came from, for messages."""

    origin: str
    base_url: str
    token: str | None
    hosts: frozenset[str]
    source: str

    def __repr__(self) -> str:  # the token stays out of reprs and logs
        return (
            f"JupyterServer(origin={self.origin!r}, base_url={self.base_url!r}, "
            f"token={'***' if self.token else None}, source={self.source!r})"
        )

    @property
    def tokens(self) -> tuple[str, ...]:
        return (self.token,) if self.token else ()


def _runtime_dir(env: Mapping[str, str]) -> Path | None:
    if env.get("JUPYTER_RUNTIME_DIR"):
        return Path(env["JUPYTER_RUNTIME_DIR"])
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return None
    return Path(jupyter_runtime_dir())


def _server_files(runtime: Path | None) -> list[dict[str, Any]]:
    if runtime is None or not runtime.is_dir():
        return []
    out = []
    for path in sorted(runtime.glob("jpserver-*.json")):
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict):
            info["_file"] = path.name
            out.append(info)
    return out


def _origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    return f"{parts.scheme}://{parts.netloc}"


def _host_of(origin: str) -> str | None:
    return urllib.parse.urlsplit(origin).hostname if origin else None


def _slashed(path: str) -> str:
    path = "/" + path.strip("/")
    return path if path == "/" else path + "/"


def find_jupyter_server(
    env: Mapping[str, str] | None = None,
    *,
    runtime_dir: Path | None = None,
    parent_pid: int | None = None,
    in_kernel: bool | None = None,
) -> JupyterServer | None:
    """Discover this kernel's Jupyter server (see the module doc); ``None`` when this process
    does not look like it runs under one.  Pure apart from reading the runtime directory."""
    env = os.environ if env is None else env
    ppid = os.getppid() if parent_pid is None else parent_pid
    servers = _server_files(runtime_dir if runtime_dir is not None else _runtime_dir(env))
    chosen = next((s for s in servers if s.get("pid") == ppid), None)
    how = "parent"
    if in_kernel is None:
        in_kernel = "ipykernel" in sys.modules
    if chosen is None and in_kernel and len(servers) == 1:
        chosen, how = servers[0], "only running server"
    hub_prefix = env.get("JUPYTERHUB_SERVICE_PREFIX")
    if chosen is None and not hub_prefix:
        return None
    public = next((env[k] for k in PUBLIC_URL_ENV if env.get(k)), "")
    origin = _origin_of(public)
    hosts: set[str] = set()
    token = None
    if chosen is not None:
        own = _origin_of(str(chosen.get("url", "")))
        if not hub_prefix:  # behind a hub, the server's own origin is an internal address
            origin = origin or own
        for name in (_host_of(own), chosen.get("hostname")):
            if isinstance(name, str) and name and name not in ("0.0.0.0", "::"):
                hosts.add(name.lower())
        token = chosen.get("token") or None
        base = str(chosen.get("base_url") or hub_prefix or "/")
        source = f"{chosen['_file']} ({how})"
    else:
        base = str(hub_prefix)
        source = "JUPYTERHUB_SERVICE_PREFIX"
    token = token or env.get("JUPYTERHUB_API_TOKEN") or None
    host = _host_of(origin)
    if host:
        hosts.add(host.lower())
    return JupyterServer(
        origin=origin,
        base_url=_slashed(base),
        token=str(token) if token else None,
        hosts=frozenset(hosts),
        source=source,
    )


_cache: tuple[float, JupyterServer | None] | None = None
_cache_lock = threading.Lock()


def jupyter_server(*, refresh: bool = False) -> JupyterServer | None:
    """:func:`find_jupyter_server` for this process, cached for ``CACHE_S`` seconds."""
    global _cache
    now = time.monotonic()
    with _cache_lock:
        if not refresh and _cache is not None and now - _cache[0] < CACHE_S:
            return _cache[1]
    found = find_jupyter_server()
    with _cache_lock:
        _cache = (now, found)
    return found
