"""Rate-limited logging for lines a remote party can trigger (bad requests, refused handshakes,
invalid messages, dropped clients, accept errors): a flood of bad input cannot flood the log.

:class:`LogThrottle` is the sans-I/O core (no logging, no clock of its own): per key (the kind of
line, e.g. ``"client_abort"``), at most ``per_period`` lines are admitted per ``period``
seconds; the rest are counted.  The first line admitted after a period with suppressed lines
carries their number, and :meth:`LogThrottle.expired` hands out the counts of periods that
ended with nothing admitted after them (for a periodic summary).  Keys are bounded
(``max_keys``, least recently used forgotten first), so keying by a peer address stays bounded.

:class:`ThrottledLog` wraps a :class:`logging.Logger` with it: ``throttled.log(level, key, msg,
*args)`` logs like ``logger.log`` when admitted and appends ``" (K more suppressed)"`` to the
first line after suppressed ones; :meth:`ThrottledLog.flush` logs one summary line per key whose
period ended with suppressed lines not yet reported.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, MutableMapping
from typing import Any

__all__ = [
    "DEFAULT_LOG_PERIOD",
    "DEFAULT_LOG_PER_PERIOD",
    "LogThrottle",
    "ThrottledLog",
    "ThrottledLoggerAdapter",
]

#: Lines admitted per key per period, and the period in seconds.
DEFAULT_LOG_PER_PERIOD = 5
DEFAULT_LOG_PERIOD = 60.0


class _Window:
    __slots__ = ("count", "start", "suppressed")

    def __init__(self, start: float) -> None:
        self.start = start
        self.count = 0
        self.suppressed = 0


class LogThrottle:
    """At most ``per_period`` admitted lines per key per ``period`` seconds (``clock()``)."""

    def __init__(
        self,
        per_period: int = DEFAULT_LOG_PER_PERIOD,
        period: float = DEFAULT_LOG_PERIOD,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 1024,
    ) -> None:
        if per_period < 1:
            raise ValueError(f"per_period must be >= 1, got {per_period}")
        if not period > 0:
            raise ValueError(f"period must be > 0, got {period}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be >= 1, got {max_keys}")
        self.per_period = per_period
        self.period = float(period)
        self.max_keys = max_keys
        self._clock = clock
        self._windows: OrderedDict[str, _Window] = OrderedDict()
        #: lines suppressed in total (every key, every period)
        self.suppressed_total = 0

    def __len__(self) -> int:
        return len(self._windows)

    def admit(self, key: str) -> int | None:
        """``None``: suppress this line.  Else log it; the int is how many lines of ``key``
        were suppressed (and not yet reported) before it."""
        now = self._clock()
        windows = self._windows
        w = windows.get(key)
        if w is None:
            w = windows[key] = _Window(now)
            if len(windows) > self.max_keys:
                windows.popitem(last=False)
        else:
            windows.move_to_end(key)
        carried = 0
        if now - w.start >= self.period:
            carried, w.suppressed, w.count, w.start = w.suppressed, 0, 0, now
        if w.count < self.per_period:
            w.count += 1
            return carried
        w.suppressed += 1
        self.suppressed_total += 1
        return None

    def expired(self) -> list[tuple[str, int]]:
        """``(key, suppressed)`` for every key whose period is over with lines suppressed in
        it; those counts are reported here (and forgotten), not on the key's next line."""
        now = self._clock()
        out: list[tuple[str, int]] = []
        for key, w in self._windows.items():
            if w.suppressed and now - w.start >= self.period:
                out.append((key, w.suppressed))
                w.suppressed = 0
        return out


class ThrottledLog:
    """A logger whose lines are admitted by a :class:`LogThrottle` (see the module docstring)."""

    def __init__(
        self,
        logger: logging.Logger,
        per_period: int = DEFAULT_LOG_PER_PERIOD,
        period: float = DEFAULT_LOG_PERIOD,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.throttle = LogThrottle(per_period, period, clock=clock)

    def log(self, level: int, key: str, msg: str, *args: object, exc_info: Any = None) -> bool:
        """Log ``msg % args`` at ``level`` unless ``key`` is over its rate; True when logged.
        The line is not formatted when the level is disabled or the line suppressed;
        ``exc_info`` as for ``logger.log`` (``True``: the current exception's traceback)."""
        if not self.logger.isEnabledFor(level):
            return False
        suppressed = self.throttle.admit(key)
        if suppressed is None:
            return False
        if suppressed:
            msg += " (%d more suppressed)"
            args = (*args, suppressed)
        self.logger.log(level, msg, *args, exc_info=exc_info)
        return True

    def debug(self, key: str, msg: str, *args: object, exc_info: Any = None) -> bool:
        return self.log(logging.DEBUG, key, msg, *args, exc_info=exc_info)

    def info(self, key: str, msg: str, *args: object, exc_info: Any = None) -> bool:
        return self.log(logging.INFO, key, msg, *args, exc_info=exc_info)

    def warning(self, key: str, msg: str, *args: object, exc_info: Any = None) -> bool:
        return self.log(logging.WARNING, key, msg, *args, exc_info=exc_info)

    def error(self, key: str, msg: str, *args: object, exc_info: Any = None) -> bool:
        return self.log(logging.ERROR, key, msg, *args, exc_info=exc_info)

    def flush(self, level: int = logging.INFO) -> int:
        """Log one summary line per key whose period ended with lines suppressed; returns how
        many summary lines were logged."""
        items = self.throttle.expired()
        for key, n in items:
            self.logger.log(level, "wsnotebook: %s: %d more suppressed", key, n)
        return len(items)


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) > 1 else None
    if exc_info:
        return sys.exc_info()[1]
    return None


class ThrottledLoggerAdapter(logging.LoggerAdapter):
    """A logger to hand to a library (aiohttp's ``RequestHandler(logger=...)``): every record
    goes through ``throttled`` keyed by its message template, so a flood of bad requests
    cannot flood the log; a record whose exception is one of ``quiet`` (client errors such as
    a malformed request) loses its traceback and is logged as one line at ``quiet_level``."""

    def __init__(
        self,
        throttled: ThrottledLog,
        quiet: tuple[type[BaseException], ...] = (),
        quiet_level: int = logging.DEBUG,
    ) -> None:
        super().__init__(throttled.logger, {})
        self.throttled = throttled
        self.quiet = quiet
        self.quiet_level = quiet_level

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        exc_info = kwargs.pop("exc_info", None)
        text = str(msg)
        key = f"{self.logger.name}: {text}"
        exc = _exception_of(exc_info)
        if exc is not None and isinstance(exc, self.quiet):
            level, exc_info = min(level, self.quiet_level), None
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            text += ": %s"
            args = (*args, detail)
        self.throttled.log(level, key, text, *args, exc_info=exc_info)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs
