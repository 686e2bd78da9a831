"""Human-in-the-loop from a client (a mixin of :class:`~.client.Client`): ``pending()`` and
``respond()``.

``pending()`` reads the client's :class:`~wsnotebook.frame.EventFrame`: the questions it
received, in their newest version (updates of a known id replace the row's status, see
docs/protocol.md "Updates"), still pending and not past their deadline.  ``respond()`` POSTs the
seed's answer body to the server the client is connected to (``/events/<id>/respond`` on the
same host and port, ``http``/``https`` for ``ws``/``wss``, with the client's token and TLS
context); the updated event then reaches the frame over the stream like any update.

Errors: the server's refusal is an :class:`~wsnotebook.errors.AnswerError` with its HTTP status
and message (404 unknown, 409 not pending, 400 wrong answer, 413, 501); an unreachable server
a :class:`~wsnotebook.errors.ClientError`.  Bounds: one request waits at most ``timeout``
seconds (default 30; the server itself spends at most 5 s delivering to the agent).
"""

from __future__ import annotations

import json
import ssl as ssl_module
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any, cast

from ..errors import AnswerError, ClientError, ConfigError
from ..events import Event, encode_json
from ..frame import EventFrame
from .options import ClientOptions

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HitlClientMixin", "answer_body", "respond_url"]


def respond_url(stream_url: str, event_id: int) -> str:
    """``http(s)://host:port/events/<id>/respond`` of the server behind ``stream_url``."""
    parts = urllib.parse.urlsplit(stream_url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme)
    if scheme is None:
        raise ConfigError(f"respond: not a ws:// or wss:// URL: {parts.scheme}://...")
    return urllib.parse.urlunsplit((scheme, parts.netloc, f"/events/{event_id}/respond", "", ""))


def answer_body(
    permission: bool | None, response: str | None, choice: str | None, responded_by: str
) -> dict[str, Any]:
    """The seed dashboard's answer body (``respondedBy`` last; ``hookEvent`` is filled in by
    a wsnotebook server)."""
    body: dict[str, Any] = {}
    if permission is not None:
        body["permission"] = permission
    if response is not None:
        body["response"] = response
    if choice is not None:
        body["choice"] = choice
    if not body:
        raise ConfigError("respond: give permission=, response= or choice=")
    body["respondedBy"] = responded_by
    return body


def _token_from(url: str) -> str | None:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("token")
    return values[0] if values else None


class HitlClientMixin:
    """``pending()`` / ``respond()`` for :class:`~.client.Client`."""

    url: str
    frame: EventFrame
    options: ClientOptions

    def pending(self) -> pd.DataFrame:
        """Questions this client received that still wait for an answer, one row each:
        ``id``, ``question``, ``type``, ``choices``, ``asked_at``, ``expires_at``,
        ``source_app``, ``session_id``, ``hook_event_type``, ``summary``, ``response_url``."""
        return self.frame.pending()

    def respond(
        self,
        event_id: int,
        *,
        permission: bool | None = None,
        response: str | None = None,
        choice: str | None = None,
        responded_by: str = "notebook",
        timeout: float = 30.0,
    ) -> Event:
        """Answer question ``event_id`` through the server (``POST /events/<id>/respond``):
        ``permission=True|False``, ``response="text"`` or ``choice="..."``.  Returns the
        updated event the server answered with.  Blocks the calling thread up to ``timeout``
        s; raises AnswerError (the server's status and message) or ClientError."""
        body = answer_body(permission, response, choice, responded_by)
        url = respond_url(self.url, int(event_id))
        headers = {"Content-Type": "application/json"}
        token = self.options.token or _token_from(self.url)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(url, data=encode_json(body), headers=headers, method="POST")
        context: ssl_module.SSLContext | None = self.options.ssl
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
                return cast(Event, json.loads(resp.read()))
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error") or exc.reason
            except Exception:
                message = exc.reason
            raise AnswerError(str(message), status=exc.code, event_id=int(event_id)) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise ClientError(f"respond: cannot reach {url}: {exc}") from None
