"""Sans-I/O core of the wire protocol: messages, batching, backoff, resume, rate and latency.

Nothing here touches a socket or reads the clock by itself: clocks and random number generators
are injected, so every policy is unit-tested exhaustively and fast.  The server and the client are
thin asyncio shells around these classes.  The wire protocol is documented in
``docs/protocol.md``.

Message types (server -> client): ``initial``, ``event``, ``batch``, ``heartbeat``, ``gap``,
``error``.  Client -> server: ``publish``, ``heartbeat``.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import ConfigError, ProtocolError
from .events import FUSED_MIN, Event, all_valid, decode_json, encode_json, json_type, validate_event

Clock = Callable[[], float]

# --------------------------------------------------------------------------- message encoding

MESSAGE_TYPES_FROM_SERVER = ("initial", "event", "batch", "heartbeat", "gap", "error")
MESSAGE_TYPES_FROM_CLIENT = ("publish", "heartbeat")

#: Close codes used by the server (documented in docs/protocol.md).
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008  # bad token / origin, or a client that keeps sending invalid messages
CLOSE_TOO_BIG = 1009  # message larger than max_message_bytes
CLOSE_INTERNAL = 1011
CLOSE_RESTART = 1012
CLOSE_TRY_AGAIN = 1013  # slow consumer: its send queue overflowed; resume with ?since=
RETRYABLE_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013})


#: Handshake response header by which a wsnotebook server names itself (value: the wire
#: protocol version).  A wsnotebook client takes its columnar fast path for ``batch`` messages
#: only from such a server: its events are compact orjson output (see ``_columns.py``).
WSNOTEBOOK_HEADER = "X-Wsnotebook"
PROTOCOL_VERSION = "1"


def encode_event(event: Event) -> bytes:
    """Encode one stored event once; the result is reused for every client."""
    return encode_json(event)


def event_message(encoded_event: bytes) -> bytes:
    """``{"type":"event","data":<event>}`` from an already-encoded event (no re-encoding)."""
    return b'{"type":"event","data":' + encoded_event + b"}"


def batch_message(encoded_events: Sequence[bytes]) -> bytes:
    """``{"type":"batch","data":[...]}`` from already-encoded events."""
    return b'{"type":"batch","data":[' + b",".join(encoded_events) + b"]}"


def initial_message(
    encoded_events: Sequence[bytes],
    *,
    seq: int | None = None,
    epoch: str | None = None,
    reset: bool = False,
    extended: bool = False,
) -> bytes:
    """The ``initial`` snapshot.  Seed clients get exactly ``{"type","data"}``; clients that
    used an extension (``extended``) also get ``seq`` (last id), ``epoch`` and ``reset``."""
    head = b'{"type":"initial","data":[' + b",".join(encoded_events) + b"]"
    if extended:
        extra = {"seq": seq if seq is not None else 0, "epoch": epoch, "reset": reset}
        head += b"," + encode_json(extra)[1:-1]
    return head + b"}"


#: Room left in a message for its envelope (type, seq, epoch, ... and the separators); for
#: small limits an eighth of the limit (>= 128 bytes: the largest envelope we write is ~120).
ENVELOPE_BYTES = 4096


def event_room(max_bytes: int) -> int:
    """Bytes of encoded events (with their separators) one message of at most ``max_bytes``
    can carry beside its envelope."""
    return max_bytes - min(ENVELOPE_BYTES, max(128, max_bytes // 8))


def fit_newest(encoded_events: Sequence[bytes], max_bytes: int) -> int:
    """How many of the *newest* (last) ``encoded_events`` fit in one message of at most
    ``max_bytes`` (envelope included): an ``initial`` snapshot keeps the latest events that fit.
    At least one, so a single event is never held back (its size was bounded at ingest)."""
    budget = event_room(max_bytes)
    total = 0
    for k, size in enumerate(map(len, reversed(encoded_events))):
        total += size + 1
        if total > budget:
            return max(k, 1)
    return len(encoded_events)


def fit_oldest(encoded_events: Sequence[bytes], max_bytes: int) -> int:
    """How many of the *oldest* (first) ``encoded_events`` fit in one message of at most
    ``max_bytes``: a replay page sends those and continues after them.  At least one."""
    budget = event_room(max_bytes)
    total = 0
    for k, size in enumerate(map(len, encoded_events)):
        total += size + 1
        if total > budget:
            return max(k, 1)
    return len(encoded_events)


def heartbeat_message(timestamp_ms: float) -> bytes:
    return encode_json({"type": "heartbeat", "timestamp": int(timestamp_ms)})


def gap_message(from_id: int, to_id: int, reason: str, *, epoch: str | None = None) -> bytes:
    """Events ``from_id..to_id`` (inclusive) cannot be replayed (evicted or new epoch)."""
    return encode_json(
        {
            "type": "gap",
            "data": {"from_id": from_id, "to_id": to_id, "reason": reason, "epoch": epoch},
        }
    )


#: Longest ``error`` message text (characters): an error that quotes what a client sent (an
#: unknown ``type``, say) must not make the reply bigger than the message it answers.
MAX_ERROR_CHARS = 300


def error_message(message: str, code: str) -> bytes:
    if len(message) > MAX_ERROR_CHARS:
        message = message[: MAX_ERROR_CHARS - 1] + "…"
    return encode_json({"type": "error", "data": {"message": message, "code": code}})


@dataclass(slots=True)
class ClientMessage:
    """A decoded client -> server message."""

    type: str
    data: Any = None


def parse_client_message(raw: bytes | str) -> ClientMessage:
    """Decode a client message; raise :class:`ProtocolError` with a precise reason."""
    obj = decode_json(raw)
    if not isinstance(obj, dict):
        raise ProtocolError(f"message: expected object, got {json_type(obj)}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"type: expected string, got {json_type(kind)}")
    if kind not in MESSAGE_TYPES_FROM_CLIENT:
        raise ProtocolError(f"type: unknown message type {kind!r} (expected publish or heartbeat)")
    if kind == "publish" and "data" not in obj:
        raise ProtocolError("data: missing required field")
    return ClientMessage(kind, obj.get("data"))


@dataclass(slots=True)
class ServerMessage:
    """A decoded server -> client message (client side)."""

    type: str
    events: list[Event] = field(default_factory=list)
    seq: int | None = None
    epoch: str | None = None
    reset: bool = False
    data: Any = None
    invalid: int = 0  # events dropped because they failed validation


def _server_events(items: list[Any]) -> tuple[list[Event], int]:
    """The valid events of ``items`` (a server's ``data``) and how many were dropped."""
    if len(items) >= FUSED_MIN and all_valid(items, require_id=True):
        return items, 0
    good: list[Event] = []
    for ev in items:
        try:
            good.append(validate_event(ev, require_id=True))
        except (ValueError, OverflowError):  # OverflowError: an int timestamp beyond floats
            pass
    return good, len(items) - len(good)


def parse_server_message(raw: bytes | str) -> ServerMessage:
    """Decode a server message for the client (its hot path).

    Unknown message types are returned with ``type`` set and no events (the caller counts and
    ignores them).  Events failing validation are dropped and counted in ``invalid``; they never
    raise.  Undecodable JSON, a non-object message, a non-string ``type`` or an ``initial`` or
    ``batch`` whose ``data`` is not an array raise :class:`ProtocolError`.
    Events are validated as by ``validate_event(event, require_id=True)``; batches of
    ``FUSED_MIN`` (6) or more go through a fused check first (:func:`wsnotebook.events.all_valid`),
    ~1.5-2.3x cheaper.
    """
    obj = decode_json(raw)
    if not isinstance(obj, dict):
        raise ProtocolError(f"message: expected object, got {json_type(obj)}")
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"type: expected string, got {json_type(kind)}")
    msg = ServerMessage(kind, data=obj.get("data"))
    if kind in ("initial", "batch", "event"):
        data = obj.get("data")
        items = [data] if kind == "event" else data
        if not isinstance(items, list):
            raise ProtocolError(f"data: expected array, got {json_type(items)}")
        msg.events, msg.invalid = _server_events(items)
        if kind == "initial":
            seq = obj.get("seq")
            msg.seq = seq if isinstance(seq, int) and not isinstance(seq, bool) else None
            epoch = obj.get("epoch")
            msg.epoch = epoch if isinstance(epoch, str) else None
            msg.reset = obj.get("reset") is True
    return msg


# --------------------------------------------------------------------------- batching


def _bounded(
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


class Batcher:
    """Collects items and flushes on size or age.

    ``add(item)`` returns a full batch (a list) when ``max_size`` items are reached, or, with
    ``max_bytes``, once the items' ``len`` adds up to ``max_bytes`` (a batch exceeds it by less
    than its last item), else ``None``.  ``poll()`` returns the pending batch when its oldest
    item is ``max_interval`` seconds old.  ``deadline()`` says when ``poll`` will next flush
    (``None`` when empty).  ``max_interval=0`` means flush on every poll.  Bounds:
    ``1 <= max_size <= 100_000``; ``0 <= max_interval <= 60``; ``max_bytes`` None or >= 1.
    """

    __slots__ = ("max_size", "max_interval", "max_bytes", "_clock", "_items", "_first", "_bytes")

    def __init__(
        self,
        max_size: int,
        max_interval: float = 0.05,
        *,
        clock: Clock,
        max_bytes: int | None = None,
    ) -> None:
        _bounded("batch size", max_size, 1, 100_000, integer=True)
        _bounded("batch interval", max_interval, 0, 60, unit=" s")
        if max_bytes is not None:
            _bounded("batch max_bytes", max_bytes, 1, integer=True)
        self.max_size = max_size
        self.max_interval = max_interval
        self.max_bytes = max_bytes
        self._clock = clock
        self._items: list[Any] = []
        self._first = 0.0
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        """``len`` of the pending items added up (0 without ``max_bytes``)."""
        return self._bytes

    def add(self, item: Any) -> list[Any] | None:
        if not self._items:
            self._first = self._clock()
        self._items.append(item)
        if len(self._items) >= self.max_size:
            return self.flush()
        if self.max_bytes is not None:
            self._bytes += len(item)
            if self._bytes >= self.max_bytes:
                return self.flush()
        return None

    def deadline(self) -> float | None:
        return self._first + self.max_interval if self._items else None

    def poll(self) -> list[Any] | None:
        if self._items and self._clock() >= self._first + self.max_interval:
            return self.flush()
        return None

    def flush(self) -> list[Any]:
        items, self._items = self._items, []
        self._bytes = 0
        return items


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
            first = min((e["id"] for e in msg.events), default=None)
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
        if events:
            self.on_ids(e["id"] for e in events)

    def on_ids(self, ids: Iterable[int]) -> None:
        """Live events with these ids arrived (the columnar path: no event dicts)."""
        top = max(ids, default=None)
        # ids are >= 1: a negative one (a foreign server's) never becomes a resume position
        if top is not None and top >= 0 and (self.last_id is None or top > self.last_id):
            self.last_id = top


# --------------------------------------------------------------------------- statistics


class RateMeter:
    """Events per second over a sliding window of whole-second buckets (injected clock).

    Memory is O(window) buckets; ``add`` is O(1) amortised.  ``rate()`` divides the count in the
    last ``window`` seconds by the covered time (at least one second).
    """

    def __init__(self, *, window: float = 10.0, clock: Clock) -> None:
        _bounded("rate window", window, 1, unit=" s")
        self.window = window
        self._clock = clock
        self._buckets: deque[list[float]] = deque()  # [second, count]
        self._start = clock()
        self.total = 0

    def add(self, n: int = 1) -> None:
        sec = math.floor(self._clock())
        self.total += n
        if self._buckets and self._buckets[-1][0] == sec:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([sec, n])
            self._trim(sec)

    def _trim(self, now_sec: float) -> None:
        limit = now_sec - self.window
        while self._buckets and self._buckets[0][0] <= limit:
            self._buckets.popleft()

    def rate(self) -> float:
        now = self._clock()
        self._trim(math.floor(now))
        count = sum(c for _, c in self._buckets)
        span = min(self.window, max(1.0, now - self._start))
        return count / span


class LatencyStats:
    """Percentiles over the most recent ``size`` samples (a ring; default 10,000)."""

    def __init__(self, size: int = 10_000) -> None:
        _bounded("latency sample size", size, 1, integer=True)
        self._samples: deque[float] = deque(maxlen=size)
        self.count = 0

    def add(self, value: float) -> None:
        self._samples.append(value)
        self.count += 1

    def extend(self, values: Sequence[float]) -> None:
        self._samples.extend(values)
        self.count += len(values)

    def percentile(self, q: float) -> float | None:
        """Nearest-rank percentile, ``q`` in [0, 1] (else :class:`ConfigError`); ``None``
        without samples."""
        _bounded("percentile q", q, 0, 1)
        return self._ranks((q,))[0] if self._samples else None

    def summary(self, qs: Sequence[float] = (0.5, 0.9, 0.99)) -> dict[str, float | None]:
        """``{"p50": ..., ...}`` for each ``q`` in ``qs`` (each in [0, 1])."""
        for q in qs:
            _bounded("percentile q", q, 0, 1)
        if not self._samples:
            return {f"p{_pname(q)}": None for q in qs}
        return {f"p{_pname(q)}": v for q, v in zip(qs, self._ranks(qs))}

    def _ranks(self, qs: Sequence[float]) -> list[float]:
        # A partial sort of the samples (numpy's partition), not a full ``sorted``: the
        # monitor asks for a summary every tick, and sorting 10,000 floats took ~1.2 ms of
        # GIL-holding Python here against ~0.3 ms.
        n = len(self._samples)
        values = np.fromiter(self._samples, dtype=np.float64, count=n)
        ks = [min(n - 1, max(0, math.ceil(q * n) - 1)) for q in qs]
        chosen = np.partition(values, sorted(set(ks)))
        return [float(chosen[k]) for k in ks]


def _pname(q: float) -> str:
    text = f"{q * 100:.3f}".rstrip("0").rstrip(".")
    return text


#: Most id intervals an :class:`IdSet` keeps (a frame's dedupe memory: ~100 bytes each).
MAX_ID_INTERVALS = 100_000


class IdSet:
    """Membership of integer ids as sorted disjoint inclusive intervals.

    A contiguous stream of increasing ids costs one interval whatever its length, so dedupe over
    millions of events takes O(gaps) memory instead of a Python set's ~60 bytes per id.
    ``add`` returns False when the id was already present.

    Bound: at most ``max_intervals`` (default ``MAX_ID_INTERVALS`` = 100,000) intervals.  Beyond
    that the lowest hole is filled (its two intervals merged, counted in :attr:`holes_filled`):
    sparse ids (every other id, say) can no longer grow it without bound, at the price that a
    very late event whose id falls in such an old hole counts as already seen.
    """

    __slots__ = ("_lo", "_hi", "holes_filled", "max_intervals")

    def __init__(self, max_intervals: int | None = None) -> None:
        self._lo: list[int] = []
        self._hi: list[int] = []
        self.max_intervals = MAX_ID_INTERVALS if max_intervals is None else max_intervals
        _bounded("max_intervals", self.max_intervals, 1, integer=True)
        self.holes_filled = 0

    def _bound(self) -> None:
        lo, hi = self._lo, self._hi
        while len(lo) > self.max_intervals:
            hi[0] = hi[1]
            del lo[1], hi[1]
            self.holes_filled += 1

    def __len__(self) -> int:
        return sum(h - lo + 1 for lo, h in zip(self._lo, self._hi))

    @property
    def intervals(self) -> list[tuple[int, int]]:
        return list(zip(self._lo, self._hi))

    def max(self) -> int | None:
        return self._hi[-1] if self._hi else None

    def __contains__(self, ident: int) -> bool:
        i = bisect.bisect_right(self._lo, ident) - 1
        return i >= 0 and ident <= self._hi[i]

    def add(self, ident: int) -> bool:
        lo, hi = self._lo, self._hi
        if hi and ident == hi[-1] + 1:  # the common case: the next id
            hi[-1] = ident
            return True
        if not hi or ident > hi[-1] + 1:
            lo.append(ident)
            hi.append(ident)
            if len(lo) > self.max_intervals:
                self._bound()
            return True
        i = bisect.bisect_right(lo, ident) - 1
        if i >= 0 and ident <= hi[i]:
            return False
        # ident lies after interval i (or before all) and before interval i+1
        joins_left = i >= 0 and hi[i] + 1 == ident
        joins_right = i + 1 < len(lo) and lo[i + 1] - 1 == ident
        if joins_left and joins_right:
            hi[i] = hi[i + 1]
            del lo[i + 1], hi[i + 1]
        elif joins_left:
            hi[i] = ident
        elif joins_right:
            lo[i + 1] = ident
        else:
            lo.insert(i + 1, ident)
            hi.insert(i + 1, ident)
            if len(lo) > self.max_intervals:
                self._bound()  # ``ident`` stays recorded (merging only widens intervals)
        return True

    def add_run(self, first: int, last: int) -> None:
        """Add the contiguous run ``first..last`` known to lie entirely above ``max()``."""
        if self._hi and first == self._hi[-1] + 1:
            self._hi[-1] = last
        else:
            self._lo.append(first)
            self._hi.append(last)
            if len(self._lo) > self.max_intervals:
                self._bound()


class CpuBudget:
    """Sans-I/O CPU budget for wsnotebook's background work inside a kernel (a token bucket).

    Python threads share one GIL: a background thread running flat out pushed a kernel's
    execute round-trip p99 from 5.5 ms to 274 ms here.  Every piece of background work --
    the loop thread between two ``select`` calls, a cooperative checkpoint inside a long loop,
    a worker thread (monitor rendering) -- :meth:`charge` s the CPU seconds it used.  Credit
    accrues at ``fraction`` CPU-seconds per wall second, capped at ``fraction * period`` (the
    longest burst); when the credit is negative, :meth:`pause_for` says how long the background
    side must sleep (releasing the GIL) to pay the debt back, capped at ``max_pause`` so
    heartbeats and pings keep flowing.  While the loop sleeps, sockets are not read, so TCP
    backpressure slows remote producers, in-process producers wait in ``budget_ready()`` (counted
    in :attr:`producer_waits`) and queued events coalesce into batches: nothing is dropped,
    delivery is only deferred.

    It also keeps an exponentially weighted estimate of the background CPU share (:attr:`share`,
    in cores, time constant ``tau`` seconds) and decides, with hysteresis, when the interpreter's
    GIL switch interval should be lowered (:meth:`switch_wanted`): a CPU-bound thread makes every
    GIL hand-off of the kernel's own threads wait up to one switch interval (5 ms by default),
    and a cell needs many hand-offs.  Lowered above ``busy_share`` cores, restored after
    ``idle_hold`` seconds below ``idle_share``.

    Under pressure (:meth:`under_pressure`: the share at or above ``pressure`` of the budget)
    the server also lets broadcast ticks linger (``_server.BUDGET_COALESCE``) so clients get
    fewer, larger ``batch`` messages: per-message work is most of the pipeline's cost at high
    rates, so this lets more events through the same budget (counted in :attr:`coalesced`).
    The default threshold is well below the budget on purpose: lingering only when the budget
    is nearly used up settles the share *at* the threshold (coalescing lowers it, which stops
    the coalescing), while from 0.2 cores on a 10k ev/s pipeline coalesces steadily and uses
    ~30 instead of ~40 us per event (measured: ~75 instead of ~500 messages/s).

    Bounds: ``0.05 <= fraction <= 1.0`` (1.0 disables throttling), ``0.001 <= period <= 1``,
    ``0 < max_pause <= 1``, ``switch_interval`` None (never touch it) or ``1e-5..0.005`` s,
    ``0 < pressure <= 1``.  Defaults: half a core, 10 ms period (5 ms burst), 50 ms max pause,
    switch interval untouched (None), pressure 0.4 (with half a core: coalesce from 0.2 cores on).
    """

    def __init__(
        self,
        *,
        fraction: float = 0.5,
        period: float = 0.01,
        max_pause: float = 0.05,
        switch_interval: float | None = None,
        tau: float = 0.5,
        busy_share: float = 0.2,
        idle_share: float = 0.05,
        idle_hold: float = 1.0,
        pressure: float = 0.4,
    ) -> None:
        if not 0.05 <= fraction <= 1.0:
            raise ConfigError(f"cpu budget fraction must be in 0.05..1.0, got {fraction}")
        if not 0.001 <= period <= 1.0:
            raise ConfigError(f"cpu budget period must be in 0.001..1 s, got {period}")
        if not 0 < max_pause <= 1.0:
            raise ConfigError(f"cpu budget max_pause must be in (0, 1] s, got {max_pause}")
        if switch_interval is not None and not 1e-5 <= switch_interval <= 0.005:
            raise ConfigError(
                f"switch_interval must be None or in 1e-5..0.005 s, got {switch_interval}"
            )
        if not tau > 0 or not 0 <= idle_share <= busy_share or not idle_hold >= 0:
            raise ConfigError("cpu budget: need tau > 0, 0 <= idle_share <= busy_share")
        if not 0.0 < pressure <= 1.0:
            raise ConfigError(f"cpu budget pressure must be in (0, 1], got {pressure}")
        self.fraction = fraction
        self.period = period
        self.max_pause = max_pause
        self.switch_interval = switch_interval
        self.tau = tau
        self.busy_share = busy_share
        self.idle_share = idle_share
        self.idle_hold = idle_hold
        self.pressure = pressure
        self.burst = fraction * period
        self.credit = self.burst
        self._last_wall: float | None = None
        self._last_cpu = 0.0
        self._idle_since: float | None = None
        self._switch_low = False
        #: EWMA of background CPU use, in cores (0..~1).
        self.share = 0.0
        #: Pauses taken by the loop thread / worker threads, and seconds spent in them.
        self.pauses = 0
        self.paused_seconds = 0.0
        #: Times an in-process producer was held back by ``budget_ready()``, and for how long.
        self.producer_waits = 0
        self.producer_wait_seconds = 0.0
        #: CPU seconds charged by the loop thread and by worker threads.
        self.loop_cpu_seconds = 0.0
        self.worker_cpu_seconds = 0.0
        #: Times the switch interval was lowered.
        self.switch_lowered = 0
        #: Broadcast ticks the server let linger because the budget was under pressure.
        self.coalesced = 0

    @property
    def enabled(self) -> bool:
        """True when throttling is on (``fraction < 1``)."""
        return self.fraction < 1.0

    @property
    def active(self) -> bool:
        """True when anything needs accounting (throttling or switch-interval management)."""
        return self.fraction < 1.0 or self.switch_interval is not None

    def under_pressure(self) -> bool:
        """True while throttling is on and the recent share is at least ``pressure`` of the
        budget (the last accounted value: a cheap read, no clock)."""
        return self.fraction < 1.0 and self.share >= self.pressure * self.fraction

    def _accrue(self, wall: float) -> None:
        last = self._last_wall
        self._last_wall = wall
        if last is None:
            return
        dwall = wall - last
        if dwall <= 0:
            return
        self.credit = min(self.burst, self.credit + self.fraction * dwall)
        self.share *= math.exp(-dwall / self.tau)

    def charge(self, wall: float, cpu_used: float, *, worker: bool = False) -> None:
        """Record ``cpu_used`` seconds of background CPU ending at ``wall`` (negative -> 0)."""
        self._accrue(wall)
        used = max(0.0, cpu_used)
        if worker:
            self.worker_cpu_seconds += used
        else:
            self.loop_cpu_seconds += used
        self.share += used / self.tau
        if self.enabled:
            self.credit -= used

    def pause_for(self, wall: float) -> float:
        """Seconds to sleep now to pay back the debt (0 when within budget); not counted."""
        if not self.enabled:
            return 0.0
        self._accrue(wall)
        if self.credit >= 0.0:
            return 0.0
        pause = -self.credit / self.fraction
        if pause < 0.0002:
            return 0.0
        return min(pause, self.max_pause)

    def paused(self, seconds: float) -> None:
        """Count a pause the caller took (loop thread or worker)."""
        self.pauses += 1
        self.paused_seconds += seconds

    def producer_waited(self, seconds: float) -> None:
        """Count a producer held back by backpressure for ``seconds``."""
        self.producer_waits += 1
        self.producer_wait_seconds += seconds

    def observe(self, wall: float, cpu: float) -> float:
        """Feed the wall clock and the loop thread's *cumulative* CPU time; return the pause.

        The first call only sets the reference.  The pause is counted (as if taken).
        """
        if self._last_wall is None:
            self._last_wall, self._last_cpu = wall, cpu
            return 0.0
        used, self._last_cpu = cpu - self._last_cpu, cpu
        self.charge(wall, used)
        pause = self.pause_for(wall)
        if pause:
            self.paused(pause)
        return pause

    def resumed(self, wall: float, cpu: float | None = None) -> None:
        """Call after a pause so the pause itself counts as idle wall time."""
        self._accrue(wall)
        if cpu is not None:
            self._last_cpu = cpu

    def switch_wanted(self, wall: float) -> bool:
        """Should the GIL switch interval be lowered now?  (Hysteresis on :attr:`share`.)"""
        if self.switch_interval is None:
            return False
        self._accrue(wall)
        if self.share >= self.busy_share:
            self._idle_since = None
            if not self._switch_low:
                self._switch_low = True
                self.switch_lowered += 1
        elif self._switch_low and self.share < self.idle_share:
            if self._idle_since is None:
                self._idle_since = wall
            elif wall - self._idle_since >= self.idle_hold:
                self._switch_low = False
                self._idle_since = None
        else:
            self._idle_since = None
        return self._switch_low


class RateLimiter:
    """Per-key token buckets (e.g. WebSocket handshakes per client IP), injected clock.

    Each key starts with ``burst`` tokens, gains ``rate`` per second up to ``burst``, and every
    allowed attempt spends one.  :meth:`check` returns ``0.0`` when the attempt is allowed (a
    token was spent) or the seconds until the next token otherwise (nothing is spent: refused
    attempts do not dig the hole deeper).

    Memory is bounded: the table holds at most ``max_keys`` keys, least recently seen first.  A
    key whose bucket has refilled (idle for ``burst / rate`` seconds) is forgotten as soon as it
    reaches the front of the table (it would be indistinguishable from a new key anyway); when
    the table is full of active keys, the least recently seen one is evicted (it starts full
    again: an attacker with more than ``max_keys`` addresses can refresh buckets, but memory
    stays bounded and no legitimate key is ever locked out by the table being full).

    Bounds: ``rate`` 0 (disabled: every attempt allowed, nothing stored) or > 0 per second,
    ``burst >= 1``, ``max_keys >= 1``.
    """

    __slots__ = ("rate", "burst", "max_keys", "_clock", "_buckets", "_idle_after", "evictions")

    def __init__(self, rate: float, burst: int, *, max_keys: int = 10_000, clock: Clock) -> None:
        _bounded("rate", rate, 0, 1e12)
        _bounded("burst", burst, 1, integer=True)
        _bounded("max_keys", max_keys, 1, integer=True)
        self.rate = float(rate)
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        # key -> [tokens, last refill time]; insertion order == least recently seen first
        self._buckets: dict[str, list[float]] = {}
        self._idle_after = self.burst / self.rate if self.rate > 0 else 0.0
        #: Active keys evicted because the table was full.
        self.evictions = 0

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def check(self, key: str) -> float:
        """Spend one of ``key``'s tokens: ``0.0`` when allowed, else seconds until one is due."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        buckets = self._buckets
        bucket = buckets.pop(key, None)
        if bucket is None:
            tokens = self.burst
        else:
            tokens = min(self.burst, bucket[0] + max(0.0, now - bucket[1]) * self.rate)
        self._sweep(now)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        buckets[key] = [tokens, now]  # re-inserted: now the most recently seen
        return wait

    def _sweep(self, now: float) -> None:
        """Forget refilled keys at the front; evict the oldest active ones beyond the cap."""
        buckets = self._buckets
        idle_after = self._idle_after
        while buckets:
            oldest = next(iter(buckets))
            if now - buckets[oldest][1] >= idle_after:
                del buckets[oldest]
            elif len(buckets) >= self.max_keys:
                del buckets[oldest]
                self.evictions += 1
            else:
                break
