"""The reconnecting client: subscribes to a wsnotebook-compatible stream and feeds an EventFrame."""

from __future__ import annotations

from .client import Client, close_all, connect, connect_async, running_clients
from .traffic import TrafficEntry, TrafficLog

__all__ = [
    "Client",
    "TrafficEntry",
    "TrafficLog",
    "close_all",
    "connect",
    "connect_async",
    "running_clients",
]
