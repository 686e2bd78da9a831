"""The demo producer: paced publishing of generated events (the I/O shell around the generator).

Owns :class:`TokenBucket` (sans-I/O pacing: the caller passes the time), :func:`events_url`
(a server URL to its ``POST /events`` URL), :class:`DemoProducer` (publishes generated events on
the shared background loop, :mod:`wsnotebook.runtime.loop`, at a target rate, either into an
in-process server or over HTTP), :func:`start_demo`, and the registry of running producers
(:func:`active_producers`, :func:`stop_all`; the ``%ws stop`` magic and interpreter exit use it).

Invariants and drop policy: a producer never queues events to catch up (the bucket holds at
most ``max(batch, rate / 10)`` tokens; time lost is counted in ``behind``); it never raises into
the caller (errors are logged and counted; 50 consecutive ones stop it, and so does its
in-process server's stop); a producer is in the
registry from its construction until its task has ended.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from ..errors import ConfigError, WsnError
from ..events import Event, encode_json
from ..protocol import events_endpoint
from ..runtime import Registry
from ..runtime import loop as _loop
from .generator import EventGenerator

__all__ = [
    "DemoProducer",
    "DemoPublishError",
    "TokenBucket",
    "active_producers",
    "events_url",
    "start_demo",
    "stop_all",
]

log = logging.getLogger("wsnotebook")


class DemoPublishError(WsnError, RuntimeError):
    """The server answered a demo producer's ``POST /events`` with a status other than 200.

    Never raised into the caller: the producer counts it in ``errors`` and shows it in
    ``metrics()["last_error"]``."""


class TokenBucket:
    """Token-bucket pacing (sans-I/O: the caller passes the time).

    Tokens accrue at ``rate`` per second up to ``capacity`` (the largest burst after a stall, so
    a producer that fell behind never floods the server to "catch up").  ``take(n, now)`` returns
    how many tokens (<= n) were available and consumes them; ``wait_time(n, now)`` says how long
    until ``n`` tokens are available.  Bounds: ``rate > 0``, ``capacity >= 1``.
    """

    __slots__ = ("rate", "capacity", "_tokens", "_last")

    def __init__(self, rate: float, capacity: float, *, now: float) -> None:
        if not rate > 0:
            raise ConfigError(f"rate must be > 0, got {rate}")
        if capacity < 1:
            raise ConfigError(f"capacity must be >= 1, got {capacity}")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._tokens = 0.0
        self._last = now

    def _refill(self, now: float) -> None:
        if now > self._last:
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now

    def available(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def take(self, n: int, now: float) -> int:
        self._refill(now)
        got = min(n, int(self._tokens))
        self._tokens -= got
        return got

    def wait_time(self, n: int, now: float) -> float:
        self._refill(now)
        need = min(float(n), self.capacity) - self._tokens
        return max(0.0, need / self.rate)


# --------------------------------------------------------------------------- I/O shell

#: Producers from construction until their task ends (keyed by ``id``).
_producers: Registry[DemoProducer] = Registry("demo producers")


def events_url(url: str) -> str:
    """The ``POST /events`` URL for a server URL (``ws://h:p/stream``, ``http://h:p``, a URL
    behind Jupyter's proxy...): :func:`wsnotebook.protocol.events_endpoint` (path prefix and
    ``?token=`` kept).  Raises :class:`~wsnotebook.errors.ConfigError` on a URL that is not
    http(s)/ws(s).
    """
    return events_endpoint(url)


class DemoProducer:
    """Publish synthetic agent events at a target rate on the background loop.

    ``target`` is an in-process server (anything with ``publish_async(events)`` or a loop-safe
    ``publish(events)``: events go through the same path as ``POST /events``) or a server URL
    (``http://host:port`` or ``ws://.../stream``; events are POSTed to ``/events``, one JSON
    array per batch, ``Authorization: Bearer token`` when ``token`` is given).

    Options (keyword-only):

    * ``rate`` events/s, 0 < rate <= 100_000 (default 50);
    * ``batch`` events per publish call, 1..10_000 (default 1; a batch goes out once the bucket
      holds that many tokens, so ``batch`` events are published every ``batch / rate`` s on
      average; below :meth:`wake_floor` (10-25 ms, depending on the rate) the batches that
      fell due go out back to back once per wake-up).  Into wsnotebook's own in-process
      server those due batches go out as **one** call of whole batches (at most
      ``MERGE_EVENTS``, 100, rounded down to whole batches; the same events at the same
      times, fewer calls); ``batch`` is exactly each ``POST`` to a URL and each call to any
      other target;
    * ``seed`` for the generator (default random), or ``generator`` to supply your own iterator;
    * ``max_events``: stop by itself after this many (default ``None``: until :meth:`stop`);
    * ``duration``: stop by itself after this many seconds (default ``None``).

    Pacing is a :class:`TokenBucket` holding at most ``max(batch, rate / 10)`` tokens: a producer
    that falls behind (slow server) does not queue events or burst to catch up; it simply sends
    fewer (:attr:`behind` counts the seconds lost).  Publishing errors are logged on the
    ``wsnotebook`` logger and counted in :attr:`errors` (events in a failed batch are counted in
    :attr:`failed`); after 50 consecutive errors the producer stops itself, and at once when its
    in-process server was stopped (``last_error`` says so).  It never raises into
    the caller.  Counters: :attr:`sent`, :attr:`errors`, :attr:`failed`, :attr:`bytes_sent`
    (HTTP only), :attr:`wakeups` (timer sleeps), :attr:`yields` (yields to the loop and budget
    checks, see ``YIELD_EVERY``); :attr:`running`.
    """

    MAX_CONSECUTIVE_ERRORS = 50
    #: Shortest timer sleep between publishing rounds, in seconds (see :meth:`wake_floor`).  A
    #: timer wake-up of the loop thread costs ~150 us of CPU here after a 10 ms sleep (bare
    #: asyncio, no work), the first work after it runs 2-3x slower than warm, and each round
    #: becomes one broadcast tick, i.e. one message per client with its own fixed cost.  So the
    #: producer sleeps at least until ``WAKE_EVENTS`` events fell due, between ``MIN_WAKE`` and
    #: ``MAX_WAKE``, and sends the batches due back to back, each still ``batch`` events,
    #: yielding to the loop between them.  10 ms (the first setting, now the floor at >= 10k
    #: ev/s) cut producer plus server from ~28 to ~18 us per event at 10k ev/s; 25 ms at 1k ev/s
    #: cut server + demo + socket client from ~0.09 to ~0.05 cores (benchmarks/README.md, "Paced
    #: pipeline cost (issue 20)").  ``WAKE_EVENTS`` keeps a round's work (one uninterrupted
    #: stretch holding the GIL inside a kernel) no longer than the 10 ms setting gave at 10k
    #: ev/s: a flat 25 ms made the loop's median busy stretch there ~1.5x longer.
    MIN_WAKE = 0.01
    #: Longest floor on a timer sleep (seconds): events leave in bursts at most this far apart.
    MAX_WAKE = 0.025
    #: Events that should fall due during a timer sleep (see ``MIN_WAKE``).
    WAKE_EVENTS = 100
    #: Longest stretch of back-to-back publishing before the producer yields to the loop (and
    #: to the CPU budget's backpressure), in seconds.  It also yields after every timer wake-up.
    #: Yielding after every batch cost a loop iteration each (~1000/s at 10k ev/s in batches of
    #: 10: ~3-4 us of CPU per event); 2 ms keeps the loop responsive well within its 5 ms
    #: budget burst.
    YIELD_EVERY = 0.002
    #: Most events one publish call carries into wsnotebook's own in-process server
    #: (``publish_count_async``), whole batches only: the batches due at a wake-up go out as one
    #: call instead of back to back.  Clients see no difference (a broadcast tick gathers every
    #: call of a loop iteration into one message per client); each call has a fixed cost
    #: (validation, stamping and store set-up, ~10-20 us right after a timer sleep), and at
    #: 1k ev/s in batches of 5 five calls per wake-up cost ~30 % more per event than one.  100
    #: events (a wake-up's worth at >= 5k ev/s, ~1 ms) keeps a call within ``YIELD_EVERY``.
    #: ``batch`` still sizes each ``POST`` to a URL and each call to any other target.
    MERGE_EVENTS = 100

    def __init__(
        self,
        target: Any,
        *,
        rate: float = 50.0,
        batch: int = 1,
        seed: int | None = None,
        generator: Iterator[Event] | None = None,
        max_events: int | None = None,
        duration: float | None = None,
        token: str | None = None,
    ) -> None:
        if not 0 < rate <= 100_000:
            raise ConfigError(f"rate must be in (0, 100000] events/s, got {rate}")
        if not 1 <= batch <= 10_000:
            raise ConfigError(f"batch must be in 1..10000, got {batch}")
        if max_events is not None and max_events < 1:
            raise ConfigError(f"max_events must be >= 1 or None, got {max_events}")
        if duration is not None and not duration > 0:
            raise ConfigError(f"duration must be > 0 s or None, got {duration}")
        if isinstance(target, str):
            self.url: str | None = events_url(target)
            self.server: Any = None
        elif callable(getattr(target, "publish", None)):
            self.url = None
            self.server = target
        else:
            raise ConfigError(
                "target must be a server (with .publish) or a URL string, "
                f"got {type(target).__name__}"
            )
        self.rate = float(rate)
        self.batch = int(batch)
        self.max_events = max_events
        self.duration = duration
        self.token = token
        self.generator: Iterator[Event] = generator or EventGenerator(seed)
        self.sent = 0
        self.errors = 0
        self.failed = 0
        self.bytes_sent = 0
        self.behind = 0.0
        self.wakeups = 0  # timer sleeps taken (see MIN_WAKE, wake_floor)
        self.yields = 0  # yields to the loop between batches (see YIELD_EVERY)
        self.last_error: str | None = None
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._future: Any = None
        _producers.add(id(self), self)
        try:
            self._future = _loop.submit(self._run())
        except BaseException:  # never started: its task will not unregister it
            _producers.remove(id(self), self)
            raise

    # -- public -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return not self._done.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop publishing and wait (bounded by ``timeout``) until the task ended.  Idempotent."""
        self._stop.set()
        if not _loop.in_loop_thread():
            self._done.wait(timeout)

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the producer stops by itself (``max_events``/``duration``) or is stopped."""
        return self._done.wait(timeout)

    def metrics(self) -> dict[str, Any]:
        """Counters and the achieved rate (events/s since start)."""
        start = self.started_at
        end = self.stopped_at or time.monotonic()
        elapsed = (end - start) if start is not None else 0.0
        return {
            "running": self.running,
            "target": self.url or type(self.server).__name__,
            "rate_target": self.rate,
            "batch": self.batch,
            "sent": self.sent,
            "errors": self.errors,
            "failed": self.failed,
            "bytes_sent": self.bytes_sent,
            "behind_s": round(self.behind, 3),
            "wakeups": self.wakeups,
            "yields": self.yields,
            "elapsed_s": round(elapsed, 3),
            "rate_achieved": (self.sent / elapsed) if elapsed > 0 else 0.0,
            "last_error": self.last_error,
        }

    @classmethod
    def wake_floor(cls, rate: float) -> float:
        """Shortest timer sleep at ``rate`` events/s: ``WAKE_EVENTS / rate`` seconds, bounded
        by ``MIN_WAKE`` and ``MAX_WAKE`` (10 ms at >= 10k ev/s, 25 ms at <= 4k ev/s)."""
        return min(cls.MAX_WAKE, max(cls.MIN_WAKE, cls.WAKE_EVENTS / rate))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<DemoProducer {state} rate={self.rate:g}/s batch={self.batch} sent={self.sent}>"

    # -- background ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        session: Any = None
        try:
            if self.url is not None:
                import aiohttp

                headers = {"Content-Type": "application/json", "User-Agent": "wsnotebook-demo"}
                if self.token:
                    headers["Authorization"] = f"Bearer {self.token}"
                session = aiohttp.ClientSession(
                    headers=headers, timeout=aiohttp.ClientTimeout(total=10)
                )
            publish, merge = self._publisher(session)
            publish_now = self._valid_publisher(session)
            batch = self.batch
            start = loop.time()
            self.started_at = time.monotonic()
            bucket = TokenBucket(self.rate, max(float(self.batch), self.rate / 10), now=start)
            consecutive = 0
            floor = self.wake_floor(self.rate)
            yielded_at: float | None = None  # None: yield (and check the budget) now
            woke = False  # just back from a timer sleep (a yield already)
            while not self._stop.is_set():
                now = loop.time()
                if yielded_at is None or now - yielded_at >= self.YIELD_EVERY:
                    # Backpressure from the kernel CPU budget; also yields, so an in-process
                    # publish (which never blocks) cannot starve the loop.  Right after a timer
                    # sleep only the budget is checked: that sleep was the yield.
                    await _loop.budget_ready(just_woke=woke)
                    self.yields += 1
                    woke = False
                    now = yielded_at = loop.time()
                if self.duration is not None and now - start >= self.duration:
                    break
                want = batch
                left = None if self.max_events is None else self.max_events - self.sent
                if left is not None:
                    want = min(want, left)
                    if want <= 0:
                        break
                wait = bucket.wait_time(want, now)
                if wait > 0:
                    self.wakeups += 1
                    await asyncio.sleep(min(max(wait, floor), 0.25))
                    yielded_at, woke = None, True
                    continue
                before = bucket.available(now)
                if merge > batch and before >= 2 * batch:
                    # An in-process wsnotebook server: the whole batches due go out as one
                    # call (see ``MERGE_EVENTS``), exactly the events back-to-back calls sent.
                    want = min(merge, int(before // batch) * batch)
                    if left is not None:
                        want = min(want, left)
                n = bucket.take(want, now)
                if before >= bucket.capacity:
                    # The bucket was full: we were late and lost tokens (slow publish).
                    self.behind += 1.0 / self.rate
                events = [next(self.generator) for _ in range(n)]
                try:
                    if publish_now is not None:
                        publish_now(events)
                    else:
                        await publish(events)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.errors += 1
                    self.failed += len(events)
                    consecutive += 1
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    if self.server is not None and not getattr(self.server, "running", True):
                        # its in-process server stopped: nothing will take events again
                        log.warning("demo producer: stopping, %s", self.last_error)
                        break
                    log.warning("demo producer: publish failed: %s", self.last_error)
                    if consecutive >= self.MAX_CONSECUTIVE_ERRORS:
                        log.error("demo producer: %d consecutive errors, stopping", consecutive)
                        break
                    await asyncio.sleep(min(1.0, 0.02 * consecutive))
                else:
                    consecutive = 0
                    self.sent += len(events)
        except Exception:  # pragma: no cover - defensive: never raise into the loop
            self.errors += 1
            log.exception("demo producer crashed")
        finally:
            if session is not None:
                await session.close()
            self.stopped_at = time.monotonic()
            self._done.set()
            _producers.remove(id(self), self)

    def _publisher(self, session: Any) -> tuple[Callable[[list[Event]], Awaitable[object]], int]:
        """The coroutine function one publish call goes through, and the most events one call
        may carry (``batch``, or up to ``MERGE_EVENTS`` of whole batches for wsnotebook's own
        in-process server)."""
        if session is not None:
            return functools.partial(self._post, session=session), self.batch
        # On the loop thread a server's blocking publish() would deadlock: use its coroutine
        # (wsnotebook's Server.publish_count_async / publish_async) when it has one.
        counted = getattr(self.server, "publish_count_async", None)
        if counted is not None:
            return counted, max(1, self.MERGE_EVENTS // self.batch) * self.batch
        apublish = getattr(self.server, "publish_async", None)
        if apublish is not None:
            return apublish, self.batch
        return self._publish_sync, self.batch

    def _valid_publisher(self, session: Any) -> Callable[[list[Event]], object] | None:
        """A synchronous publish that skips validation, only for events of this package's own
        :class:`EventGenerator` (exactly that class: a subclass or a ``generator=`` iterator may
        yield anything) into wsnotebook's in-process server with a memory store; else None.
        The generator's events all pass ``validate_event`` by construction (tested), and the
        checks cost ~1.7 us an event right after a timer sleep."""
        if session is not None or type(self.generator) is not EventGenerator:
            return None
        getter = getattr(self.server, "_valid_publisher", None)
        return getter() if callable(getter) else None

    async def _publish_sync(self, events: list[Event]) -> None:
        self.server.publish(events)

    async def _post(self, events: list[Event], *, session: Any) -> None:
        assert self.url is not None
        body = encode_json(events if len(events) > 1 else events[0])
        async with session.post(self.url, data=body) as resp:
            text = await resp.read()
            if resp.status != 200:
                raise DemoPublishError(f"HTTP {resp.status}: {text[:200].decode(errors='replace')}")
        self.bytes_sent += len(body)


def start_demo(
    target: Any,
    *,
    rate: float = 50.0,
    batch: int = 1,
    seed: int | None = None,
    max_events: int | None = None,
    duration: float | None = None,
    token: str | None = None,
) -> DemoProducer:
    """Start a :class:`DemoProducer` publishing into ``target`` (server or URL); returns at once.

    Same options and bounds as :class:`DemoProducer`.
    """
    return DemoProducer(
        target,
        rate=rate,
        batch=batch,
        seed=seed,
        max_events=max_events,
        duration=duration,
        token=token,
    )


def active_producers() -> list[DemoProducer]:
    """Producers that are still running."""
    return _producers.items(lambda p: p.running)


def stop_all(timeout: float = 5.0) -> int:
    """Stop every running producer; return how many were stopped."""
    running = active_producers()
    for p in running:
        p._stop.set()
    deadline = time.monotonic() + timeout
    if not _loop.in_loop_thread():
        for p in running:
            p._done.wait(max(0.0, deadline - time.monotonic()))
    return len(running)


_loop.add_shutdown_hook(stop_all)
