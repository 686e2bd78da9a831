"""Secret masking: the client's token never reaches a log line, a repr or ``metrics()``.

Owns :func:`redact_url` (a URL's ``token=`` value shown as ``***``), :func:`token_secrets` /
:func:`mask_secrets` (every literal form of the token, plus any ``token=``/``Bearer`` value) and
:class:`RedactingLogger`, the logger handed to ``websockets``, which logs request lines and
headers at DEBUG.  Pure text processing, no I/O beyond passing records on.

Invariants: secrets are replaced longest first, so no fragment of one survives; nothing is
rendered for a disabled level (free when DEBUG is off); a malformed log format never raises
into ``websockets``.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
import urllib.parse
from typing import TYPE_CHECKING, Any

__all__ = ["SECRET_PATTERNS", "RedactingLogger", "mask_secrets", "redact_url", "token_secrets"]


def redact_url(url: str) -> str:
    """The URL without a ``token=`` query value (never logged)."""
    parts = urllib.parse.urlsplit(url)
    if "token=" not in parts.query:
        return url
    query = [
        (k, "***" if k == "token" else v)
        for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


SECRET_PATTERNS = (
    re.compile(r"(?i)(\btoken=)[^&\s#'\"]+"),  # a ?token= query value
    re.compile(r"(?i)(\bbearer\s+)[^\s'\"]+"),  # an Authorization: Bearer value
)


def token_secrets(url: str, token: str | None) -> tuple[str, ...]:
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


def mask_secrets(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every secret and every ``token=``/``Bearer`` value replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(r"\g<1>***", text)
    return text


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:  # not subscriptable at runtime before Python 3.11
    _LoggerAdapter = logging.LoggerAdapter


class RedactingLogger(_LoggerAdapter):
    """The logger handed to ``websockets.connect``: masks the client's token everywhere.

    ``websockets`` logs the request line (``GET /stream?token=...``) and every header
    (``Authorization: Bearer ...``) at DEBUG, and exceptions with tracebacks at ERROR.  Each
    record is rendered here (message % args, plus the traceback when ``exc_info`` is given),
    masked with :func:`mask_secrets`, and passed on as a plain message to the wrapped logger
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
            mask_secrets(text, self.secrets),
            stack_info=stack_info,
            stacklevel=stacklevel + 1,
            extra=extra,
        )
