"""Human-in-the-loop answers on the server (a mixin of :class:`~.server.Server`).

The seed dashboard's contract: an event carrying ``humanInTheLoop`` is stored and broadcast
with ``humanInTheLoopStatus: {"status": "pending"}`` (:func:`~.hitl_rules.with_pending`, in
the ingest); ``POST /events/<id>/respond`` with ``{response?|permission?|choice?, hookEvent?,
respondedBy?}`` sets ``respondedAt`` (ms), stores the ``responded`` version (a new log entry,
same ``id``, see :mod:`wsnotebook.store.hitl`), opens a WebSocket to the question's
``responseWebSocketUrl`` and sends the answer JSON there (a failure to reach the agent does not
fail the request), broadcasts the updated event and answers 200 with it.  The same from a
notebook: :meth:`HitlMixin.respond`, :meth:`HitlMixin.pending`.

Replies (documented in docs/protocol.md): 404 ``{"error": "Event not found"}`` (unknown id, or
no longer retained); 409 not a question / already answered / timed out / being answered now;
400 bad JSON or an answer that does not fit the question; 413 too large; 501 a store without
updates.  An answer is recorded once: answers to one id are serialised (a second one while the
first is in flight gets 409) and a question that is not pending refuses them (across the servers
of one Redis stream, the store's update script checks that too: :mod:`~wsnotebook.store.redis_hitl`,
AnswerError 409 from ``append_update``).  A question past
its deadline (asked + ``timeout`` s, default 300) is stored as ``timeout`` when answered, and
the answer refused (409).

Safety and bounds: the server connects only to loopback ``responseWebSocketUrl``s unless the
``hitl_hosts`` option names the host (:func:`~.hitl_rules.delivery_refusal`); a refused URL is
not contacted (the answer is still recorded; ``X-Wsnotebook-Delivery: refused``).  One delivery
takes at most :data:`DELIVERY_TIMEOUT_S`.  The outcome is the reply header
``X-Wsnotebook-Delivery`` (``sent`` / ``failed`` / ``refused``) and counted in
``metrics()["hitl"]``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from typing import TYPE_CHECKING, Any, cast

import orjson
from aiohttp import web

from ..errors import AnswerError, LimitExceeded, LoopThreadError, ServerError, WaitTimeout
from ..events import Event, encode_json, now_ms
from ..events.hitl import HITL_FIELD, UPDATE_FIELD, is_pending, status_of
from ..runtime import loop as _loop
from ..runtime.logthrottle import ThrottledLog
from ..store import Store, StoredEvent
from .broadcast import Broadcaster
from .hitl_rules import check_answer, delivery_refusal, responded, timed_out

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DELIVERY_TIMEOUT_S", "HitlMixin"]

log = logging.getLogger("wsnotebook")

#: Longest one delivery of an answer to an agent's WebSocket may take (connect, send, close).
DELIVERY_TIMEOUT_S = 5.0
#: Questions ``pending()`` looks at, at most (the newest).
PENDING_LIMIT = 10_000
JSON = "application/json"


class HitlMixin:
    """HITL for :class:`~.server.Server` (which provides the attributes declared here)."""

    running: bool
    store: Store
    broadcaster: Broadcaster
    max_event_bytes: int
    log_throttle: ThrottledLog
    hitl_hosts: tuple[str, ...]

    if TYPE_CHECKING:

        @property
        def url(self) -> str: ...

        def _reject(self, status: int, message: str, **headers: str) -> web.Response: ...

    def _init_hitl(self, hitl_hosts: tuple[str, ...]) -> None:
        self.hitl_hosts = hitl_hosts
        self._answering: set[int] = set()
        self.hitl_stats = {
            "answered": 0,
            "refused": 0,
            "timed_out": 0,
            "delivered": 0,
            "delivery_failed": 0,
            "delivery_refused": 0,
        }

    def _add_hitl_routes(self, app: web.Application) -> None:
        app.router.add_post("/events/{event_id}/respond", self._post_respond)

    # ---------------------------------------------------------------- the core (loop thread)
    async def answer_async(self, event_id: int, body: Any) -> tuple[Event, str]:
        """Record ``body`` as the answer to question ``event_id``, deliver it to the agent and
        broadcast the updated event.  Returns ``(updated event, delivery outcome)``; raises
        :class:`~wsnotebook.errors.AnswerError` (``.status`` is the HTTP code)."""
        if event_id in self._answering:
            self.hitl_stats["refused"] += 1
            raise AnswerError(f"event {event_id} is being answered", event_id=event_id)
        self._answering.add(event_id)
        try:
            return await self._answer(event_id, body)
        except AnswerError:
            self.hitl_stats["refused"] += 1
            raise
        finally:
            self._answering.discard(event_id)

    async def _answer(self, event_id: int, body: Any) -> tuple[Event, str]:
        if type(self.store).append_update is Store.append_update:
            raise AnswerError(
                f"the {self.store.kind} store cannot record answers", status=501, event_id=event_id
            )
        current = await self.store.latest(event_id)
        if current is None:
            raise AnswerError("Event not found", status=404, event_id=event_id)
        question = current.get(HITL_FIELD)
        if not isinstance(question, dict):
            raise AnswerError(f"event {event_id} is not a question (no humanInTheLoop)")
        state = status_of(current)
        if state == "responded":
            raise AnswerError(f"event {event_id} was already answered", event_id=event_id)
        if state != "pending":
            raise AnswerError(f"event {event_id} is no longer pending ({state})", event_id=event_id)
        answer = check_answer(question, body, event_id)
        now = now_ms()
        current.pop(UPDATE_FIELD, None)
        if not is_pending(current, now):
            self.hitl_stats["timed_out"] += 1
            await self._store_update(event_id, timed_out(current, int(now)))
            raise AnswerError(f"event {event_id} timed out before it was answered")
        response = dict(answer)
        if response.get("hookEvent") is None:
            response["hookEvent"] = current
        response["respondedAt"] = int(now)
        stored = await self._store_update(event_id, responded(current, response, int(now)))
        self.hitl_stats["answered"] += 1
        outcome = await self._deliver(question.get("responseWebSocketUrl"), response, event_id)
        return stored.event, outcome

    async def _store_update(self, event_id: int, event: Event) -> StoredEvent:
        try:
            stored = await self.store.append_update(event_id, event)
        except LimitExceeded as exc:
            raise AnswerError(str(exc), status=413, event_id=event_id) from None
        self.broadcaster.broadcast([stored])
        return stored

    async def _deliver(self, url: Any, response: dict[str, Any], event_id: int) -> str:
        """Send the answer to the agent (``sent`` / ``failed`` / ``refused``); never raises."""
        stats = self.hitl_stats
        reason = delivery_refusal(url, self.hitl_hosts)
        if reason is not None:
            stats["delivery_refused"] += 1
            self.log_throttle.warning(
                "hitl_refused", "wsnotebook: answer to event %d not delivered: %s", event_id, reason
            )
            return "refused"
        text = encode_json(response).decode()
        try:
            await asyncio.wait_for(_send_once(url, text), DELIVERY_TIMEOUT_S)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # unreachable agent, refused handshake, timeout ...
            stats["delivery_failed"] += 1
            self.log_throttle.warning(
                "hitl_failed",
                "wsnotebook: answer to event %d not delivered to %s: %r",
                event_id,
                str(url)[:200],
                exc,
            )
            return "failed"
        stats["delivered"] += 1
        return "sent"

    async def pending_async(self, limit: int = PENDING_LIMIT) -> list[Event]:
        """Questions still waiting for an answer (newest version, not past the deadline),
        oldest first."""
        now = now_ms()
        return [e for e in await self.store.questions(limit) if is_pending(e, now)]

    # ---------------------------------------------------------------- HTTP
    async def _post_respond(self, request: web.Request) -> web.StreamResponse:
        try:
            event_id = int(request.match_info["event_id"])
        except ValueError:
            return self._reject(404, "Event not found")
        length = request.content_length
        if length is not None and length > self.max_event_bytes:
            return self._reject(413, f"body: {length} bytes exceeds the limit")
        body = await request.read()
        if len(body) > self.max_event_bytes:
            return self._reject(413, f"body: {len(body)} bytes exceeds the limit")
        try:
            obj = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return self._reject(400, f"Invalid request: body is not JSON ({exc})")
        try:
            event, outcome = await self.answer_async(event_id, obj)
        except AnswerError as exc:
            return self._reject(exc.status, str(exc))
        resp = web.Response(body=encode_json(event), content_type=JSON)
        resp.headers["X-Wsnotebook-Delivery"] = outcome
        resp.headers["Access-Control-Expose-Headers"] = "X-Wsnotebook-Delivery"
        return resp

    # ---------------------------------------------------------------- notebook API
    def _run(self, coro: Any, what: str, timeout: float) -> Any:
        if not self.running:
            coro.close()
            raise ServerError(f"server {self.url} is stopped")
        if _loop.in_loop_thread():
            coro.close()
            raise LoopThreadError(f"Server.{what}() called from the loop thread; use the async API")
        try:
            return _loop.run(coro, timeout=timeout)
        except (TimeoutError, concurrent.futures.TimeoutError):
            raise WaitTimeout(f"Server.{what}() on {self.url} timed out") from None

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
        """Answer question ``event_id`` from the notebook, exactly as ``POST
        /events/<id>/respond`` would: ``permission=True|False`` (a permission question),
        ``response="text"`` (a question) or ``choice="one of choices"`` (a choice).  Returns
        the updated event; the agent got ``{<answer>, "respondedBy", "hookEvent",
        "respondedAt"}``.  Raises AnswerError (``.status``: 404 unknown, 409 not pending,
        400 wrong answer) or WaitTimeout after ``timeout`` s.  Blocks at most until the answer
        is stored and the delivery tried (<= 5 s)."""
        body: dict[str, Any] = {}
        if permission is not None:
            body["permission"] = permission
        if response is not None:
            body["response"] = response
        if choice is not None:
            body["choice"] = choice
        body["respondedBy"] = responded_by
        event, _ = self._run(self.answer_async(int(event_id), body), "respond", timeout)
        return cast(Event, event)

    def pending(self, limit: int = PENDING_LIMIT) -> pd.DataFrame:
        """Questions waiting for an answer, one row each (see
        :func:`wsnotebook.frame.questions.pending_table` for the columns)."""
        from ..frame.questions import pending_table

        events = self._run(self.pending_async(limit), "pending", 30.0)
        return pending_table(events)


async def _send_once(url: str, text: str) -> None:
    import aiohttp

    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, autoping=True, max_msg_size=1 << 20) as ws,
    ):
        await ws.send_str(text)
        await ws.close()
