"""Sans-I/O core of the wire protocol: messages, batching, backoff, resume, rate and latency.

Nothing here touches a socket or reads the clock by itself: clocks and random number generators
are injected, so every policy is unit-tested exhaustively and fast.  The server and the client are
thin asyncio shells around these classes.  The wire protocol is documented in
``docs/protocol.md``.

Message types (server -> client): ``initial``, ``event``, ``batch``, ``heartbeat``, ``gap``,
``error``.  Client -> server: ``publish``, ``heartbeat``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

Clock = Callable[[], float]


# --------------------------------------------------------------------------- batching


def bounded(
    name: str,
    value: Any,
    lo: float,
    hi: float = math.inf,
    *,
    integer: bool = False,
    unit: str = "",
) -> None:
    """``value`` must be a finite number in ``lo..hi`` (an ``int`` when ``integer``; never a
    ``bool``): else a :class:`ConfigError` naming ``name`` (and ``unit``, e.g. ``" s"``)."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    if not (lo <= value <= hi and math.isfinite(value)):
        bounds = f">= {lo:g}{unit}" if hi == math.inf else f"in {lo:g}..{hi:g}{unit}"
        raise ConfigError(f"{name} must be {bounds}, got {value!r}")
