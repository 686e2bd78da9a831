"""The kernel-side server: HTTP ingest + WebSocket stream on one aiohttp port."""

from __future__ import annotations

from .server import Server, running_servers, serve, stop_all

__all__ = ["Server", "running_servers", "serve", "stop_all"]
