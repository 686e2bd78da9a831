"""The client's in-process path: subscribe to a server of this process without a socket.

With ``connect(url)`` (``in_process="auto"``: see
:meth:`~.options.ClientOptions.in_process_for`) or ``in_process=True`` each connection attempt
first asks :func:`wsnotebook.runtime.local.find_endpoint` for a server of this process serving
``url`` (its port, a loopback host, its token).  Found, the attempt subscribes there
(:mod:`wsnotebook.server.local`): the server calls back with the very messages a WebSocket
would carry, and they go to the same :class:`~.sink.MessageSink` (``handle``) — so resume
(``since``/``epoch``), gaps, duplicates, the traffic log and every counter work as over a
socket, minus the framing, the loopback TCP and the ``websockets`` parsing.  Not found (no such
server here, another token, stopping, full), the attempt takes the socket path as usual.

Invariants: one subscription per attempt; it ends when the server closes it (its close code is
classified as a WebSocket close with that code: 1001/1012/1013 retry, resuming with ``since``)
or when the client closes (``LocalLink.close``, no callback); messages are handled on the loop
thread, each followed by the CPU budget's checkpoint, as in the socket's receive loop; a
handler error is counted (``internal``) and logged, never raised into the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from websockets.exceptions import ConnectionClosed
from websockets.frames import Close

from ..runtime import loop as _loop
from ..runtime.local import LocalLink, find_endpoint
from .classify import Verdict, classify_close
from .redact import redact_url

if TYPE_CHECKING:
    from .session import Session

__all__ = ["LocalPath"]

log = logging.getLogger("wsnotebook")


class LocalPath:
    """The in-process attempts of one session, and their counters."""

    def __init__(self) -> None:
        self.connects = 0  # subscriptions opened in-process
        self.messages = 0  # messages received through them
        self.active = False  # is the open connection an in-process one?
        self.link: LocalLink | None = None  # the open in-process subscription

    def metrics(self) -> dict[str, Any]:
        return {"active": self.active, "connects": self.connects, "messages": self.messages}

    async def attempt(self, session: Session) -> Verdict | None:
        """One in-process connection, or ``None`` when ``session.url`` has no endpoint here."""
        endpoint = find_endpoint(session.url, session.options.token)
        if endpoint is None:
            return None
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[int, str]] = loop.create_future()
        sink = session.sink
        handle = session.handle

        def deliver(msg: bytes) -> None:
            self.messages += 1
            try:
                handle(msg, len(msg))
            except Exception:  # a bug must not break the server's broadcast
                session.count("internal")
                log.exception("wsnotebook client: error while handling a message")
            _loop.budget_checkpoint()

        def closed(code: int, reason: str) -> None:
            if not done.done():
                done.set_result((code, reason))

        resume = sink.resume
        link = endpoint.subscribe(deliver, closed, since=resume.since(), epoch=resume.epoch)
        if link is None:
            return None
        sink.columnar = True  # our own server: compact orjson events
        self.connects += 1
        self.active = True
        self.link = link
        session.connects += 1
        if session.connects > 1:
            session.reconnect_rate.add()
        session.backoff.connected()
        session.opened_at = time.monotonic()
        session.set_state("open")
        log.info("wsnotebook client connected in-process to %s", redact_url(session.url))
        try:
            code, reason = await done
        finally:
            link.close()
            self.active = False
            self.link = None
            sink.flush()
            session.backoff.disconnected()
            session.opened_at = None
        verdict = classify_close(ConnectionClosed(Close(code, reason), None))
        session.last_disconnect = f"{verdict.kind}: in-process, {code} {reason}".rstrip()
        return verdict
