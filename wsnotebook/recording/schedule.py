"""The replay schedule: when each recorded event is sent again (sans-I/O, injected clock).

Event ``i`` recorded at ``t_i`` (epoch ms, see ``Recording.times_ms``) is due at
``start + (T_i - T_0) / speed / 1000`` seconds on the replayer's clock, where ``T_i`` is the
running maximum of ``t_0..t_i``: recorded order is kept (an event stamped earlier than the one
before it goes right after it), and a time the clock cannot use (0, NaN) counts as the previous
one.  ``speed=None`` is "as fast as possible": everything is due at once.

The shell asks :meth:`ReplaySchedule.due` how far it may send now and
:meth:`ReplaySchedule.next_time` when to wake up.  A shell that falls behind sends what fell due
back to back and so catches up: the schedule is absolute, lateness never accumulates.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Sequence

from .._validate import bounded
from ..errors import ConfigError

__all__ = ["MAX_SPEED", "ReplaySchedule", "parse_speed"]

#: fastest finite speed factor accepted (``None`` / ``"max"``: no pacing at all)
MAX_SPEED = 1_000_000.0


def parse_speed(value: object) -> float | None:
    """``"max"``/``None`` -> ``None``; else a number in ``(0, MAX_SPEED]`` (ConfigError)."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "max"):
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"speed must be a number > 0 or 'max', got {value!r}") from None
    speed = float(bounded("speed", value, 0.0, MAX_SPEED))
    if speed <= 0:
        raise ConfigError(f"speed must be > 0 or 'max', got {speed}")
    return speed


class ReplaySchedule:
    """Send times for ``times_ms`` at ``speed`` (``None``: all at once) from ``start``."""

    def __init__(
        self,
        times_ms: Sequence[float],
        *,
        speed: float | None,
        clock: Callable[[], float],
        start: float | None = None,
    ) -> None:
        self.speed = speed
        self.clock = clock
        self.start = clock() if start is None else start
        offsets: list[float] = []
        base: float | None = None
        last = 0.0
        for t in times_ms:
            ok = isinstance(t, (int, float)) and math.isfinite(t) and t > 0
            if base is None and ok:
                base = float(t)
            if ok and base is not None:
                last = max(last, (float(t) - base) / 1000.0)
            offsets.append(last)
        scale = 0.0 if speed is None else 1.0 / speed
        #: seconds after ``start`` at which each event is due (non-decreasing)
        self.offsets = [o * scale for o in offsets]
        self.sent = 0

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def duration(self) -> float:
        """Seconds from the first send to the last on schedule (0 at ``speed=None``)."""
        return self.offsets[-1] if self.offsets else 0.0

    def send_time(self, i: int) -> float:
        """Clock time at which event ``i`` is due."""
        return self.start + self.offsets[i]

    def due(self, now: float | None = None) -> int:
        """Index one past the last event due at ``now`` (never below :attr:`sent`)."""
        now = self.clock() if now is None else now
        return max(self.sent, bisect_right(self.offsets, now - self.start))

    def advance(self, upto: int) -> None:
        """Events before ``upto`` were sent."""
        self.sent = max(self.sent, min(upto, len(self.offsets)))

    @property
    def finished(self) -> bool:
        return self.sent >= len(self.offsets)

    def next_time(self) -> float | None:
        """Clock time when the next unsent event is due (``None`` when all were sent)."""
        if self.finished:
            return None
        return self.send_time(self.sent)

    def lateness(self, i: int, sent_at: float) -> float:
        """How late (s, negative: early) event ``i`` went out when sent at ``sent_at``."""
        return sent_at - self.send_time(i)
