"""The connection session: connect, consume, and reconnect with backoff until closed.

Owns everything about the socket side of a client, on the background loop: one
``websockets.connect`` attempt at a time (handshake with the token as a Bearer header and the
resume query ``?since=&epoch=``) to one URL of its list at a time (several URLs: servers sharing
one store, e.g. on Redis; after a failed attempt or a drop the next attempt goes to the next URL,
round robin, resuming where the last connection stopped), keepalive ping/pong (RTT from
``ws.latency``), the receive loop that hands each raw message to the sink, the classification
of each failure (:mod:`.classify`) and the delay before the next attempt
(:class:`~wsnotebook.protocol.Backoff`: full jitter, reset after a stable connection).
Connection counters and wire totals live here.

Invariants: at most one connection is open per session; ``stop`` is called exactly once with
the terminal error of a non-retryable verdict (or ``None`` on close); ``run`` never raises into
the loop (an unexpected error stops the client with ``ClientError("internal error: ...")``); on
exit queued events are flushed, the socket is closed within ``close_timeout + 0.5`` s and
``on_exit`` is called.  The message loop yields the GIL to the kernel once per message when a
CPU budget is set (:func:`~wsnotebook.runtime.loop.budget_checkpoint`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, Literal, cast

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from ..errors import ClientError, WsnError
from ..protocol import WSNOTEBOOK_HEADER, Backoff
from ..runtime import loop as _loop
from ..stats import RateMeter
from .classify import ErrorCounts, Verdict, classify_close, classify_exception
from .local import LocalPath
from .metering import MeteredDeflateFactory, WireMeter, metered_connection
from .options import ClientOptions
from .redact import RedactingLogger, redact_url, token_secrets
from .sink import MessageSink
from .url import is_loopback_url, with_query

__all__ = ["STATES", "Session", "State"]

log = logging.getLogger("wsnotebook")

State = Literal["connecting", "open", "reconnecting", "closed"]
STATES = ("connecting", "open", "reconnecting", "closed")


class Session:
    """The reconnect loop of one client.

    ``set_state``/``stop``/``on_exit`` are the facade's: the state machine and the terminal
    error live there (threads wait on them).  ``handle`` is the per-message handler, the
    sink's by default (replaceable, e.g. by a benchmark wrapping it).
    """

    def __init__(
        self,
        url: str | Sequence[str],
        options: ClientOptions,
        sink: MessageSink,
        *,
        failures: ErrorCounts,
        set_state: Callable[[State], None],
        stop: Callable[[WsnError | None], None],
        on_exit: Callable[[], None],
    ) -> None:
        self.urls: tuple[str, ...] = (url,) if isinstance(url, str) else tuple(url)
        self.index = 0  # the URL of the next attempt
        self.failovers = 0  # attempts sent to another URL than the previous one
        self.options = options
        self.sink = sink
        self.handle: Callable[[bytes, int], None] = sink.handle
        self.count = failures.add
        self.set_state = set_state
        self.stop = stop
        self.on_exit = on_exit
        # Masks the token in the websockets library's own log (request line, headers, errors).
        self.ws_logger = RedactingLogger(
            logging.getLogger("websockets.client"),
            tuple({s for u in self.urls for s in token_secrets(u, options.token)}),
        )
        self.backoff = Backoff(
            base=options.backoff_base,
            factor=options.backoff_factor,
            cap=max(options.backoff_cap, options.backoff_base),
            max_attempts=options.max_attempts,
            stable_after=options.stable_after,
            rng=options.rng,
            clock=time.monotonic,
        )
        self.closing = False
        self.ws: ClientConnection | None = None
        self.meter: WireMeter | None = None
        self.connects = 0
        self.attempts = 0
        self.last_rtt_ms: float | None = None
        self.last_disconnect: str | None = None
        #: The most recent backoff delays (seconds), newest last (at most 100).
        self.delays: deque[float] = deque(maxlen=100)
        self.tcp_in = 0  # totals of retired connections (the open one is in ``meter``)
        self.tcp_out = 0
        self.opened_at: float | None = None
        self.reconnect_rate = RateMeter(window=60.0, clock=time.monotonic)
        self.local = LocalPath()  # in-process attempts (connect(in_process=True))

    @property
    def url(self) -> str:
        """The URL of the current (or next) attempt."""
        return self.urls[self.index]

    @property
    def compression(self) -> bool:
        """Offer permessage-deflate to the current URL? (``"auto"``: not on loopback)."""
        option = self.options.compression
        return not is_loopback_url(self.url) if option == "auto" else bool(option)

    def next_url(self) -> None:
        """Fail over: the next attempt goes to the next URL of the list (round robin)."""
        if len(self.urls) > 1:
            self.index = (self.index + 1) % len(self.urls)
            self.failovers += 1

    def query(self) -> dict[str, str]:
        """The ``/stream`` query of the next attempt: extensions, resume point, batching."""
        params = {"ext": "1"}
        since = self.sink.resume.since()
        if since is not None:
            params["since"] = str(since)
            if self.sink.resume.epoch is not None:
                params["epoch"] = self.sink.resume.epoch
        if self.options.batch not in (None, 0):
            params["batch"] = str(self.options.batch)
        if self.options.interval_ms is not None:
            params["interval_ms"] = str(int(self.options.interval_ms))
        if self.options.wire_format == "columns" and self.options.batch not in (None, 0):
            params["format"] = "columns"  # live batches as columns (docs/protocol.md)
        return params

    async def run(self) -> None:
        """The client's task: attempt, classify, back off, until closed or a fatal verdict."""
        try:
            while not self.closing:
                verdict = await self.attempt()
                if self.closing:
                    break
                if verdict.kind != "ok":
                    self.count(verdict.kind)
                if not verdict.retry:
                    self.stop(verdict.error)
                    return
                if self.backoff.exhausted():
                    self.stop(
                        ClientError(
                            f"gave up after {self.backoff.attempts} retries; "
                            f"last failure: {self.last_disconnect or verdict.kind}"
                        )
                    )
                    return
                self.next_url()
                delay = self.backoff.next_delay()
                self.delays.append(delay)
                self.set_state("reconnecting")
                log.info(
                    "wsnotebook client %s: %s; reconnecting in %.3f s",
                    redact_url(self.url),
                    verdict.kind,
                    delay,
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # never raise into the loop / kernel
            log.exception("wsnotebook client %s: unexpected error", redact_url(self.url))
            self.count("internal")
            self.stop(ClientError(f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            self.sink.flush()
            ws = self.ws
            if ws is not None:
                self.ws = None
                try:
                    await asyncio.wait_for(ws.close(), self.options.close_timeout + 0.5)
                except BaseException:
                    pass
            self.retire_meter()
            self.set_state("closed")
            self.on_exit()

    def retire_meter(self) -> None:
        """Fold the finished connection's TCP bytes into the session totals."""
        meter = self.meter
        if meter is not None:
            self.tcp_in += meter.tcp_in
            self.tcp_out += meter.tcp_out
            self.meter = None

    async def attempt(self) -> Verdict:
        """One connection: open, consume until it drops.  Returns what happened."""
        if self.options.in_process_for(self.url):  # a server of this process: no socket
            verdict = await self.local.attempt(self)
            if verdict is not None:
                return verdict
        meter = WireMeter()
        headers = {"User-Agent": "wsnotebook-client/0.1"}
        if self.options.token is not None:
            headers["Authorization"] = f"Bearer {self.options.token}"
        url = with_query(self.url, self.query())
        # ssl=None would make websockets refuse a wss:// URL; leaving it out gives the default
        # context (system trust store, hostname checked).
        tls: dict[str, Any] = {} if self.options.ssl is None else {"ssl": self.options.ssl}
        try:
            ws = await ws_connect(
                url,
                additional_headers=headers,
                user_agent_header=None,
                compression=None,
                extensions=[MeteredDeflateFactory(meter)] if self.compression else None,
                open_timeout=self.options.open_timeout,
                ping_interval=self.options.ping_interval,
                ping_timeout=self.options.ping_timeout,
                close_timeout=self.options.close_timeout,
                max_size=self.options.max_message_bytes,
                max_queue=64,
                create_connection=cast(Any, metered_connection(meter)),
                logger=self.ws_logger,
                **tls,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.attempts += 1
            self.tcp_in += meter.tcp_in
            self.tcp_out += meter.tcp_out
            verdict = classify_exception(exc)
            self.last_disconnect = f"{verdict.kind}: {exc}"
            log.debug("connect to %s failed: %r", redact_url(self.url), exc)
            return verdict
        self.ws, self.meter = ws, meter
        response = getattr(ws, "response", None)
        self.sink.columnar = response is not None and WSNOTEBOOK_HEADER in response.headers
        self.connects += 1
        if self.connects > 1:
            self.reconnect_rate.add()
        self.backoff.connected()
        self.opened_at = time.monotonic()
        self.set_state("open")
        log.info("wsnotebook client connected to %s", redact_url(self.url))
        try:
            await self.consume(ws, meter)
            verdict = Verdict("closed_abnormally", True)  # not reached: recv raises
        except ConnectionClosed as exc:
            verdict = classify_close(exc)
            self.last_disconnect = f"{verdict.kind}: {exc}"
        finally:
            self.sink.flush()
            self.backoff.disconnected()
            self.opened_at = None
            if self.ws is ws:
                self.ws = None
            self.retire_meter()
        return verdict

    async def consume(self, ws: ClientConnection, meter: WireMeter) -> None:
        """The message loop: one ``handle`` per message until the connection drops (raises)."""
        while True:
            raw = await ws.recv(decode=False)
            if ws.latency:
                self.last_rtt_ms = ws.latency * 1000.0
            wire = meter.in_sizes.popleft() if meter.in_sizes else len(raw)
            try:
                self.handle(raw, wire)
            except Exception:  # a bug or a frame error must not kill the connection
                self.count("internal")
                log.exception("wsnotebook client: error while handling a message")
            # Over the kernel CPU budget, yield the GIL to the kernel (no-op without a budget).
            _loop.budget_checkpoint()
