"""The replayer: send a recording's events to a server's ``POST /events`` on the schedule of
:class:`~.schedule.ReplaySchedule`.  A thin asyncio shell on the background loop; :func:`replay`
returns a :class:`Replay` handle at once.

What is sent: every recorded row, in recorded order, as the event it was (``source_app``,
``session_id``, ``hook_event_type``, ``payload`` byte for byte, ``timestamp``, ``summary``,
``chat``, ``model_name`` and unknown top-level fields) without ``id``, ``server_received`` and
``client_received``, which belong to the servers and client that handled it.  With
``retime=True`` each ``timestamp`` becomes the wall-clock time it is due (epoch ms), so a
monitor's charts show the replay as live traffic.  Events due together go out as one JSON
array per ``POST`` (at most ``batch`` events).  A reply other than 200 or a connection failure
ends the replay with :attr:`Replay.error` set (nothing raises from the background).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..errors import ClientError, ConfigError, WaitTimeout, WsnError
from ..protocol import events_endpoint
from ..runtime import Registry
from ..runtime import loop as _loop
from .data import session_path
from .fileformat import Recording, probe, read_recording
from .schedule import ReplaySchedule, parse_speed

__all__ = ["Replay", "events_url", "recording_events", "replay", "running_replays"]

log = logging.getLogger("wsnotebook")

#: Replays from construction until their task ends (keyed by ``id``).
_replays: Registry[Replay] = Registry("replays")

#: most events in one POST (a server accepts 10,000 per batch by default)
DEFAULT_BATCH = 1000
_DROP = frozenset(("id", "server_received", "client_received"))


def events_url(target: Any) -> tuple[str, str | None]:
    """``(POST /events URL, bearer token)`` for a server object or a URL.

    A URL goes through :func:`wsnotebook.protocol.events_endpoint`: its path prefix is kept
    (``http://h/user/x/proxy/4000/stream`` -> ``http://h/user/x/proxy/4000/events``, so a
    server behind Jupyter's proxy works) and its ``?token=`` (Jupyter's); ``ws(s)://`` maps to
    ``http(s)://``."""
    token = None
    if not isinstance(target, str):
        url = getattr(target, "http_url", None) or getattr(target, "url", None)
        if not isinstance(url, str):
            raise ConfigError(f"replay target must be a URL or a server, got {type(target)}")
        token = getattr(target, "token", None) or None
        target = url
    return events_endpoint(target), token


def recording_events(
    rec: Recording, start: int = 0, stop: int | None = None
) -> list[dict[str, Any]]:
    """Recorded rows ``start..stop`` as events to send again (see the module doc; ``payload``,
    ``chat`` and unknown fields stay pre-encoded JSON fragments).  O(rows asked for): the
    replayer builds each batch's events when it sends it, so memory holds the Arrow table, not
    a dict per event."""
    t = rec.table
    stop = t.num_rows if stop is None else min(stop, t.num_rows)
    t = t.slice(start, max(0, stop - start))
    n = t.num_rows
    none = [None] * n

    def col(name: str) -> list[Any]:
        return t.column(name).to_pylist() if name in t.column_names else none

    source_app, session_id, kind = col("source_app"), col("session_id"), col("hook_event_type")
    payload, timestamp, chat, extra = col("payload"), col("timestamp"), col("chat"), col("extra")
    summary, model_name = col("summary"), col("model_name")
    out: list[dict[str, Any]] = []
    for i in range(n):
        ev: dict[str, Any] = {}
        if extra[i]:
            for key, value in orjson.loads(extra[i]).items():
                if key not in _DROP:
                    ev[key] = value
        ev["source_app"] = source_app[i]
        ev["session_id"] = session_id[i]
        ev["hook_event_type"] = kind[i]
        ev["payload"] = orjson.Fragment(payload[i] or "{}")
        ts = timestamp[i]
        if ts is not None:
            ev["timestamp"] = int(ts) if float(ts).is_integer() else ts
        if summary[i] is not None:
            ev["summary"] = summary[i]
        if model_name[i] is not None:
            ev["model_name"] = model_name[i]
        if chat[i] is not None:
            ev["chat"] = orjson.Fragment(chat[i])
        out.append(ev)
    return out


class Replay:
    """A running (or finished) replay; see :func:`replay`.  Thread-safe to read."""

    def __init__(
        self,
        source: str | Path,
        url: str,
        *,
        speed: float | None,
        token: str | None,
        jupyter_token: str | None,
        retime: bool,
        batch: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = Path(source)
        self.url = url
        self.speed = speed
        self.retime = retime
        self.batch = batch
        self.clock = clock
        self.headers = {"Content-Type": "application/json", "User-Agent": "wsnotebook-replay/1.0"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif jupyter_token:
            self.headers["Authorization"] = f"token {jupyter_token}"
        self.total: int | None = None
        self.sent = 0
        self.posts = 0
        self.error: WsnError | None = None
        self.schedule: ReplaySchedule | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.max_lateness = 0.0
        self._stop = asyncio.Event()
        _replays.add(id(self), self)
        self._future: concurrent.futures.Future[None] = _loop.submit(self._run())

    @property
    def done(self) -> bool:
        return self._future.done()

    @property
    def running(self) -> bool:
        return not self._future.done()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the replay ended; ``False`` if ``timeout`` ran out first."""
        try:
            self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            return False
        return True

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """Wait, then raise :attr:`error` if the replay failed, else return :meth:`stats`."""
        if not self.wait(timeout):
            raise WaitTimeout(f"replay of {self.source} still running after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.stats()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop sending (events not yet sent are not sent) and wait up to ``timeout`` s."""
        _loop.call_soon(self._stop.set)
        self.wait(timeout)

    def stats(self) -> dict[str, Any]:
        """``sent``/``total`` events, ``posts``, ``speed``, ``scheduled_s`` (the schedule's
        duration), ``elapsed_s`` (first send to last), ``timing_ratio`` (elapsed / scheduled),
        ``max_lateness_s``, ``error``."""
        sched = self.schedule
        elapsed = None
        if self.started is not None:
            end = self.finished if self.finished is not None else self.clock()
            elapsed = end - self.started
        scheduled = sched.duration if sched is not None else None
        return {
            "source": str(self.source),
            "url": self.url.split("?", 1)[0],
            "total": self.total,
            "sent": self.sent,
            "posts": self.posts,
            "speed": self.speed if self.speed is not None else "max",
            "scheduled_s": scheduled,
            "elapsed_s": elapsed,
            "timing_ratio": (elapsed / scheduled) if elapsed and scheduled else None,
            "max_lateness_s": self.max_lateness,
            "error": str(self.error) if self.error is not None else None,
        }

    metrics = stats  # what %ws stats reads

    def __repr__(self) -> str:
        state = "done" if self.done else "running"
        where = self.url.split("?", 1)[0]
        return f"<Replay {self.source.name} -> {where} {state} sent={self.sent}>"

    async def _run(self) -> None:
        import aiohttp

        try:
            rec = await asyncio.to_thread(read_recording, self.source)
            times = await asyncio.to_thread(rec.times_ms)
            self.total = len(times)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(timeout=timeout, headers=self.headers) as session:
                sched = ReplaySchedule(times, speed=self.speed, clock=self.clock)
                self.schedule = sched
                self.started = sched.start
                # the wall-clock time of the schedule's start (not of this line): a stamp is
                # then never later than the moment its event is sent
                wall0 = time.time() * 1000.0 - (self.clock() - sched.start) * 1e3
                while not sched.finished and not self._stop.is_set():
                    now = self.clock()
                    upto = min(sched.due(now), sched.sent + self.batch)
                    if upto > sched.sent:
                        first = sched.sent
                        self.max_lateness = max(self.max_lateness, sched.lateness(first, now))
                        if upto - first >= 64:  # big batches are built off the loop
                            chunk = await asyncio.to_thread(recording_events, rec, first, upto)
                        else:
                            chunk = recording_events(rec, first, upto)
                        if self.retime:
                            chunk = [
                                # to the microsecond: whole milliseconds put a stamp up to
                                # 0.5 ms after its send (negative latencies on loopback)
                                {
                                    **ev,
                                    "timestamp": round(wall0 + sched.offsets[first + k] * 1e3, 3),
                                }
                                for k, ev in enumerate(chunk)
                            ]
                        await self._post(session, chunk)
                        sched.advance(upto)
                        self.sent = upto
                        continue
                    wake = sched.next_time()
                    assert wake is not None
                    try:
                        await asyncio.wait_for(self._stop.wait(), max(0.0, wake - self.clock()))
                    except asyncio.TimeoutError:
                        pass
            self.finished = self.clock()
        except WsnError as exc:
            self.error = exc
            log.error("wsnotebook replay: %s", exc)
        except Exception as exc:  # never escapes the background task
            self.error = ClientError(
                f"replay to {self.url.split('?', 1)[0]} failed: {type(exc).__name__}: {exc}"
            )
            log.error("wsnotebook replay: %s", self.error)
        finally:
            _replays.remove(id(self), self)
            if self.finished is None and self.started is not None:
                self.finished = self.clock()

    async def _post(self, session: Any, chunk: list[dict[str, Any]]) -> None:
        import aiohttp

        body = orjson.dumps(chunk)
        try:
            async with session.post(self.url, data=body) as resp:
                text = await resp.read()
                if resp.status != 200:
                    detail = text[:200].decode("utf-8", "replace").strip()
                    raise ClientError(
                        f"replay to {self.url.split('?', 1)[0]}: HTTP {resp.status}: {detail}"
                    )
        except aiohttp.ClientError as exc:
            # str(), not repr(): "Cannot connect to host 127.0.0.1:1 ssl:default [Connect
            # call failed ...]" reads; the repr was a ConnectionKey(...) dump
            raise ClientError(
                f"cannot reach {self.url.split('?', 1)[0]}: {exc or type(exc).__name__}"
            ) from None
        self.posts += 1


def running_replays() -> list[Replay]:
    """Replays started in this process that are still sending."""
    return _replays.items(lambda r: r.running)


def replay(
    source: str | Path | None = None,
    to: Any = None,
    *,
    speed: float | str | None = 10.0,
    token: str | None = None,
    jupyter_token: str | None = None,
    retime: bool = False,
    batch: int = DEFAULT_BATCH,
) -> Replay:
    """Replay a recording into a server; returns a running :class:`Replay` at once (it runs on
    wsnotebook's background loop: ``.wait()``, ``.result()``, ``.stop()``, ``.stats()``).

    * ``source``: a recording (directory or file); ``None``: the shipped demo session
      (:func:`wsnotebook.recording.session_path`, a few thousand multi-agent hook events).
    * ``to``: a server object (``wsn.serve()``) or its URL (``http(s)://`` or ``ws(s)://``,
      any path prefix such as Jupyter's ``/proxy/4000``; a ``?token=`` is kept).  Required.
    * ``speed=10.0``: the original inter-arrival times divided by this (0 < speed <= 1e6), or
      ``"max"``/``None`` for as fast as the server takes them.
    * ``token``: the server's bearer token (taken from a server object);
      ``jupyter_token``: sent as ``Authorization: token ...`` (a server behind Jupyter).
    * ``retime=False``: ``True`` stamps each event's ``timestamp`` with the time it is due.
    * ``batch=1000``: most events per ``POST`` (1..10,000).

    A path that is not a recording (or a truncated one) raises ``RecordingError`` here;
    a failure while sending ends the replay with ``.error`` set."""
    if to is None:
        raise ConfigError("replay: give a target server or URL (to=...)")
    if not isinstance(batch, int) or isinstance(batch, bool) or not 1 <= batch <= 10_000:
        raise ConfigError(f"batch must be in 1..10000, got {batch!r}")
    path = session_path() if source is None else Path(source)
    probe(path)
    url, server_token = events_url(to)
    return Replay(
        path,
        url,
        speed=parse_speed(speed),
        token=token or server_token,
        jupyter_token=jupyter_token,
        retime=bool(retime),
        batch=batch,
    )
