"""The kernel-side server: HTTP ingest + WebSocket stream on one aiohttp port.

The interface of the subpackage: other parts of wsnotebook import from here only.
"""

from __future__ import annotations

from .jupyter import JupyterServer, find_jupyter_server, jupyter_server
from .options import ServerOptions
from .public import PublicUrls, public_urls
from .server import Server
from .start import running_servers, serve, stop_all

__all__ = [
    "JupyterServer",
    "PublicUrls",
    "Server",
    "ServerOptions",
    "find_jupyter_server",
    "jupyter_server",
    "public_urls",
    "running_servers",
    "serve",
    "stop_all",
]
