"""The reconnecting WebSocket client: subscribes to a wsnotebook (or seed-style) ``/stream``
and feeds an :class:`~wsnotebook.frame.EventFrame`.

Built on the ``websockets`` library (asyncio implementation): its handshake, keepalive
ping/pong with timeout (``ping_interval``/``ping_timeout``, RTT in ``.latency``), open timeout,
permessage-deflate and exception classification are used as they are.  Our own loop adds what it
does not do: exponential backoff with full jitter from the sans-I/O :class:`~wsnotebook._protocol.
Backoff` (injectable RNG and clock), lossless resume with ``?since=&epoch=`` through
:class:`~wsnotebook._protocol.ResumeState`, gap accounting, traffic log and metrics.

Everything runs on the shared background loop (:mod:`wsnotebook._loop`); :func:`connect`
returns at once.  Semantics (reconnection, resume, gaps) are documented in ``docs/client.md``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import logging
import operator
import random
import re
import ssl as ssl_module
import sys
import threading
import time
import traceback
import urllib.parse
from collections import deque
from collections.abc import Callable
from itertools import repeat
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidMessage,
    InvalidStatus,
    InvalidURI,
)
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    PerMessageDeflate,
)
from websockets.frames import CTRL_OPCODES, Frame
from websockets.uri import parse_uri

from ..errors import (
    AuthError,
    ClientError,
    ConfigError,
    ConnectionClosedError,
    WsnError,
)
from ..events import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Event,
    decode_json,
    encode_json,
    now_ms,
    validate_events,
)
from ..events.columns import BATCH_PREFIX, EventColumns, decode_batch_columns
from ..frame import EventFrame
from ..protocol import (
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    RETRYABLE_CLOSE_CODES,
    WSNOTEBOOK_HEADER,
    Backoff,
    Gap,
    ResumeState,
    ServerMessage,
    parse_server_message,
)
from ..runtime import loop as _loop
from ..runtime.gcpause import gc_paused
from ..stats import LatencyStats, RateMeter
from .traffic import TrafficLog

__all__ = [
    "Client",
    "close_all",
    "connect",
    "connect_async",
    "running_clients",
]

log = logging.getLogger("wsnotebook")

State = Literal["connecting", "open", "reconnecting", "closed"]
STATES = ("connecting", "open", "reconnecting", "closed")

#: Live events queued at most before they are appended to the frame in one go.
_FLUSH_EVENTS = 1000

#: Smallest ``batch`` message sent down the columnar fast path (:mod:`wsnotebook._columns`).
#: That path has a fixed cost of ~30 numpy calls per message; measured here it breaks even
#: with the dict path at ~10 events of 270 B and is 2.5x faster at 1000.
_COLUMNS_MIN_BYTES = 4096

#: HTTP statuses of a refused handshake that are worth retrying (server or proxy trouble).
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

_registry: set[Client] = set()  # strong refs: a running client lives until closed
_registry_lock = threading.Lock()


# --------------------------------------------------------------------------- classification


class _Verdict:
    """How to react to a failed attempt or a dropped connection."""

    __slots__ = ("kind", "retry", "error")

    def __init__(self, kind: str, retry: bool, error: WsnError | None = None) -> None:
        self.kind = kind
        self.retry = retry
        self.error = error

    def __repr__(self) -> str:
        return f"_Verdict({self.kind!r}, retry={self.retry}, error={self.error!r})"


def classify_exception(exc: BaseException) -> _Verdict:
    """Classify an exception raised while opening or reading a connection.

    Retryable: refused / reset / other network errors, timeouts, EOF during the handshake,
    HTTP 5xx (and 408/425/429), closes 1000/1001/1006/1011/1012/1013 and keepalive ping
    timeouts.  Fatal: HTTP 401/403 (:class:`AuthError`), other HTTP statuses, close 1008
    (:class:`AuthError`), close 1009 and other close codes, invalid URLs, TLS certificate
    failures and handshakes that are not WebSocket at all (:class:`ClientError`).
    """
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        if status in (401, 403):
            return _Verdict(
                "auth",
                False,
                AuthError(f"server refused the WebSocket handshake with HTTP {status}"),
            )
        if status in RETRYABLE_STATUS or 500 <= status < 600:
            return _Verdict("http_5xx" if status >= 500 else f"http_{status}", True)
        return _Verdict(
            f"http_{status}",
            False,
            ClientError(
                f"server answered the WebSocket handshake with HTTP {status} "
                "(is this a wsnotebook /stream URL?)"
            ),
        )
    if isinstance(exc, InvalidURI):
        return _Verdict("bad_url", False, ClientError(f"invalid URL: {exc}"))
    if isinstance(exc, ConnectionClosed):
        return classify_close(exc)
    if isinstance(exc, InvalidMessage):
        # EOF or garbage instead of an HTTP response: EOF is a network error, retry.
        if isinstance(exc.__cause__, EOFError):
            return _Verdict("handshake_eof", True)
        return _Verdict("handshake", False, ClientError(f"invalid handshake response: {exc}"))
    if isinstance(exc, InvalidHandshake):
        return _Verdict("handshake", False, ClientError(f"WebSocket handshake failed: {exc}"))
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return _Verdict("tls", False, ClientError(f"TLS certificate verification failed: {exc}"))
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return _Verdict("timeout", True)
    if isinstance(exc, ConnectionRefusedError):
        return _Verdict("refused", True)
    if isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        return _Verdict("reset", True)
    if isinstance(exc, OSError):
        return _Verdict("network", True)
    return _Verdict(
        "internal", False, ClientError(f"unexpected error: {type(exc).__name__}: {exc}")
    )


def classify_close(exc: ConnectionClosed) -> _Verdict:
    """Classify a dropped connection by its close frames (see :func:`classify_exception`)."""
    rcvd, sent = exc.rcvd, exc.sent
    if rcvd is None:
        if sent is not None and sent.code == 1011 and "ping" in sent.reason:
            return _Verdict("ping_timeout", True)
        if sent is not None and sent.code == CLOSE_TOO_BIG:
            return _Verdict(
                "too_big",
                False,
                ClientError(f"server sent a message larger than max_message_bytes ({sent.reason})"),
            )
        return _Verdict("closed_abnormally", True)  # 1006: TCP dropped without a close frame
    code = rcvd.code
    if code == CLOSE_POLICY:
        return _Verdict(
            "policy", False, AuthError(f"server closed the connection with 1008: {rcvd.reason}")
        )
    if code == 1000 or code in RETRYABLE_CLOSE_CODES:
        return _Verdict(f"close_{code}", True)
    return _Verdict(
        f"close_{code}",
        False,
        ClientError(f"server closed the connection with code {code}: {rcvd.reason}"),
    )


# --------------------------------------------------------------------------- wire metering


class _Meter:
    """Per-connection byte counters filled from inside ``websockets``.

    ``in_sizes``/``out_sizes`` get one entry per data message: the sum of its frames' payload
    sizes on the wire (compressed when permessage-deflate is on).  ``tcp_in``/``tcp_out`` count
    every byte the TCP transport carried (handshake, frame headers and control frames included).
    """

    __slots__ = ("_acc_in", "_acc_out", "deflate", "in_sizes", "out_sizes", "tcp_in", "tcp_out")

    def __init__(self) -> None:
        self.deflate = False  # permessage-deflate negotiated
        self.in_sizes: deque[int] = deque()
        self.out_sizes: deque[int] = deque()
        self.tcp_in = 0
        self.tcp_out = 0
        self._acc_in = 0
        self._acc_out = 0

    def frame_in(self, frame: Frame) -> None:
        if frame.opcode in CTRL_OPCODES:
            return
        self._acc_in += len(frame.data)
        if frame.fin:
            self.in_sizes.append(self._acc_in)
            self._acc_in = 0

    def frame_out(self, frame: Frame) -> None:
        if frame.opcode in CTRL_OPCODES:
            return
        self._acc_out += len(frame.data)
        if frame.fin:
            self.out_sizes.append(self._acc_out)
            self._acc_out = 0


class _MeteredDeflate(PerMessageDeflate):
    """permessage-deflate that reports compressed frame sizes to a :class:`_Meter`."""

    meter: _Meter

    def decode(self, frame: Frame, *, max_size: int | None = None) -> Frame:
        self.meter.frame_in(frame)
        return super().decode(frame, max_size=max_size)

    def encode(self, frame: Frame) -> Frame:
        out = super().encode(frame)
        self.meter.frame_out(out)
        return out


class _MeteredDeflateFactory(ClientPerMessageDeflateFactory):
    def __init__(self, meter: _Meter) -> None:
        # websockets' default client settings (enable_client_permessage_deflate).
        super().__init__(client_max_window_bits=True, compress_settings={"memLevel": 5})
        self.meter = meter

    def process_response_params(self, params: Any, accepted_extensions: Any) -> PerMessageDeflate:
        ext = super().process_response_params(params, accepted_extensions)
        ext.__class__ = _MeteredDeflate
        cast(_MeteredDeflate, ext).meter = self.meter
        self.meter.deflate = True
        return ext


def _metered_connection(meter: _Meter) -> Callable[..., ClientConnection]:
    class MeteredConnection(ClientConnection):
        def __init__(self, protocol: Any, **kwargs: Any) -> None:
            super().__init__(protocol, **kwargs)
            original = protocol.data_to_send

            def data_to_send() -> list[bytes]:
                chunks: list[bytes] = original()
                for chunk in chunks:
                    meter.tcp_out += len(chunk)
                return chunks

            protocol.data_to_send = data_to_send

        def data_received(self, data: bytes) -> None:
            meter.tcp_in += len(data)
            super().data_received(data)

    return MeteredConnection


# --------------------------------------------------------------------------- URL helpers


def normalize_url(url: Any) -> str:
    """Accept ``ws(s)://``, ``http(s)://`` (mapped to ``ws(s)://``) or an object with ``.url``
    (a server); a bare ``host:port`` or a URL without path gets ``/stream``."""
    if not isinstance(url, str):
        inner = getattr(url, "url", None)
        if not isinstance(inner, str):
            raise ClientError(f"invalid URL: expected a string, got {type(url).__name__}")
        url = inner
    text = url.strip()
    if "://" not in text:
        text = "ws://" + text
    try:
        parts = urllib.parse.urlsplit(text)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme.lower(), parts.scheme.lower())
        path = parts.path if parts.path not in ("", "/") else "/stream"
        text = urllib.parse.urlunsplit((scheme, parts.netloc, path, parts.query, ""))
        parse_uri(text)
        # urlsplit and websockets take any text as a host ("not a url" became a client
        # retrying DNS lookups forever)
        _check_host(parts.hostname or "")
    except (InvalidURI, ValueError) as exc:  # ValueError: a bad port, host or bracketed host
        raise ClientError(f"invalid URL {url!r}: {exc}") from None
    return text


_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def _check_host(host: str) -> None:
    """``host`` (as urlsplit gives it: no brackets) must be a DNS name (IDNA, a trailing dot
    and ``_`` allowed), an IPv4 address or an IPv6 address with an optional zone; else
    ``ValueError``."""
    bad = ValueError(f"{host!r} is not a host name or address")
    if ":" in host:  # only inside brackets: IPv6
        addr, _, zone = host.partition("%")
        try:
            ipaddress.IPv6Address(addr)
        except ValueError:
            raise bad from None
        if zone and not re.fullmatch(r"[\w.~-]+", urllib.parse.unquote(zone)):
            raise bad
        return
    name = urllib.parse.unquote(host).rstrip(".")
    if name and all(c.isdigit() or c == "." for c in name):  # digits and dots: IPv4 only
        try:
            ipaddress.IPv4Address(name)
        except ValueError:
            raise bad from None
        return
    try:
        ascii_name = name.encode("idna").decode("ascii")  # checks label lengths, empty labels
    except UnicodeError:
        raise bad from None
    if not ascii_name or len(ascii_name) > 253:
        raise bad
    if not all(_LABEL.fullmatch(label) for label in ascii_name.split(".")):
        raise bad


def _is_loopback_url(url: str) -> bool:
    """True when ``url``'s host is a loopback address or ``localhost``."""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k not in params] + list(params.items())
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _redact(url: str) -> str:
    """The URL without a ``token=`` query value (never logged)."""
    parts = urllib.parse.urlsplit(url)
    if "token=" not in parts.query:
        return url
    query = [
        (k, "***" if k == "token" else v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


_SECRET_PATTERNS = (
    re.compile(r"(?i)(\btoken=)[^&\s#'\"]+"),  # a ?token= query value
    re.compile(r"(?i)(\bbearer\s+)[^\s'\"]+"),  # an Authorization: Bearer value
)


def _token_secrets(url: str, token: str | None) -> tuple[str, ...]:
    """The literal secrets to mask: ``token`` and any ``token=`` query value of ``url``, each
    also in its URL-encoded forms (longest first, so no fragment of one survives)."""
    values = [token] if token else []
    query = urllib.parse.urlsplit(url).query
    values += [v for k, v in urllib.parse.parse_qsl(query, keep_blank_values=True) if k == "token"]
    out = set()
    for v in values:
        if v:
            out |= {v, urllib.parse.quote(v, safe=""), urllib.parse.quote_plus(v)}
    return tuple(sorted(out, key=len, reverse=True))


def _mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret and every ``token=``/``Bearer`` value replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(r"\g<1>***", text)
    return text


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:  # not subscriptable at runtime before Python 3.11
    _LoggerAdapter = logging.LoggerAdapter


class _RedactingLogger(_LoggerAdapter):
    """The logger handed to ``websockets.connect``: masks the client's token everywhere.

    ``websockets`` logs the request line (``GET /stream?token=...``) and every header
    (``Authorization: Bearer ...``) at DEBUG, and exceptions with tracebacks at ERROR.  Each
    record is rendered here (message % args, plus the traceback when ``exc_info`` is given),
    masked with :func:`_mask_secrets`, and passed on as a plain message to the wrapped logger
    (``websockets.client`` by default, so handlers and levels configured for it still apply).
    Nothing is rendered for a disabled level, so it costs nothing when DEBUG is off.
    """

    def __init__(self, logger: logging.Logger, secrets: tuple[str, ...]) -> None:
        super().__init__(logger, {})
        self.secrets = secrets

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return msg, kwargs  # keep the caller's ``extra`` (websockets adds ``websocket``)

    def log(  # type: ignore[override]
        self,
        level: int,
        msg: object,
        *args: object,
        exc_info: Any = None,
        stack_info: bool = False,
        stacklevel: int = 1,
        extra: Any = None,
    ) -> None:
        if not self.isEnabledFor(level):
            return
        try:
            fmt_args: Any = args
            if len(args) == 1 and isinstance(args[0], dict) and args[0]:
                fmt_args = args[0]
            text = str(msg) % fmt_args if args else str(msg)
        except Exception:  # a malformed format must not raise into websockets
            text = f"{msg} {args!r}"
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
            if exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*exc_info)).rstrip()
        self.logger.log(
            level,
            "%s",
            _mask_secrets(text, self.secrets),
            stack_info=stack_info,
            stacklevel=stacklevel + 1,
            extra=extra,
        )


# --------------------------------------------------------------------------- the client


class Client:
    """A reconnecting subscriber; create it with :func:`connect`.

    Attributes: ``url``, ``frame`` (:class:`EventFrame`), ``state``, ``traffic``
    (:class:`~wsnotebook._traffic.TrafficLog`), ``error`` (the terminal error once it stopped
    for a non-retryable reason, else ``None``).  Thread-safe; all I/O runs on the shared
    background loop.
    """

    def __init__(
        self,
        url: Any,
        *,
        frame: EventFrame | None = None,
        max_rows: int = 1_000_000,
        token: str | None = None,
        batch: int | str | None = "auto",
        interval_ms: float | None = None,
        compression: bool | str = "auto",
        since: int | None = None,
        backoff_base: float = 0.1,
        backoff_factor: float = 2.0,
        backoff_cap: float = 10.0,
        max_attempts: int | None = None,
        stable_after: float = 5.0,
        ping_interval: float | None = 5.0,
        ping_timeout: float | None = 10.0,
        open_timeout: float = 10.0,
        close_timeout: float = 2.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        traffic_size: int = 100_000,
        ssl: ssl_module.SSLContext | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.url = normalize_url(url)
        _check_options(
            batch=batch,
            interval_ms=interval_ms,
            since=since,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_timeout=open_timeout,
            close_timeout=close_timeout,
            max_message_bytes=max_message_bytes,
        )
        if frame is not None and not isinstance(frame, EventFrame):
            raise ConfigError(f"frame must be an EventFrame, got {type(frame).__name__}")
        self.frame: EventFrame = frame if frame is not None else EventFrame(max_rows=max_rows)
        self.traffic = TrafficLog(size=traffic_size)
        self._token = token
        # Masks the token in the websockets library's own log (request line, headers, errors).
        self._ws_logger = _RedactingLogger(
            logging.getLogger("websockets.client"), _token_secrets(self.url, token)
        )
        self._batch = batch
        self._interval_ms = interval_ms
        if compression not in (True, False, "auto"):
            raise ConfigError(f"compression must be True, False or 'auto', got {compression!r}")
        self._compression = (
            not _is_loopback_url(self.url) if compression == "auto" else bool(compression)
        )
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._close_timeout = close_timeout
        self._max_message_bytes = max_message_bytes
        self._ssl = ssl
        self._backoff = Backoff(
            base=backoff_base,
            factor=backoff_factor,
            cap=max(backoff_cap, backoff_base),
            max_attempts=max_attempts,
            stable_after=stable_after,
            rng=rng,
            clock=time.monotonic,
        )
        self._resume = ResumeState()
        self._resume.last_id = since
        self._server_seq: int | None = None  # last seq the server announced in this epoch
        # The server's last id when it stopped gracefully (heartbeat with "final": true): with
        # it a new-epoch gap has a known end, and a restart that lost nothing records no gap.
        self._final_seq: int | None = None
        self._pending: list[Event] = []  # live events received but not yet in the frame
        self._flush_scheduled = False
        # Columnar fast path for ``batch`` messages: only from a wsnotebook server (decided per
        # connection by its handshake header), whose events are compact orjson output, so the
        # payload text it keeps as sent is what the dict path would store.
        self._columnar = True

        self._state: State = "connecting"
        self.error: WsnError | None = None
        self._cond = threading.Condition()
        self._closing = False
        self._ws: ClientConnection | None = None
        self._meter: _Meter | None = None
        self._task: asyncio.Task[None] | None = None
        self._future: concurrent.futures.Future[None] | None = None

        # metrics (written on the loop thread only)
        self.connects = 0
        self.attempts = 0
        self.errors: dict[str, int] = {}  # failures by kind (see classify_exception)
        self._errors_lock = threading.Lock()
        self.events = 0
        self.messages = 0
        self.decode_failures = 0
        self.invalid_events = 0
        self.unknown_messages = 0
        self.server_errors = 0
        self.duplicates_skipped = 0
        self.gaps = 0
        self.gaps_open_ended = 0  # gaps whose end the client cannot know (to_id == -1)
        self.gap_events_at_least = 0  # sum of the gaps' known lower bounds of lost events
        self.last_rtt_ms: float | None = None
        self.last_disconnect: str | None = None
        #: The most recent backoff delays (seconds), newest last (at most 100).
        self.delays: deque[float] = deque(maxlen=100)
        self._tcp_in = 0
        self._tcp_out = 0
        self._started = time.monotonic()
        self._opened_at: float | None = None
        self._rate = RateMeter(window=10.0, clock=time.monotonic)
        self._latency = LatencyStats(10_000)  # producer -> client ms, live events only
        self._reconnect_rate = RateMeter(window=60.0, clock=time.monotonic)

    # ------------------------------------------------------------------ public API

    @property
    def state(self) -> State:
        """``"connecting"`` (first attempt), ``"open"``, ``"reconnecting"`` or ``"closed"``."""
        return self._state

    @property
    def reconnects(self) -> int:
        """Successful connections after the first one."""
        return max(0, self.connects - 1)

    @property
    def closed(self) -> bool:
        return self._state == "closed"

    def wait_for(self, n: int, timeout: float | None = 10.0) -> bool:
        """Block the calling thread until ``frame.total`` (rows ever added) reaches ``n``.

        Returns True when reached, False when the client closed first (see ``.error``); raises
        :class:`TimeoutError` after ``timeout`` seconds (``None``: no limit).  Must not be called
        from the background loop thread (raises RuntimeError).
        """
        return self._wait(lambda: self.frame.total >= n, timeout, f"{n} events")

    def wait_state(self, state: str, timeout: float | None = 10.0) -> bool:
        """Block until ``state`` is reached.  True when reached; False when the client closed
        instead; :class:`TimeoutError` after ``timeout`` seconds."""
        if state not in STATES:
            raise ConfigError(f"state must be one of {STATES}, got {state!r}")
        return self._wait(lambda: self._state == state, timeout, f"state {state!r}")

    def _wait(self, pred: Callable[[], bool], timeout: float | None, what: str) -> bool:
        if _loop.in_loop_thread():
            raise RuntimeError("wsnotebook: blocking wait called from the background loop thread")
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if pred():
                    return True
                if self._state == "closed":
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(
                        f"wsnotebook client: {what} not reached within {timeout} s "
                        f"(state {self._state}, {self.frame.total} events)"
                    )
                # Wake up at least every 0.25 s: the frame may be fed by others too.
                self._cond.wait(0.25 if remaining is None else min(remaining, 0.25))

    async def wait_for_async(self, n: int, timeout: float | None = 10.0) -> bool:
        """:meth:`wait_for` for async code (waits in a worker thread)."""
        return await asyncio.to_thread(self.wait_for, n, timeout)

    def publish(self, events: Event | list[Event], timeout: float = 10.0) -> None:
        """Send ``{"type":"publish","data":...}`` (the server ingests it like ``POST /events``).

        Validates locally first (:class:`~wsnotebook.errors.EventValidationError`); raises
        :class:`~wsnotebook.errors.ConnectionClosedError` when not open.  Rejections by the
        server arrive asynchronously as ``error`` messages (counted in ``metrics()``).
        """
        validate_events(events)
        data = encode_json({"type": "publish", "data": events})
        if _loop.in_loop_thread():
            raise RuntimeError("use 'await client.publish_async(...)' on the background loop")
        _loop.run(self._send(data, len(events) if isinstance(events, list) else 1), timeout)

    async def publish_async(self, events: Event | list[Event]) -> None:
        validate_events(events)
        data = encode_json({"type": "publish", "data": events})
        n = len(events) if isinstance(events, list) else 1
        loop = _loop.get_loop()
        if asyncio.get_running_loop() is loop:
            await self._send(data, n)
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._send(data, n), loop))

    async def _send(self, data: bytes, n_events: int) -> None:
        ws = self._ws
        if ws is None or self._state != "open":
            raise ConnectionClosedError(f"client is {self._state}; cannot publish")
        meter = self._meter
        await ws.send(data, text=True)
        wire = meter.out_sizes.popleft() if meter is not None and meter.out_sizes else len(data)
        self.traffic.record("out", "publish", wire, decoded_bytes=len(data), n_events=n_events)

    def close(self, timeout: float = 5.0) -> None:
        """Stop reconnecting, close the connection (code 1000) and wait up to ``timeout`` s.

        Idempotent; safe from any thread (from the loop thread it does not wait).
        """
        self._closing = True
        task = self._task
        loop = _loop.get_loop()
        if task is not None and not task.done():
            loop.call_soon_threadsafe(task.cancel)
        fut = self._future
        if fut is not None and not _loop.in_loop_thread():
            try:
                fut.result(timeout)
            except (concurrent.futures.CancelledError, concurrent.futures.TimeoutError):
                pass
            except Exception:  # the run loop never raises, but never let close() fail
                log.debug("client run ended with an error", exc_info=True)
        if fut is None or fut.done():
            self._set_state("closed")
        _unregister(self)

    async def aclose(self) -> None:
        """:meth:`close` for async code."""
        self._closing = True
        task = self._task
        if task is None:
            self._set_state("closed")
            return
        loop = _loop.get_loop()
        if asyncio.get_running_loop() is loop:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            _unregister(self)
        else:
            await asyncio.to_thread(self.close)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def metrics(self) -> dict[str, Any]:
        """A snapshot of counters and gauges (see ``docs/client.md`` for each key)."""
        meter = self._meter
        tcp_in = self._tcp_in + (meter.tcp_in if meter is not None else 0)
        tcp_out = self._tcp_out + (meter.tcp_out if meter is not None else 0)
        traffic = self.traffic.totals()  # O(1): stats() would walk 10 s of entries per call
        with self._errors_lock:
            errors = dict(self.errors)
        tin, tout = traffic["in"], traffic["out"]
        now = time.monotonic()
        return {
            "url": _redact(self.url),
            "state": self._state,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "reconnects_per_min": self._reconnect_rate.rate() * 60.0,
            "failed_attempts": self.attempts,
            "backoff_attempts": self._backoff.attempts,
            "last_delay_s": self.delays[-1] if self.delays else None,
            "events": self.events,
            "events_per_s": self._rate.rate(),
            "messages": self.messages,
            "errors": errors,
            "errors_total": sum(errors.values()),
            "decode_failures": self.decode_failures,
            "invalid_events": self.invalid_events,
            "unknown_messages": self.unknown_messages,
            "server_errors": self.server_errors,
            "duplicates_skipped": self.duplicates_skipped,
            "gaps": self.gaps,
            "gaps_open_ended": self.gaps_open_ended,
            "gap_events_at_least": self.gap_events_at_least,
            "epoch": self._resume.epoch,
            "last_id": self._resume.last_id,
            "server_seq": self._server_seq,
            "last_rtt_ms": self.last_rtt_ms,
            "latency_ms": self._latency.summary((0.5, 0.9, 0.99)),
            "bytes_in_wire": tin["bytes"],
            "bytes_in_decoded": tin["decoded_bytes"],
            "bytes_out_wire": tout["bytes"],
            "compression_ratio": tin["compression_ratio"],
            "deflate": meter.deflate if meter is not None else None,
            "tcp_bytes_in": tcp_in,
            "tcp_bytes_out": tcp_out,
            "frame_rows": len(self.frame),
            "uptime_s": now - self._started,
            "connected_for_s": now - self._opened_at if self._opened_at is not None else None,
            "last_disconnect": self.last_disconnect,
            "error": repr(self.error) if self.error is not None else None,
        }

    def __repr__(self) -> str:
        return (
            f"<wsnotebook.Client {_redact(self.url)} state={self._state} "
            f"events={self.events} reconnects={self.reconnects}>"
        )

    # ------------------------------------------------------------------ lifecycle (loop thread)

    def _start_on_loop(self) -> None:
        """Create the run task; must be called on the background loop."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"wsn-client {self}")

    def _set_state(self, state: State) -> None:
        with self._cond:
            if self._state == "closed":
                return
            self._state = state
            self._cond.notify_all()

    def _count(self, kind: str, n: int = 1) -> None:
        with self._errors_lock:
            self.errors[kind] = self.errors.get(kind, 0) + n

    def _stop(self, error: WsnError | None) -> None:
        if error is not None and self.error is None:
            self.error = error
            log.error("wsnotebook client %s stopped: %s", _redact(self.url), error)
        self._set_state("closed")

    def _query(self) -> dict[str, str]:
        params = {"ext": "1"}
        since = self._resume.since()
        if since is not None:
            params["since"] = str(since)
            if self._resume.epoch is not None:
                params["epoch"] = self._resume.epoch
        if self._batch not in (None, 0):
            params["batch"] = str(self._batch)
        if self._interval_ms is not None:
            params["interval_ms"] = str(int(self._interval_ms))
        return params

    async def _run(self) -> None:
        try:
            while not self._closing:
                verdict = await self._attempt()
                if self._closing:
                    break
                if verdict.kind != "ok":
                    self._count(verdict.kind)
                if not verdict.retry:
                    self._stop(verdict.error)
                    return
                if self._backoff.exhausted():
                    self._stop(
                        ClientError(
                            f"gave up after {self._backoff.attempts} retries; "
                            f"last failure: {verdict.kind}"
                        )
                    )
                    return
                delay = self._backoff.next_delay()
                self.delays.append(delay)
                self._set_state("reconnecting")
                log.info(
                    "wsnotebook client %s: %s; reconnecting in %.3f s",
                    _redact(self.url),
                    verdict.kind,
                    delay,
                )
                await asyncio.sleep(delay)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # never raise into the loop / kernel
            log.exception("wsnotebook client %s: unexpected error", _redact(self.url))
            self._count("internal")
            self._stop(ClientError(f"internal error: {type(exc).__name__}: {exc}"))
        finally:
            self._flush()
            ws = self._ws
            if ws is not None:
                self._ws = None
                try:
                    await asyncio.wait_for(ws.close(), self._close_timeout + 0.5)
                except BaseException:
                    pass
            self._retire_meter()
            self._set_state("closed")
            _unregister(self)

    def _retire_meter(self) -> None:
        meter = self._meter
        if meter is not None:
            self._tcp_in += meter.tcp_in
            self._tcp_out += meter.tcp_out
            self._meter = None

    async def _attempt(self) -> _Verdict:
        """One connection: open, consume until it drops.  Returns what happened."""
        meter = _Meter()
        headers = {"User-Agent": "wsnotebook-client/0.1"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token}"
        url = _with_query(self.url, self._query())
        # ssl=None would make websockets refuse a wss:// URL; leaving it out gives the default
        # context (system trust store, hostname checked).
        tls: dict[str, Any] = {} if self._ssl is None else {"ssl": self._ssl}
        try:
            ws = await ws_connect(
                url,
                additional_headers=headers,
                user_agent_header=None,
                compression=None,
                extensions=[_MeteredDeflateFactory(meter)] if self._compression else None,
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                close_timeout=self._close_timeout,
                max_size=self._max_message_bytes,
                max_queue=64,
                create_connection=cast(Any, _metered_connection(meter)),
                logger=self._ws_logger,
                **tls,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.attempts += 1
            self._tcp_in += meter.tcp_in
            self._tcp_out += meter.tcp_out
            verdict = classify_exception(exc)
            self.last_disconnect = f"{verdict.kind}: {exc}"
            log.debug("connect to %s failed: %r", _redact(self.url), exc)
            return verdict
        self._ws, self._meter = ws, meter
        response = getattr(ws, "response", None)
        self._columnar = response is not None and WSNOTEBOOK_HEADER in response.headers
        self.connects += 1
        if self.connects > 1:
            self._reconnect_rate.add()
        self._backoff.connected()
        self._opened_at = time.monotonic()
        self._set_state("open")
        log.info("wsnotebook client connected to %s", _redact(self.url))
        try:
            await self._consume(ws, meter)
            verdict = _Verdict("closed_abnormally", True)  # not reached: recv raises
        except ConnectionClosed as exc:
            verdict = classify_close(exc)
            self.last_disconnect = f"{verdict.kind}: {exc}"
        finally:
            self._flush()
            self._backoff.disconnected()
            self._opened_at = None
            if self._ws is ws:
                self._ws = None
            self._retire_meter()
        return verdict

    async def _consume(self, ws: ClientConnection, meter: _Meter) -> None:
        while True:
            raw = await ws.recv(decode=False)
            if ws.latency:
                self.last_rtt_ms = ws.latency * 1000.0
            wire = meter.in_sizes.popleft() if meter.in_sizes else len(raw)
            try:
                self._handle(raw, wire)
            except Exception:  # a bug or a frame error must not kill the connection
                self._count("internal")
                log.exception("wsnotebook client: error while handling a message")
            # Over the kernel CPU budget, yield the GIL to the kernel (no-op without a budget).
            _loop.budget_checkpoint()

    # ------------------------------------------------------------------ message handling

    def _handle(self, raw: bytes, wire: int) -> None:
        received = now_ms()
        self.messages += 1
        if (
            self._columnar
            and len(raw) >= _COLUMNS_MIN_BYTES
            and type(raw) is bytes
            and raw.startswith(BATCH_PREFIX)
        ):
            # The cyclic GC is paused for the batch: it builds and frees thousands of tuples,
            # which would otherwise trigger ~1.5 young collections per batch (~40% slower).
            with gc_paused():
                cols = decode_batch_columns(raw)  # None: take the dict path below
                if cols is not None and self._append_columns(cols, received):
                    self.traffic.record(
                        "in", "batch", wire, decoded_bytes=len(raw), n_events=cols.n
                    )
                    return
        try:
            msg = parse_server_message(raw)
        except WsnError as exc:
            self.decode_failures += 1
            self._count("decode")
            self.traffic.record("in", "invalid", wire, decoded_bytes=len(raw))
            log.warning("wsnotebook client: undecodable message dropped: %s", exc)
            return
        n_events = len(msg.events)
        self.traffic.record(
            "in", msg.type, wire, decoded_bytes=len(raw), n_events=n_events + msg.invalid
        )
        if msg.invalid:
            self.invalid_events += msg.invalid
            self._count("invalid_event", msg.invalid)
            log.warning("wsnotebook client: %d invalid event(s) dropped", msg.invalid)
        kind = msg.type
        if kind == "initial":
            self._on_initial(msg, received)
        elif kind in ("event", "batch"):
            self._append(msg.events, received)
        elif kind == "heartbeat":
            self._on_heartbeat(raw)
        elif kind == "gap":
            self._on_gap(msg.data)
        elif kind == "error":
            self.server_errors += 1
            self._count("server_error")
            log.warning("wsnotebook client: server reported an error: %s", msg.data)
        else:
            self.unknown_messages += 1
            self._count("unknown_type")
            log.debug("wsnotebook client: unknown message type %r ignored", kind)

    def _append(self, events: list[Event], received: float) -> None:
        """Stamp and queue live events; they reach the frame in one ``extend`` per burst.

        Messages already queued in the connection are handled without yielding to the loop, so
        the flush scheduled with ``call_soon`` runs once the burst is drained (one frame append
        instead of one per message), or at once after ``_FLUSH_EVENTS`` events.
        """
        if not events:
            return
        # Validated events: ``timestamp`` is a number or None.  C-level passes, no per-event
        # Python frame.
        if len(events) == 1:
            ev = events[0]
            ev["client_received"] = received
            ts = ev.get("timestamp")
            if ts is not None:
                self._latency.add(received - ts)
        else:
            any(map(operator.setitem, events, repeat("client_received"), repeat(received)))
            self._latency.extend(
                [received - t for t in map(dict.get, events, repeat("timestamp")) if t is not None]
            )
        self._resume.on_events(events)
        self._pending.extend(events)
        if len(self._pending) >= _FLUSH_EVENTS:
            self._flush()
            return
        if not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # called outside the loop (unit tests): append now
                self._flush()
                return
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _append_columns(self, cols: EventColumns, received: float) -> bool:
        """The fast path of :meth:`_append` for a batch decoded into columns (see
        :mod:`wsnotebook._columns`): stamped and appended at once, after anything queued.

        False when the frame refused the batch (a value it cannot store, e.g. an id beyond
        int64): nothing of it was added, and the caller takes the dict path, which keeps every
        event the frame can store and counts the others as invalid."""
        self._flush()  # keep arrival order: queued per-event messages first
        cols.client_received = np.full(cols.n, received)
        try:
            added = self.frame.extend_columns(cols)
        except Exception as exc:
            log.debug("wsnotebook client: columnar append refused (%r); dict path", exc)
            return False
        latency = received - cols.timestamp
        self._latency.extend(latency[~np.isnan(latency)].tolist())
        self._resume.on_ids(cols.id)
        self._appended(cols.n, added)
        return True

    def _flush(self) -> None:
        """Move queued events into the frame (also called before gaps, resets and drops)."""
        self._flush_scheduled = False
        if not self._pending:
            return
        events, self._pending = self._pending, []
        n = len(events)
        try:
            added = self.frame.extend(events)
        except Exception:
            # One event the frame cannot store (valid on the wire, e.g. an id beyond int64)
            # must not cost the others: append one by one, drop and count only the bad ones.
            added, bad = 0, 0
            for ev in events:
                try:
                    added += self.frame.extend([ev])
                except Exception as exc:
                    bad += 1
                    log.warning("wsnotebook client: event id=%r dropped: %s", ev.get("id"), exc)
            self.invalid_events += bad
            self._count("invalid_event", bad)
            n -= bad
        self._appended(n, added)

    def _appended(self, n: int, added: int) -> None:
        """Count ``added`` of ``n`` events as in the frame (the rest were duplicates)."""
        if n > added:
            self.duplicates_skipped += n - added
        self.events += added
        self._rate.add(added)
        with self._cond:
            self._cond.notify_all()

    def _mark_gap(self, gap: Gap, *, at_least: int | None = None) -> None:
        """Record ``gap`` in the frame and count it.

        ``at_least``: the known lower bound of lost events; by default the gap's size when its
        end is known (``to_id >= from_id``), else 0 (open-ended: the loss may be empty).
        """
        self._flush()
        self.gaps += 1
        if gap.to_id < 0:
            self.gaps_open_ended += 1
        if at_least is None:
            at_least = gap.to_id - gap.from_id + 1 if gap.to_id >= gap.from_id else 0
        self.gap_events_at_least += max(0, at_least)
        log.warning(
            "wsnotebook client: events %d..%s lost (%s)",
            gap.from_id,
            gap.to_id if gap.to_id >= 0 else "?",
            gap.reason,
        )
        self.frame.mark_gap(gap.from_id, gap.to_id, gap.reason)

    def _mark_new_epoch_gap(
        self, from_id: int, old_seq: int | None, epoch: str | None, final_seq: int | None = None
    ) -> None:
        """The old (in-memory) epoch is gone: events ``from_id..`` of it can never be replayed.

        When the old server stopped gracefully it announced its last id (``final_seq``, from a
        heartbeat with ``"final": true``): the loss is then exactly ``from_id..final_seq`` — and
        nothing at all when ``final_seq < from_id``.  Otherwise (a crash, or the final heartbeat
        never reached us) the client only knows a lower bound: the last ``seq`` it heard from
        the old server (``initial``/heartbeat).  The old server may have accepted more after
        that heartbeat (and a heartbeat can overtake queued events), so the end is never
        claimed: the gap is ``from_id .. -1`` and its reason states the bound, e.g. ``"new
        epoch B: at least 10 events lost (last seq heard 20); end unknown"``.
        """
        if final_seq is not None:
            if final_seq >= from_id:
                n = final_seq - from_id + 1
                reason = f"new epoch {epoch}: {n} events lost (old server's final id {final_seq})"
                self._mark_gap(Gap(from_id, final_seq, reason), at_least=n)
            return
        known = old_seq - from_id + 1 if old_seq is not None and old_seq >= from_id else 0
        heard = f"last seq heard {old_seq}" if old_seq is not None else "no seq heard"
        if known:
            reason = f"new epoch {epoch}: at least {known} events lost ({heard}); end unknown"
        else:
            reason = (
                f"new epoch {epoch}: events after id {from_id - 1} lost, if any ({heard}); "
                "end unknown"
            )
        self._mark_gap(Gap(from_id, -1, reason), at_least=known)

    def _on_initial(self, msg: ServerMessage, received: float) -> None:
        self._flush()
        resume = self._resume
        old_epoch, old_last, old_seq = resume.epoch, resume.last_id, self._server_seq
        final_seq, self._final_seq = self._final_seq, None
        ids = [e["id"] for e in msg.events]
        if msg.epoch is None:
            # Seed-style server: no epoch.  Ids going backwards means it restarted empty.
            if old_last is not None and (not ids or max(ids) < old_last):
                self._mark_gap(Gap(old_last + 1, -1, "server restarted (ids went back)"))
                self.frame.reset_ids()
                resume.last_id = None
            elif old_last is not None and ids and min(ids) > old_last + 1:
                self._mark_gap(Gap(old_last + 1, min(ids) - 1, "not replayed by the server"))
            resume.on_initial(msg)
        else:
            new_epoch = old_epoch is not None and msg.epoch != old_epoch
            gaps = resume.on_initial(msg)
            if new_epoch:
                self.frame.reset_ids()
            for gap in gaps:
                if gap.to_id == -1 and gap.reason == "new epoch":
                    self._mark_new_epoch_gap(gap.from_id, old_seq, msg.epoch, final_seq)
                else:
                    self._mark_gap(gap)
            self._server_seq = msg.seq
        if msg.events:
            for ev in msg.events:
                ev["client_received"] = received
            added = self.frame.extend(msg.events)
            self.duplicates_skipped += len(msg.events) - added
            self.events += added
            self._rate.add(added)
        with self._cond:
            self._cond.notify_all()

    def _on_heartbeat(self, raw: bytes) -> None:
        try:
            obj = decode_json(raw)
        except WsnError:  # pragma: no cover - parse_server_message decoded it already
            return
        seq, epoch = obj.get("seq"), obj.get("epoch")
        if (
            isinstance(seq, int)
            and not isinstance(seq, bool)
            and (epoch is None or epoch == self._resume.epoch)
            and (self._server_seq is None or seq > self._server_seq)
        ):
            self._server_seq = seq
        if (
            obj.get("final") is True
            and isinstance(seq, int)
            and not isinstance(seq, bool)
            and (epoch is None or epoch == self._resume.epoch)
        ):
            self._final_seq = seq

    def _on_gap(self, data: Any) -> None:
        if not isinstance(data, dict):
            self.decode_failures += 1
            self._count("decode")
            return
        a, b = data.get("from_id"), data.get("to_id")
        if not (isinstance(a, int) and isinstance(b, int)) or isinstance(a, bool):
            self.decode_failures += 1
            self._count("decode")
            log.warning("wsnotebook client: malformed gap message ignored: %r", data)
            return
        epoch = data.get("epoch")
        if epoch is not None and self._resume.epoch is not None and epoch != self._resume.epoch:
            log.debug("wsnotebook client: gap for another epoch ignored")
            return
        self._mark_gap(Gap(a, b, str(data.get("reason") or "server gap")))
        self._resume.on_gap(a, b)


def _check_options(
    *,
    batch: Any,
    interval_ms: Any,
    since: Any,
    ping_interval: Any,
    ping_timeout: Any,
    open_timeout: Any,
    close_timeout: Any,
    max_message_bytes: Any,
) -> None:
    if not (
        batch is None
        or batch == "auto"
        or (isinstance(batch, int) and not isinstance(batch, bool) and 0 <= batch <= 100_000)
    ):
        raise ConfigError(f"batch must be None, 'auto' or an int in 0..100000, got {batch!r}")
    if interval_ms is not None:
        whole = (isinstance(interval_ms, int) and not isinstance(interval_ms, bool)) or (
            isinstance(interval_ms, float) and interval_ms.is_integer()
        )
        # The server takes whole milliseconds: 12.5 would get a 400 and stop the client.
        if not whole or not 0 <= interval_ms <= 60_000:
            raise ConfigError(
                f"interval_ms must be a whole number in 0..60000, got {interval_ms!r}"
            )
    if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
        raise ConfigError(f"since must be a non-negative int or None, got {since!r}")
    for name, value in (("ping_interval", ping_interval), ("ping_timeout", ping_timeout)):
        if value is not None and not 0 < value <= 3600:
            raise ConfigError(f"{name} must be in (0, 3600] s or None, got {value!r}")
    if not 0 < open_timeout <= 3600:
        raise ConfigError(f"open_timeout must be in (0, 3600] s, got {open_timeout!r}")
    if not 0 < close_timeout <= 60:
        raise ConfigError(f"close_timeout must be in (0, 60] s, got {close_timeout!r}")
    if not 1024 <= max_message_bytes <= 1 << 30:
        raise ConfigError(f"max_message_bytes must be in 1 KiB..1 GiB, got {max_message_bytes!r}")


def _register(client: Client) -> None:
    with _registry_lock:
        _registry.add(client)


def _unregister(client: Client) -> None:
    with _registry_lock:
        _registry.discard(client)


def connect(url: Any, **options: Any) -> Client:
    """Subscribe to a wsnotebook (or seed-style) ``/stream`` and return a :class:`Client` at once.

    ``url``: ``ws://host:port/stream`` (``http://`` is mapped to ``ws://``; a URL without a path
    gets ``/stream``; a server object with ``.url`` works too).  Keyword-only options
    (defaults, bounds):

    * ``frame=None``: the :class:`EventFrame` to feed (default: a new one with ``max_rows``).
    * ``max_rows=1_000_000``: rows kept by the new frame (oldest dropped).
    * ``token=None``: sent as ``Authorization: Bearer <token>``; never logged.
    * ``batch="auto"``: ``"auto"`` (server coalesces when we lag), ``None``/``0`` (one message
      per event) or an int ``1..100000`` (fixed batches); ``interval_ms=None`` (server default
      50 ms; a whole number ``0..60000``) bounds a fixed batch's age.
    * ``compression="auto"``: negotiate permessage-deflate except on loopback (``127.0.0.0/8``,
      ``::1``, ``localhost``), where it saves no time and costs CPU on both ends (at 10k ev/s
      about a quarter of a core here, inside the kernel); ``True``/``False`` force it.
    * ``since=None``: resume after this id on the first connection (``None``: the server's
      initial snapshot of recent events).
    * ``backoff_base=0.1``, ``backoff_factor=2.0``, ``backoff_cap=10.0`` (s): the delay before
      retry ``n`` is uniform in ``[0, min(cap, base*factor**n)]`` (full jitter); the count resets
      after a connection stayed open ``stable_after=5.0`` s.  ``max_attempts=None``: retry
      forever; an int stops after that many consecutive retries (``ClientError``).
    * ``ping_interval=5.0``, ``ping_timeout=10.0`` (s, ``None`` disables): WebSocket keepalive;
      an unanswered ping drops the connection (half-open peer) and reconnects.
    * ``open_timeout=10.0`` (s): TCP + TLS + handshake; ``close_timeout=2.0`` (s).
    * ``max_message_bytes=16 MiB``: larger messages close the connection (fatal, 1009).
    * ``traffic_size=100_000``: entries kept by ``client.traffic`` (``1..10_000_000``).
    * ``ssl=None``: an :class:`ssl.SSLContext` for ``wss://``; ``rng=None``: the backoff's
      :class:`random.Random` (seed it for reproducible delays).

    Raises :class:`~wsnotebook.errors.ClientError` for a malformed URL and
    :class:`~wsnotebook.errors.ConfigError` for an invalid option; every later failure is
    handled in the background (see ``client.state``, ``client.error``, ``client.metrics()``).
    """
    client = Client(url, **options)
    loop = _loop.get_loop()
    if _loop.in_loop_thread():
        client._start_on_loop()
    else:
        ready = concurrent.futures.Future[None]()

        def start() -> None:
            try:
                client._start_on_loop()
                ready.set_result(None)
            except BaseException as exc:  # pragma: no cover - defensive
                ready.set_exception(exc)

        loop.call_soon_threadsafe(start)
        ready.result(10)
    task = client._task
    assert task is not None
    client._future = _task_future(task)
    _register(client)
    return client


def _task_future(task: asyncio.Task[None]) -> concurrent.futures.Future[None]:
    """A concurrent future completed when the loop task ends (for close() from other threads)."""
    fut: concurrent.futures.Future[None] = concurrent.futures.Future()

    def done(t: asyncio.Task[None]) -> None:
        if t.cancelled():
            fut.set_result(None)
        elif t.exception() is not None:
            fut.set_exception(cast(BaseException, t.exception()))
        else:
            fut.set_result(None)

    task.get_loop().call_soon_threadsafe(task.add_done_callback, done)
    return fut


async def connect_async(url: Any, **options: Any) -> Client:
    """:func:`connect` for async code: same options; the client still runs on the shared
    background loop (never on the caller's loop), so it survives the caller's loop."""
    if _loop.in_loop_thread():
        return connect(url, **options)
    return await asyncio.to_thread(connect, url, **options)


def running_clients() -> list[Client]:
    """Clients started by :func:`connect` that are not closed yet."""
    with _registry_lock:
        return [c for c in list(_registry) if c.state != "closed"]


def close_all(timeout: float = 5.0) -> int:
    """Close every running client; returns how many were closed."""
    clients = running_clients()
    for c in clients:
        c.close(timeout)
    return len(clients)


# Close clients at interpreter exit so their peers see a clean close instead of a reset.
_loop.add_shutdown_hook(close_all)
