"""The URLs at which a kernel's server is reachable through Jupyter (``jupyter-server-proxy``).

On Binder or JupyterHub only the kernel's container reaches the server's port; Jupyter itself
is public.  With ``jupyter-server-proxy`` installed in the Jupyter server's environment
(``pip install 'wsnotebook[proxy]'``; ``binder/requirements.txt`` has it), everything the server
serves is also at ``<jupyter origin><base url>proxy/<port>/...``, HTTP and WebSocket alike,
behind Jupyter's own authentication (its token or login cookie; on a hub, the hub's).
:func:`public_urls` computes those URLs from what :mod:`.jupyter` finds out about the Jupyter
server (``Server.public_urls`` calls it).  Hooks send Jupyter's token with each request:
``Authorization: token <T>`` or ``?token=<T>``; the server's own token is not needed behind
the proxy (a loopback bind has none by default).
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from .jupyter import JupyterServer, jupyter_server

__all__ = ["PublicUrls", "public_urls"]


@dataclass(frozen=True)
class PublicUrls:
    """Where hooks and dashboards reach the server through Jupyter.

    ``base``: ``<origin><base url>proxy/<port>`` (a path only, ``/user/x/proxy/4000``, when
    the public origin is unknown: set ``$WSNOTEBOOK_PUBLIC_URL``); ``events``: the ``POST``
    URL; ``stream``: the WebSocket URL; ``token``: a token Jupyter accepts, when the kernel can
    know it (``None`` otherwise; it is not in ``repr``); ``source``: how Jupyter was found."""

    base: str
    events: str
    stream: str
    token: str | None
    source: str

    def __repr__(self) -> str:
        return (
            f"PublicUrls(events={self.events!r}, stream={self.stream!r}, "
            f"token={'***' if self.token else None}, source={self.source!r})"
        )

    def with_token(self, url: str) -> str:
        """``url`` with ``?token=<Jupyter token>`` (unchanged when the token is unknown): what
        ``wsn.connect()`` and ``python -m wsnotebook send --url`` take."""
        if not self.token:
            return url
        sep = "&" if "?" in url else "?"
        return f"{url}{sep}{urllib.parse.urlencode({'token': self.token})}"

    def hook_command(self, source_app: str = "my-project", event_type: str = "PreToolUse") -> str:
        """The one-line hook configuration: the seed's hook script (``.claude/hooks/
        send_event.py``, the ``command`` of a hook in ``.claude/settings.json``) pointed at this
        server through Jupyter.  The token is ``$JUPYTER_TOKEN`` from the agent's environment
        (the shell expands it; the settings file holds no secret); Jupyter takes it as
        ``?token=``."""
        return (
            f"uv run .claude/hooks/send_event.py --source-app {source_app} "
            f'--event-type {event_type} --server-url "{self.events}?token=$JUPYTER_TOKEN"'
        )

    def curl_command(self) -> str:
        """The same as a ``curl`` that posts a hook event's JSON read on stdin (the token in
        an ``Authorization: token`` header, from ``$JUPYTER_TOKEN``)."""
        return (
            f'curl -sf -X POST {self.events} -H "Authorization: token $JUPYTER_TOKEN" '
            "-H 'Content-Type: application/json' --data-binary @-"
        )

    def as_dict(self) -> dict[str, Any]:
        """The URLs (the token left out)."""
        return {
            "base": self.base,
            "events": self.events,
            "stream": self.stream,
            "source": self.source,
        }


def public_urls(port: int, jupyter: JupyterServer | None = None) -> PublicUrls | None:
    """The proxy URLs for a server on ``port`` under ``jupyter`` (default: this kernel's
    Jupyter server, :func:`~.jupyter.jupyter_server`); ``None`` outside Jupyter."""
    server = jupyter if jupyter is not None else jupyter_server()
    if server is None:
        return None
    base = f"{server.origin}{server.base_url}proxy/{int(port)}"
    if server.origin.startswith("https://"):
        stream = "wss://" + base[len("https://") :]
    elif server.origin.startswith("http://"):
        stream = "ws://" + base[len("http://") :]
    else:
        stream = base
    return PublicUrls(
        base=base,
        events=f"{base}/events",
        stream=f"{stream}/stream",
        token=server.token,
        source=server.source,
    )
