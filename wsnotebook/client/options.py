"""The client's options: one dataclass with every :func:`~wsnotebook.client.connect` keyword,
its default and its bound, validated in one place (:meth:`ClientOptions.__post_init__`).

Bounds (a value outside raises :class:`~wsnotebook.errors.ConfigError` naming the option):

* ``batch``: ``None``, ``"auto"`` or an int ``0..100_000``; ``interval_ms``: ``None`` or a whole
  number ``0..60_000`` (the server takes whole milliseconds: 12.5 would get a 400 and stop the
  client);
* ``since``: ``None`` or an int ``>= 0``;
* ``ping_interval``/``ping_timeout``: ``None`` or ``(0, 3600]`` s; ``open_timeout``: ``(0, 3600]``
  s; ``close_timeout``: ``(0, 60]`` s;
* ``max_message_bytes``: 1 KiB .. 1 GiB;
* ``frame``: ``None`` or an :class:`~wsnotebook.frame.EventFrame`;
* ``compression``: ``True``, ``False`` or ``"auto"``.
* ``in_process``: ``"auto"``, ``True`` or ``False`` (see :meth:`ClientOptions.in_process_for`);
  ``wire_format``: ``"columns"`` or ``"json"``.

``traffic_size`` is checked by :class:`~wsnotebook.client.traffic.TrafficLog` and the backoff
options by :class:`~wsnotebook.protocol.Backoff`, each where it is used.  Pure data, no I/O.
"""

from __future__ import annotations

import random
import ssl as ssl_module
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..events import DEFAULT_MAX_MESSAGE_BYTES
from ..frame import EventFrame

__all__ = ["ClientOptions"]


@dataclass(frozen=True)
class ClientOptions:
    """Every option of :func:`~wsnotebook.client.connect` (see its docstring for meanings)."""

    frame: EventFrame | None = None
    max_rows: int = 1_000_000
    token: str | None = None
    batch: int | str | None = "auto"
    interval_ms: float | None = None
    compression: bool | str = "auto"
    since: int | None = None
    backoff_base: float = 0.1
    backoff_factor: float = 2.0
    backoff_cap: float = 10.0
    max_attempts: int | None = None
    stable_after: float = 5.0
    ping_interval: float | None = 5.0
    ping_timeout: float | None = 10.0
    open_timeout: float = 10.0
    close_timeout: float = 2.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    traffic_size: int = 100_000
    ssl: ssl_module.SSLContext | None = None
    rng: random.Random | None = None
    in_process: bool | str = "auto"
    wire_format: str = "columns"

    def __post_init__(self) -> None:
        batch = self.batch
        if not (
            batch is None
            or batch == "auto"
            or (isinstance(batch, int) and not isinstance(batch, bool) and 0 <= batch <= 100_000)
        ):
            raise ConfigError(f"batch must be None, 'auto' or an int in 0..100000, got {batch!r}")
        interval_ms: Any = self.interval_ms
        if interval_ms is not None:
            whole = (isinstance(interval_ms, int) and not isinstance(interval_ms, bool)) or (
                isinstance(interval_ms, float) and interval_ms.is_integer()
            )
            # The server takes whole milliseconds: 12.5 would get a 400 and stop the client.
            if not whole or not 0 <= interval_ms <= 60_000:
                raise ConfigError(
                    f"interval_ms must be a whole number in 0..60000, got {interval_ms!r}"
                )
        since = self.since
        if since is not None and (
            not isinstance(since, int) or isinstance(since, bool) or since < 0
        ):
            raise ConfigError(f"since must be a non-negative int or None, got {since!r}")
        for name, value in (
            ("ping_interval", self.ping_interval),
            ("ping_timeout", self.ping_timeout),
        ):
            if value is not None and not 0 < value <= 3600:
                raise ConfigError(f"{name} must be in (0, 3600] s or None, got {value!r}")
        if not 0 < self.open_timeout <= 3600:
            raise ConfigError(f"open_timeout must be in (0, 3600] s, got {self.open_timeout!r}")
        if not 0 < self.close_timeout <= 60:
            raise ConfigError(f"close_timeout must be in (0, 60] s, got {self.close_timeout!r}")
        if not 1024 <= self.max_message_bytes <= 1 << 30:
            raise ConfigError(
                f"max_message_bytes must be in 1 KiB..1 GiB, got {self.max_message_bytes!r}"
            )
        if self.frame is not None and not isinstance(self.frame, EventFrame):
            raise ConfigError(f"frame must be an EventFrame, got {type(self.frame).__name__}")
        if self.wire_format not in ("columns", "json"):
            raise ConfigError(f"wire_format must be 'columns' or 'json', got {self.wire_format!r}")
        if not (isinstance(self.in_process, bool) or self.in_process == "auto"):
            raise ConfigError(f"in_process must be 'auto', True or False, got {self.in_process!r}")
        if self.compression not in (True, False, "auto"):
            raise ConfigError(
                f"compression must be True, False or 'auto', got {self.compression!r}"
            )

    def in_process_for(self, url: str) -> bool:
        """Should an attempt on ``url`` first look for a server of this process to subscribe to
        without a socket?  ``True``/``False``: as asked.  ``"auto"`` (the default): yes for a
        ``ws://`` URL unless an option asks for what only a socket does -- fixed batching
        (``batch`` other than ``"auto"``, or ``interval_ms``), ``compression=True``, an ``ssl``
        context -- so a client of this kernel's own server skips framing, loopback TCP and
        parsing (~25-30 % of the kernel pipeline's CPU at 1k-5k ev/s, benchmarks/README.md,
        row 10), while a ``wss://`` URL keeps its certificate check.  The attempt still takes
        the socket when no server of this process serves ``url`` (docs/protocol.md,
        "In-process subscribers")."""
        if isinstance(self.in_process, bool):
            return self.in_process
        return (
            url.startswith("ws://")
            and self.batch == "auto"
            and self.interval_ms is None
            and self.compression is not True
            and self.ssl is None
        )
