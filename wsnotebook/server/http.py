"""The HTTP side of :class:`~.server.Server` (a mixin): middleware (CORS, origin allow-list,
token, error replies) and the endpoints ``POST /events``, ``GET /events/recent``,
``/events/filter-options``, ``/health`` and ``/metrics``.

Invariants:

* Every request passes the middleware first: a ``Host`` not allowed gets 421 (DNS-rebinding
  guard, :mod:`.hostcheck`), a disallowed ``Origin`` 403, a missing or wrong token 401
  (compared in constant time; the CORS preflight needs none), and no handler error escapes as
  a traceback: a ``StoreError`` becomes 503, a client gone mid-request 400 (counted in
  ``errors["client_abort"]``), anything else 500, counted.
* An error reply while part of a body is unreadable (decode or connection error met, or a
  compressed body) closes the connection at once: aiohttp's drain of the rest would log the
  decode error as an "Unhandled exception".
* Log lines a remote party can trigger go through ``log_throttle`` (5 per kind per minute);
  aiohttp's own request-handler logger is ``aiohttp_log`` (malformed requests: one DEBUG line
  without traceback, rate-limited).
* Every error reply is ``{"error": message}`` JSON, counted in ``metrics()["rejected"]`` by
  status.  Query parameters out of bounds are a 400 naming the parameter.
* Bodies are bounded by ``max_message_bytes`` (413), events by ``max_event_bytes`` (413),
  batches by ``max_batch_events``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from ..errors import EventValidationError, LimitExceeded, ProtocolError, StoreError
from ..events import Event, decode_events, encode_json
from ..protocol import event_room, fit_newest
from ..runtime.logthrottle import ThrottledLog, ThrottledLoggerAdapter
from ..store import Appendable, Store, StoredEvent
from .admission import Admission
from .broadcast import Broadcaster
from .hostcheck import HostPolicy
from .metrics import ServerCounters, prometheus
from .options import LOOPBACK_NAMES

__all__ = ["JSON", "HttpMixin", "default_origin_ok", "int_param", "json_error"]

log = logging.getLogger("wsnotebook")

JSON = "application/json"
#: Seconds an error reply waits for the rest of an unread compressed body before closing.
LINGER_S = 2.0
#: exceptions that mean "the client sent something malformed or went away": never a traceback
CLIENT_ERRORS: tuple[type[BaseException], ...] = (
    HttpProcessingError,
    RequestPayloadError,
    ConnectionError,
)


def default_origin_ok(origin: str) -> bool:
    """The default allow-list: http(s) origins on a loopback name, any port."""
    try:
        parts = urlsplit(origin)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and host in LOOPBACK_NAMES


async def _drain(content: Any) -> None:
    while await content.readany():
        pass


def _unreadable_rest(request: web.Request) -> bool:
    """Is part of the body still unread and reading it would fail (a decode or connection
    error already met, or a compressed body that aiohttp would decode while draining it)?"""
    if not request.body_exists:
        return False
    content = request.content
    if content.is_eof():
        return False
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    return content.exception() is not None or encoding not in ("", "identity")


def json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.Response(
        status=status,
        body=encode_json({"error": message}),
        content_type=JSON,
        headers=headers or None,
    )


def int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    """Query parameter ``name`` as an int in ``lo..hi`` (``default`` when absent or empty);
    else ProtocolError (a ValueError), which the handlers turn into a 400."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ProtocolError(f"{name}: expected integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ProtocolError(f"{name}: must be in {lo}..{hi}, got {value}")
    return value


class HttpMixin:
    """HTTP for :class:`~.server.Server` (which provides the attributes declared here)."""

    host: str
    token: str | None
    store: Store
    counters: ServerCounters
    broadcaster: Broadcaster
    initial_limit: int
    max_event_bytes: int
    max_message_bytes: int
    max_batch_events: int
    _started: float
    _admission: Admission
    _append_one: Any
    #: ``GET /events/recent`` replies cut to fit ``max_message_bytes`` (``metrics()``)
    recent_truncated: int = 0

    if TYPE_CHECKING:

        async def _ingest(self, events: Appendable) -> list[StoredEvent]: ...

        def _ingest_one_now(self, event: Event) -> StoredEvent: ...

        def metrics_now(self) -> dict[str, Any]: ...

    def _init_http(
        self, allowed_origins: Iterable[str] | None, allowed_hosts: Iterable[str] | None = None
    ) -> None:
        #: every log line a remote party can trigger goes through this (keyed by kind)
        self.log_throttle = ThrottledLog(log)
        #: aiohttp's request-handler logger: malformed requests (its own 400s), payload and
        #: connection errors logged as one rate-limited DEBUG line without traceback
        self.aiohttp_log = ThrottledLoggerAdapter(
            ThrottledLog(logging.getLogger("aiohttp.server")), quiet=CLIENT_ERRORS
        )
        self._host_policy = HostPolicy(bind_host=self.host, allowed_hosts=allowed_hosts)
        origins = None if allowed_origins is None else list(allowed_origins)
        self._any_origin = origins is not None and "*" in origins
        self._origins = frozenset(o.rstrip("/").lower() for o in origins or ())
        self._default_origins = origins is None

    def _origin_ok(self, origin: str) -> bool:
        if self._any_origin:
            return True
        if self._default_origins:
            return default_origin_ok(origin)
        return origin.rstrip("/").lower() in self._origins

    def _token_ok(self, request: web.Request) -> bool:
        if not self.token:
            return True
        given = ""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        if not given:
            given = request.query.get("token", "")
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        # The connection is busy (not idle: admission never sheds it) from here until the reply
        # is out; a WebSocket stays busy for its whole life (its handler runs until it ends).
        # One coroutine per request (the checks and the error mapping are plain calls): a
        # second coroutine frame cost ~1-2 us of each ``POST /events``.
        policy = self._admission.policy
        proto = request.protocol
        policy.started(proto)
        try:
            origin = request.headers.get("Origin")
            refused = self._refusal(request, origin)
            resp: web.StreamResponse
            if refused is not None:
                resp = refused
            else:
                try:
                    resp = await handler(request)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    resp = self._error_reply(request, exc)
                if origin is not None and not resp.prepared:
                    resp.headers["Access-Control-Allow-Origin"] = origin
                    resp.headers["Vary"] = "Origin"
            if resp.status >= 400 and not resp.prepared and _unreadable_rest(request):
                assert isinstance(resp, web.Response)
                return await self._reply_and_close(request, resp)
            return resp
        finally:
            policy.finished(proto)

    def _refusal(self, request: web.Request, origin: str | None) -> web.Response | None:
        """The reply to a request refused before its handler (Host 421, Origin 403, a CORS
        preflight or its 404, token 401), or None: the handler runs."""
        host = request.headers.get("Host")
        policy = self._host_policy
        # ``request.query`` parses the URL's query (~1 us): only for a Host not accepted outright
        if not policy.allows(host) and not policy.allows(host, request.headers, request.query):
            # DNS rebinding: a page on evil.example re-pointed at 127.0.0.1 sends its own name
            self.log_throttle.info(
                "host",
                "wsnotebook: refused %s %s with Host %r",
                request.method,
                request.path,
                (host or "")[:100],
            )
            return self._reject(421, f"host not allowed: {(host or '')[:100]!r}")
        if (
            origin is not None
            and not self._origin_ok(origin)
            # a page served by this kernel's Jupyter server, through jupyter-server-proxy
            and not policy.jupyter_origin_ok(origin, host, request.headers, request.query)
        ):
            return self._reject(403, "origin not allowed")
        if request.method == "OPTIONS":
            missing = request.match_info.http_exception
            if missing is not None and missing.status == 404:
                return self._reject(404, "not found")
            return self._preflight(origin)
        if not self._token_ok(request):
            return self._reject(401, "unauthorized", **{"WWW-Authenticate": "Bearer"})
        return None

    def _error_reply(self, request: web.Request, exc: Exception) -> web.Response:
        """The JSON error reply for what a handler raised (an HTTP error, a store failure, a
        client gone mid-request, anything else: counted and logged); re-raises a non-error
        ``web.HTTPException`` (a redirect)."""
        if isinstance(exc, web.HTTPException):
            if exc.status < 400:
                raise exc
            message = exc.reason.lower() if exc.reason else "error"
            if exc.status == 413:
                message = f"body: exceeds the limit of {self.max_message_bytes} bytes"
            return self._reject(exc.status, message)
        if isinstance(exc, StoreError):
            self.counters.errors.bump("store")
            self.log_throttle.error("store", "wsnotebook: store error: %s", exc)
            return self._reject(503, str(exc))
        if isinstance(exc, ConnectionError):
            # the client went away mid-request (e.g. closed during the body): its error, not
            # ours; the reply is moot (nobody reads it) but keeps the counters honest
            self.counters.errors.bump("client_abort")
            self.log_throttle.info(
                "client_abort",
                "wsnotebook: client %s closed the connection during %s %s: %s",
                request.remote,
                request.method,
                request.path,
                exc,
            )
            return self._reject(400, "connection closed before the request was complete")
        self.counters.errors.bump("handler")
        self.log_throttle.error(
            "handler",
            "wsnotebook: handler error on %s %s",
            request.method,
            request.path,
            exc_info=exc,
        )
        return self._reject(500, f"internal error: {type(exc).__name__}")

    async def _reply_and_close(self, request: web.Request, resp: web.Response) -> web.Response:
        """Send ``resp`` now, drain what is left of the body (at most ``LINGER_S``, errors
        ignored) and close the connection.  For a body that cannot be read or decoded: aiohttp
        would otherwise drain it itself after the reply (its "lingering close"), meet the
        decode error and log it as an "Unhandled exception" (three chained tracebacks, ~36
        lines per request).  Draining (not closing with unread data, which makes the kernel
        send a reset) lets a client still sending a compressed body read the reply."""
        resp.force_close()
        try:
            await resp.prepare(request)
            await resp.write_eof()
            if request.content.exception() is None:
                await asyncio.wait_for(_drain(request.content), LINGER_S)
        except (ConnectionError, asyncio.TimeoutError, HttpProcessingError, RequestPayloadError):
            pass  # the peer is gone, too slow, or its body is garbage: closing anyway
        protocol = request.protocol
        if protocol is not None:
            protocol.force_close()  # flushes what was written, then closes
        return resp

    def _reject(self, status: int, message: str, **headers: str) -> web.Response:
        self.counters.rejected.bump(str(status))
        return json_error(status, message, **headers)

    def _preflight(self, origin: str | None) -> web.Response:
        """CORS preflight (no token needed: browsers never send credentials on it)."""
        if origin is None:
            return web.Response(status=204, headers={"Allow": "GET, POST, PUT, DELETE, OPTIONS"})
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Content-Type, Authorization",
                "Access-Control-Max-Age": "600",
                "Vary": "Origin",
            },
        )

    # ---------------------------------------------------------------- HTTP endpoints
    async def _post_events(self, request: web.Request) -> web.StreamResponse:
        # The plain header needs no parsing; aiohttp's ``content_type`` parses any other value
        # (~4-8 us a request here, the largest of our per-request costs beside the ingest).
        if request.headers.get("Content-Type") != JSON and request.content_type != JSON:
            return self._reject(
                415, f"Content-Type: expected application/json, got {request.content_type}"
            )
        length = request.content_length
        if length is not None and length > self.max_message_bytes:
            return self._reject(
                413, f"body: {length} bytes exceeds the limit of {self.max_message_bytes}"
            )
        try:
            body = await request.read()
        except RequestPayloadError as exc:  # a corrupt gzip/deflate body (aiohttp decodes it)
            encoding = request.headers.get("Content-Encoding", "")
            message = f"body: cannot decode Content-Encoding {encoding!r}"
            if not encoding:  # e.g. broken chunked framing
                message = f"body: malformed: {str(exc).splitlines()[-1].strip()[:200]}"
            self.log_throttle.info(
                "bad_body",
                "wsnotebook: %s %s from %s: %s",
                request.method,
                request.path,
                request.remote,
                message,
            )
            return self._reject(400, message)  # the middleware closes the connection
        try:
            events = decode_events(
                body,
                max_event_bytes=self.max_event_bytes,
                max_message_bytes=self.max_message_bytes,
                max_batch=self.max_batch_events,
            )
        except LimitExceeded as exc:
            return self._reject(413, str(exc))
        except (ProtocolError, EventValidationError) as exc:
            return self._reject(400, str(exc))
        try:
            if len(events) == 1 and self._append_one is not None:
                stored = [self._ingest_one_now(events[0])]  # the per-event hot path
            else:
                stored = await self._ingest(events)
        except LimitExceeded as exc:  # valid, but its JSON is over max_event_bytes
            return self._reject(413, str(exc))
        except EventValidationError as exc:  # valid, but cannot be encoded as JSON
            return self._reject(400, str(exc))
        if body.lstrip()[:1] == b"[":
            out = b"[" + b",".join(s.encoded for s in stored) + b"]"
        else:
            out = stored[0].encoded
        return web.Response(body=out, content_type=JSON)

    async def _get_recent(self, request: web.Request) -> web.StreamResponse:
        try:
            limit = int_param(request, "limit", self.initial_limit, 0, 100_000)
        except ProtocolError as exc:
            return self._reject(400, str(exc))
        # The newest events that fit max_message_bytes (like an ``initial`` snapshot), oldest
        # first; how many of the ``limit`` asked for (and retained) were left out goes in
        # X-Wsnotebook-Truncated, so the body stays the seed's plain array.
        store = self.store
        available = min(limit, len(store))
        room = event_room(self.max_message_bytes)
        stored = await store.recent(limit, room) if limit else []
        stored = stored[len(stored) - fit_newest([s.encoded for s in stored], room) :]
        resp = web.Response(
            body=b"[" + b",".join(s.encoded for s in stored) + b"]", content_type=JSON
        )
        left_out = available - len(stored)
        if left_out > 0:
            self.recent_truncated += 1
            resp.headers["X-Wsnotebook-Truncated"] = str(left_out)
            resp.headers["Access-Control-Expose-Headers"] = "X-Wsnotebook-Truncated"
        return resp

    async def _get_filter_options(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=encode_json(await self.store.filter_options()), content_type=JSON)

    async def _get_health(self, request: web.Request) -> web.StreamResponse:
        body = {
            "status": "ok",
            "epoch": self.store.epoch,
            "seq": self.store.last_id,
            "store": self.store.kind,
            "connections": len(self.broadcaster.clients),
            "uptime_s": round(time.monotonic() - self._started, 3),
        }
        return web.Response(body=encode_json(body), content_type=JSON)

    async def _get_metrics(self, request: web.Request) -> web.StreamResponse:
        metrics = self.metrics_now()
        if request.query.get("format") == "prometheus":
            return web.Response(text=prometheus(metrics), content_type="text/plain")
        return web.Response(body=encode_json(metrics), content_type=JSON)
