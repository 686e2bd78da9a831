"""Connection admission: a cap on open TCP connections, header-read and keep-alive idle
timeouts, and recovery from descriptor exhaustion (finding 1 of issue 23).

Two parts:

* :class:`AdmissionPolicy` is sans-I/O (an injected clock, opaque connection keys): it knows
  which connections are open, which are *idle* (no request in flight: no HTTP request being
  handled, no WebSocket) and since when, and answers "which connections to close" when one
  opens, on a periodic sweep, and when ``accept()`` runs out of descriptors.
* :class:`Admission` is the thin aiohttp glue: it hears every connection open and close (the
  low-level ``web.Server``'s ``connection_made`` / ``connection_lost``), marks requests in
  flight from the server's HTTP middleware (:mod:`.http`), sweeps once per
  ``SWEEP_INTERVAL`` and closes what the policy names.

Invariants and bounds:

* At most ``cap`` connections are open: ``cap = min(max_open_connections, RLIMIT_NOFILE soft
  limit - descriptor headroom)``.  Once more than ``cap - reserve`` are open, the connections
  idle the longest are closed first, so a new client (and ``/health``) always finds room; only
  when every connection is busy is a connection beyond ``cap`` refused (closed at once).
* A connection that completes no request headers within ``header_timeout`` s of opening is
  closed; so is a keep-alive connection idle for ``keepalive_timeout`` s after its last reply.
* ``socket.accept()`` failing with EMFILE/ENFILE (asyncio reports it to the loop's exception
  handler, which calls :meth:`Admission.on_accept_error`): every connection idle for at least
  ``EXHAUSTED_MIN_IDLE`` s is closed (at least the ``SHED_MIN`` oldest idle ones), at most once
  per ``SHED_INTERVAL`` s; asyncio itself retries accepting after 1 s.  Logged at WARNING at
  most once per ``LOG_PERIOD`` s with a count (``runtime.loop``), counted in metrics.
* Every close is counted by reason in ``metrics()["admission"]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import resource
import socket
import time
from collections.abc import Callable, Hashable, Iterator
from typing import Any, Generic, TypeVar

from aiohttp import web

from ..runtime import loop as _loop

__all__ = [
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_OPEN_CONNECTIONS",
    "NOFILE_ENV",
    "Admission",
    "AdmissionPolicy",
    "effective_cap",
    "raise_nofile_limit",
]

log = logging.getLogger("wsnotebook")

#: Default cap on open TCP connections (HTTP + WebSocket), before the descriptor limit.
DEFAULT_MAX_OPEN_CONNECTIONS = 4096
#: Seconds a new connection has to send complete request headers.
DEFAULT_HEADER_TIMEOUT = 10.0
#: Seconds a keep-alive connection may stay idle after a reply (aiohttp's own default is
#: 3630 s; 15 s keeps a hook posting every few seconds on one connection while an abandoned
#: one gives its descriptor back quickly).
DEFAULT_KEEPALIVE_TIMEOUT = 15.0
#: Set to ``0`` to keep the process's soft RLIMIT_NOFILE as it is (tests lower it on purpose).
NOFILE_ENV = "WSNOTEBOOK_RAISE_NOFILE"
#: The soft RLIMIT_NOFILE is raised toward the hard limit, but not above this.
NOFILE_TARGET = 65536
#: How often the glue sweeps for timed-out connections (seconds).
SWEEP_INTERVAL = 0.5
#: On descriptor exhaustion: close idle connections idle at least this long (seconds)...
EXHAUSTED_MIN_IDLE = 0.5
#: ...but at least this many of the oldest idle ones...
SHED_MIN = 8
#: ...at most once per this many seconds (asyncio retries accept() after 1 s).
SHED_INTERVAL = 0.5

#: Connections asyncio accepts per wake-up of the listening socket: the ``backlog`` the server
#: gives aiohttp's site (asyncio also passes it to ``listen()``; :meth:`Admission.install`
#: sets the kernel's accept queue back to ``LISTEN_BACKLOG``).  Up to about three bursts are
#: in flight before the first of them reaches the policy, hence the descriptor headroom.
ACCEPT_BURST = 32
LISTEN_BACKLOG = 1024

K = TypeVar("K", bound=Hashable)


def effective_cap(max_open: int, nofile: int) -> tuple[int, int]:
    """``(cap, reserve)`` for ``max_open`` connections under a soft descriptor limit
    ``nofile``.  The headroom is a quarter of the limit, at most 256, but at least
    3 x ``ACCEPT_BURST`` + 64: asyncio accepts up to ``ACCEPT_BURST`` connections per wake-up
    and a connection reaches the server two loop iterations after its accept (closing one
    takes another), and the process needs descriptors of its own (the store, the kernel's
    sockets, files).  The reserve is a tenth of the cap, 2..64."""
    headroom = max(3 * ACCEPT_BURST + 64, min(256, nofile // 4))
    cap = max(16, min(max_open, nofile - headroom))
    reserve = min(64, max(2, cap // 10))
    return cap, reserve


def raise_nofile_limit(target: int = NOFILE_TARGET) -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE toward the hard limit (at most ``target``) unless the
    environment variable ``WSNOTEBOOK_RAISE_NOFILE`` is ``0``.  Returns ``(before, after)``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if os.environ.get(NOFILE_ENV, "1") == "0":
        return soft, soft
    want = target if hard == resource.RLIM_INFINITY else min(target, hard)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft, soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    except (ValueError, OSError):  # pragma: no cover - not allowed here
        return soft, soft
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class _State:
    __slots__ = ("busy", "fresh", "since")

    def __init__(self, now: float) -> None:
        self.busy = 0  # requests in flight (a WebSocket is one long request)
        self.fresh = True  # no request headers completed yet
        self.since = now  # idle since (opened, or the last reply)


class AdmissionPolicy(Generic[K]):
    """Which connections to close (sans-I/O; every method O(1) amortised per connection).

    Idle connections sit in two insertion-ordered dicts: ``fresh`` ones (no request yet, by
    open time: ``header_timeout`` applies) and kept-alive ones (by their last reply:
    ``keepalive_timeout`` applies), so both expiry and "idle the longest" read from the front.
    Every key a method returns has been forgotten: the caller closes it; a later
    :meth:`closed` for it is a no-op.
    """

    def __init__(
        self,
        *,
        cap: int,
        reserve: int,
        header_timeout: float,
        keepalive_timeout: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cap = cap
        self.reserve = reserve
        self.header_timeout = header_timeout
        self.keepalive_timeout = keepalive_timeout
        self.clock = clock
        self._conns: dict[K, _State] = {}
        self._fresh: dict[K, None] = {}
        self._kept: dict[K, None] = {}
        self._last_shed = -1e18
        self.counts = {
            "shed_idle": 0,
            "refused": 0,
            "header_timeout": 0,
            "keepalive_timeout": 0,
            "shed_exhausted": 0,
        }

    def __len__(self) -> int:
        return len(self._conns)

    @property
    def idle(self) -> int:
        return len(self._fresh) + len(self._kept)

    # ------------------------------------------------------------------ events
    def opened(self, key: K) -> list[K]:
        """A connection opened: returns the connections to close (the longest idle ones while
        more than ``cap - reserve`` are open; ``key`` itself when all of the others are busy
        and ``cap`` is exceeded)."""
        now = self.clock()
        self._conns[key] = _State(now)
        self._fresh[key] = None
        close: list[K] = []
        soft = self.cap - self.reserve
        while len(self._conns) > soft and self.idle > 1:
            victim = self._oldest_idle()
            if victim == key:
                break
            self._forget(victim)
            close.append(victim)
            self.counts["shed_idle"] += 1
        if len(self._conns) > self.cap:
            self._forget(key)
            close.append(key)
            self.counts["refused"] += 1
        return close

    def started(self, key: K) -> None:
        """A request on ``key`` is being handled (headers complete)."""
        st = self._conns.get(key)
        if st is None:
            return
        if st.busy == 0:
            self._fresh.pop(key, None)
            self._kept.pop(key, None)
        st.busy += 1
        st.fresh = False

    def finished(self, key: K) -> None:
        """A request on ``key`` got its reply (or its WebSocket ended)."""
        st = self._conns.get(key)
        if st is None or st.busy == 0:
            return
        st.busy -= 1
        if st.busy == 0:
            st.since = self.clock()
            self._kept[key] = None

    def closed(self, key: K) -> None:
        """The connection is gone (whoever closed it)."""
        self._forget(key)

    # ------------------------------------------------------------------ decisions
    def expired(self) -> list[K]:
        """Idle connections past their timeout (``header_timeout`` for connections that never
        completed a request, ``keepalive_timeout`` after a reply)."""
        now = self.clock()
        out: list[K] = []
        for queue, timeout, reason in (
            (self._fresh, self.header_timeout, "header_timeout"),
            (self._kept, self.keepalive_timeout, "keepalive_timeout"),
        ):
            if timeout <= 0:
                continue
            while queue:
                key = next(iter(queue))
                if now - self._conns[key].since < timeout:
                    break
                self._forget(key)
                out.append(key)
                self.counts[reason] += 1
        return out

    def exhausted(self) -> list[K]:
        """``accept()`` ran out of descriptors: the idle connections to close (all idle at
        least ``EXHAUSTED_MIN_IDLE`` s, at least the ``SHED_MIN`` oldest; nothing when the last
        shed was less than ``SHED_INTERVAL`` s ago)."""
        now = self.clock()
        if now - self._last_shed < SHED_INTERVAL:
            return []
        self._last_shed = now
        out: list[K] = []
        while self.idle:
            key = self._oldest_idle()
            if len(out) >= SHED_MIN and now - self._conns[key].since < EXHAUSTED_MIN_IDLE:
                break
            self._forget(key)
            out.append(key)
        self.counts["shed_exhausted"] += len(out)
        return out

    # ------------------------------------------------------------------ internals
    def _oldest_idle(self) -> K:
        f = next(iter(self._fresh), None)
        k = next(iter(self._kept), None)
        if f is None:
            assert k is not None
            return k
        if k is None or self._conns[f].since <= self._conns[k].since:
            return f
        return k

    def _forget(self, key: K) -> None:
        if self._conns.pop(key, None) is not None:
            self._fresh.pop(key, None)
            self._kept.pop(key, None)

    def keys(self) -> Iterator[K]:
        return iter(self._conns)


_nofile_note: dict[str, int] | None = None  # the process's one RLIMIT_NOFILE raise


class Admission:
    """The aiohttp glue around :class:`AdmissionPolicy` for one server (loop thread only)."""

    def __init__(
        self,
        max_open_connections: int = DEFAULT_MAX_OPEN_CONNECTIONS,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT,
    ) -> None:
        self.max_open_connections = max_open_connections
        self.header_timeout = header_timeout
        self.keepalive_timeout = keepalive_timeout
        self.policy: AdmissionPolicy[Any] = AdmissionPolicy(
            cap=max_open_connections,
            reserve=1,
            header_timeout=header_timeout,
            keepalive_timeout=keepalive_timeout,
        )
        self.accept_errors = 0
        self._listen_fd = -1
        self._sweeper: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ lifecycle
    def install(self, runner: web.BaseRunner, sock: socket.socket) -> None:
        """Hook the runner's low-level server (after ``site.start()``, before any await), size
        the cap from the descriptor limit (raising it once per process), restore the kernel's
        accept queue of the listening ``sock`` and start the sweeper."""
        with contextlib.suppress(OSError):
            sock.listen(LISTEN_BACKLOG)
        listen_fd = sock.fileno()
        global _nofile_note
        if _nofile_note is None:
            before, after = raise_nofile_limit()
            _nofile_note = {"before": before, "after": after}
            if after != before:
                log.info("wsnotebook: raised the soft RLIMIT_NOFILE from %d to %d", before, after)
        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if nofile == resource.RLIM_INFINITY:  # pragma: no cover
            nofile = 1 << 20
        self.policy.cap, self.policy.reserve = effective_cap(self.max_open_connections, nofile)
        srv = runner.server
        if srv is None:  # pragma: no cover - setup() not called
            raise RuntimeError("Admission.install() before runner.setup()")
        made, lost = srv.connection_made, srv.connection_lost

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            made(handler, transport)
            for victim in self.policy.opened(handler):
                if victim is handler:  # refused: once its connection_made has finished
                    asyncio.get_running_loop().call_soon(victim.force_close)
                else:  # now, so its descriptor is freed before the next accept() burst
                    victim.force_close()

        def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
            self.policy.closed(handler)
            lost(handler, exc)

        srv.connection_made = connection_made  # type: ignore[method-assign]
        srv.connection_lost = connection_lost  # type: ignore[method-assign]
        self._listen_fd = listen_fd
        self._loop = asyncio.get_running_loop()
        _loop.add_accept_error_hook(self.on_accept_error)
        self._sweeper = asyncio.ensure_future(self._sweep())

    async def stop(self) -> None:
        _loop.remove_accept_error_hook(self.on_accept_error)
        task, self._sweeper = self._sweeper, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_INTERVAL)
            for handler in self.policy.expired():
                handler.force_close()

    # ------------------------------------------------------------------ hooks
    def on_accept_error(self, listen_fd: int) -> None:
        """The loop's exception handler saw ``accept()`` fail for lack of descriptors on the
        listening socket ``listen_fd``: free descriptors by closing idle connections."""
        if listen_fd != self._listen_fd:
            return
        self.accept_errors += 1
        for handler in self.policy.exhausted():
            handler.force_close()

    def metrics(self) -> dict[str, Any]:
        p = self.policy
        return {
            "open_connections": len(p),
            "admission": {
                "cap": p.cap,
                "reserve": p.reserve,
                "idle": p.idle,
                "accept_errors": self.accept_errors,
                **p.counts,
                "nofile_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
                "nofile_raised_from": (_nofile_note or {}).get("before", 0),
            },
        }
