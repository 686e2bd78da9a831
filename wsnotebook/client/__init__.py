"""The reconnecting client: subscribes to a wsnotebook-compatible stream and feeds an EventFrame.

This ``__init__`` is the subpackage's interface (other subpackages import from here only).
Modules: ``client`` (the :class:`Client` facade, :func:`connect`, the running-clients registry),
``options`` (:class:`ClientOptions`, bounds), ``session`` (connect / consume / reconnect),
``sink`` (messages -> frame, resume, gaps), ``classify`` (retryable or fatal), ``url``,
``metering`` (wire bytes), ``redact`` (no secret in logs), ``traffic`` (the traffic log).
"""

from __future__ import annotations

from .client import Client, close_all, connect, connect_async, running_clients
from .options import ClientOptions
from .traffic import TrafficEntry, TrafficLog

__all__ = [
    "Client",
    "ClientOptions",
    "TrafficEntry",
    "TrafficLog",
    "close_all",
    "connect",
    "connect_async",
    "running_clients",
]
