"""The kernel-side server: HTTP ingest + WebSocket stream on one aiohttp port.

The interface of the subpackage: other parts of wsnotebook import from here only.
"""

from __future__ import annotations

from .options import ServerOptions
from .server import Server
from .start import running_servers, serve, stop_all

__all__ = ["Server", "ServerOptions", "running_servers", "serve", "stop_all"]
