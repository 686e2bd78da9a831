"""The one place that checks option values and arguments (bounds, types, ports).

Every user-facing option goes through these helpers, so a bad value gets the same kind of
message everywhere: a :class:`~wsnotebook.errors.ConfigError` naming the option, its bound
(with its unit) and the value given.  ``bool`` is never taken for a number, NaN and infinities
are refused unless a bound is open (``hi=math.inf`` still refuses ``inf`` itself).  The
``arg_*`` variants are argparse ``type=`` callables for the CLI and the ``%ws`` magics (one
rule for both: they used to drift, one accepted ``inf``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import operator
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

__all__ = [
    "Clock",
    "arg_port",
    "arg_positive_float",
    "arg_seconds",
    "bounded",
    "integer",
    "port",
]

#: An injected clock: seconds as a float (``time.monotonic`` in production, a fake in tests).
Clock = Callable[[], float]


def bounded(
    name: str,
    value: Any,
    lo: float,
    hi: float = math.inf,
    *,
    integer: bool = False,
    unit: str = "",
) -> Any:
    """``value`` must be a finite number in ``lo..hi`` (an ``int`` when ``integer``; never a
    ``bool``): else a :class:`ConfigError` naming ``name`` (and ``unit``, e.g. ``" s"``).
    Returns ``value``."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind}, got {value!r}")
    if not (lo <= value <= hi and math.isfinite(value)):
        bounds = f">= {lo:g}{unit}" if hi == math.inf else f"in {lo:g}..{hi:g}{unit}"
        raise ConfigError(f"{name} must be {bounds}, got {value!r}")
    return value


def integer(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an ``int`` (an ``int`` or numpy integer, never a ``bool``) within the bounds
    given, else a :class:`ConfigError` naming ``name``."""
    n: int | None = None
    if not isinstance(value, bool):
        with contextlib.suppress(TypeError):
            n = operator.index(value)
    if n is None:
        got = "None" if value is None else f"{type(value).__name__} {value!r}"
        raise ConfigError(f"{name} must be an integer, got {got}")
    if lo is not None and n < lo and hi is None:
        raise ConfigError(f"{name} must be >= {lo}, got {n}")
    if (lo is not None and n < lo) or (hi is not None and n > hi):
        raise ConfigError(f"{name} must be in {lo}..{hi}, got {n}")
    return n


def port(name: str, value: Any) -> int:
    """A TCP port, ``0..65535`` (0 = any free port)."""
    return integer(name, value, 0, 65535)


# --------------------------------------------------------------------------- argparse types


def arg_positive_float(text: str) -> float:
    """A finite number > 0 (``inf`` and ``nan`` refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def arg_seconds(text: str) -> float:
    """A period or timeout in seconds: 0.01 .. 86400 (a day)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.01 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"must be in 0.01..86400 s, got {text}")
    return value


def arg_port(text: str) -> int:
    """A TCP port, ``0..65535`` (0 = any free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"port must be in 0..65535 (0 = any free port), got {text}"
        )
    return value
