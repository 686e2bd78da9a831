"""Reconnect policy (sans-I/O): ``Backoff`` delays, ``ResumeState`` and ``Gap`` records.

``Backoff`` is exponential with full jitter (injected RNG) and a cap; ``ResumeState`` tracks the
last id and epoch a client holds, builds the ``?since=&epoch=`` of the next attempt, and turns
what the server says on reconnect (a new epoch, evicted ids, a final heartbeat) into ``Gap``
records.  Invariant: a loss is always recorded as a ``Gap``, never hidden; a gap whose end is
unknown has ``to_id = -1`` and a stated lower bound.
"""

from __future__ import annotations

import math
import operator
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import repeat
from typing import cast

from .._validate import Clock
from ..errors import ConfigError
from ..events import (
    Event,
)
from .messages import ServerMessage

# --------------------------------------------------------------------------- backoff


class Backoff:
    """Exponential backoff with full jitter (AWS architecture blog's "full jitter").

    Delay for attempt ``n`` (0-based) is ``uniform(0, min(cap, base * factor**n))``, never below
    ``min_delay``.  ``max_attempts=None`` retries forever.  After a connection stayed up
    ``stable_after`` seconds, :meth:`connected`/:meth:`maybe_reset` resets the attempt count.

    Defaults: base 0.1 s, factor 2, cap 10 s, min_delay 0.01 s, forever, stable after 5 s.
    """

    def __init__(
        self,
        *,
        base: float = 0.1,
        factor: float = 2.0,
        cap: float = 10.0,
        min_delay: float = 0.01,
        max_attempts: int | None = None,
        stable_after: float = 5.0,
        rng: random.Random | None = None,
        clock: Clock,
    ) -> None:
        values = {
            "base": base,
            "factor": factor,
            "cap": cap,
            "min_delay": min_delay,
            "stable_after": stable_after,
        }
        for name, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ConfigError(f"backoff: {name} must be a finite number, got {v!r}")
        if base <= 0 or factor < 1 or cap < base or min_delay < 0 or stable_after < 0:
            raise ConfigError(
                "backoff: need base > 0, factor >= 1, cap >= base, min_delay >= 0, "
                "stable_after >= 0"
            )
        if max_attempts is not None and max_attempts < 0:
            raise ConfigError("backoff: max_attempts must be >= 0 or None")
        self.base, self.factor, self.cap, self.min_delay = base, factor, cap, min_delay
        self.max_attempts = max_attempts
        self.stable_after = stable_after
        self._rng = rng or random.Random()
        self._clock = clock
        self.attempts = 0
        self._connected_at: float | None = None

    def exhausted(self) -> bool:
        return self.max_attempts is not None and self.attempts >= self.max_attempts

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay before retry number ``attempt`` (0-based)."""
        # math.pow overflows for huge attempt counts; the cap bounds it anyway.
        exp = min(attempt, 1000)
        try:
            raw = self.base * math.pow(self.factor, exp)
        except OverflowError:
            raw = self.cap
        return min(self.cap, raw)

    def next_delay(self) -> float:
        """Delay before the next attempt; increments the attempt count."""
        top = self.ceiling(self.attempts)
        self.attempts += 1
        return max(self.min_delay, self._rng.uniform(0, top))

    def connected(self) -> None:
        """Record that a connection opened (reset happens once it has been stable)."""
        self._connected_at = self._clock()

    def disconnected(self) -> None:
        """Record a drop: reset the attempt count if the connection had been stable."""
        if (
            self._connected_at is not None
            and self._clock() - self._connected_at >= self.stable_after
        ):
            self.attempts = 0
        self._connected_at = None

    def reset(self) -> None:
        self.attempts = 0


# --------------------------------------------------------------------------- resume / sequencing


@dataclass(slots=True)
class Gap:
    """A recorded loss: events ``from_id..to_id`` inclusive will never arrive."""

    from_id: int
    to_id: int
    reason: str


#: The field an update of an event already sent carries: its own place in the stream.
UPDATE_SEQ = "update_seq"


def position(event: Event) -> int:
    """An event's place in the stream: ``update_seq`` for an update, else its ``id``."""
    seq = event.get(UPDATE_SEQ)
    if type(seq) is int:
        return seq
    return cast(int, event["id"])


class ResumeState:
    """Client-side resume bookkeeping: ``(epoch, last id)`` and gap detection.

    ``since()`` is the value for ``?since=`` (``None`` before the first event).
    ``on_initial(msg)`` returns the gaps the initial snapshot reveals:

    * a different ``epoch`` than before (server restarted with a fresh in-memory store): the
      events after our last id in the old epoch are lost -> ``Gap(last+1, -1, "new epoch")``
      (``to_id == -1`` means "unknown end"), and tracking restarts in the new epoch;
    * ``reset: true`` (events we asked for were evicted): ``Gap(last+1, first_replayed-1,
      "evicted")``.

    ``on_events(events)`` advances the last id.  Against a seed-style server (no ``seq``/
    ``epoch``), nothing is reported and the frame's id dedupe does the rest.
    """

    def __init__(self) -> None:
        self.epoch: str | None = None
        self.last_id: int | None = None

    def since(self) -> int | None:
        return self.last_id

    def on_initial(self, msg: ServerMessage) -> list[Gap]:
        gaps: list[Gap] = []
        if msg.epoch is not None and self.epoch is not None and msg.epoch != self.epoch:
            if self.last_id is not None:
                gaps.append(Gap(self.last_id + 1, -1, "new epoch"))
            self.last_id = None
        elif msg.reset and self.last_id is not None:
            first = min(map(position, msg.events), default=None)
            upper = first - 1 if first is not None else (msg.seq if msg.seq is not None else -1)
            if upper >= self.last_id + 1 or upper == -1:
                gaps.append(Gap(self.last_id + 1, upper, "evicted"))
        if msg.epoch is not None:
            self.epoch = msg.epoch
        self.on_events(msg.events)
        if self.last_id is None and msg.seq == 0:
            # Subscribed to an empty store: we are in sync at 0, so a reconnect must ask for
            # ?since=0 (everything) rather than the latest 300, or earlier events vanish unseen.
            self.last_id = 0
        return gaps

    def on_gap(self, from_id: int, to_id: int) -> None:
        if to_id < 0:  # ids are >= 1; a server's negative gap end moves nothing
            return
        if self.last_id is None or to_id > self.last_id:
            self.last_id = to_id

    def on_events(self, events: Sequence[Event]) -> None:
        """Events arrived: the resume position passes their ids, and the ``update_seq`` of
        updates (an update keeps its event's ``id``; its place in the stream is
        ``update_seq``, see docs/protocol.md "Updates")."""
        if events:
            self.on_ids(e["id"] for e in events)
            if any(map(operator.contains, events, repeat(UPDATE_SEQ))):
                self.on_ids(position(e) for e in events)

    def on_ids(self, ids: Iterable[int]) -> None:
        """Live events with these ids arrived (the columnar path: no event dicts)."""
        top = max(ids, default=None)
        # ids are >= 1: a negative one (a foreign server's) never becomes a resume position
        if top is not None and top >= 0 and (self.last_id is None or top > self.last_id):
            self.last_id = top
