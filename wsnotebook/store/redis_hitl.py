"""Questions and updates of the Redis store (a mixin of :class:`~.redis.RedisStore`).

Owns what :mod:`.hitl` asks of a store, for any number of servers on one stream:
:meth:`~RedisHitlMixin.append_update` (one script call, :data:`~.redis_lua.UPDATE_LUA`: the next
sequence number, the entry, the per-event newest version and the pending questions, atomically,
after a check-and-set), :meth:`~RedisHitlMixin.latest` and :meth:`~RedisHitlMixin.questions`
(each one read script, so what they return is one consistent view) and the superseded versions
left out of ``recent()`` (:meth:`~RedisHitlMixin._visible`).  Questions are indexed by the
append script itself (:func:`~.redis_lua.question_marks`), in the same atomic call that stores
them, so :meth:`note_questions` has nothing to do and a question is never stored unindexed.

Answered once across servers: two servers may both read a question as pending and both try to
store their answer; the script refuses an update of a question whose newest version is no longer
pending (``WSN_NOT_PENDING``), so the second gets :class:`~wsnotebook.errors.AnswerError` 409
(``was already answered`` / ``is no longer pending (<state>)``, the state read back), stores
nothing and uses no sequence number.  An event whose newest version was evicted between the
server's read and the script is refused with 404 (``WSN_GONE``).

Durability: as an append's (the script ran; what it survives is Redis's persistence).  The
state lives in Redis only (``{S}:questions``, ``{S}:pending``, ``{S}:latest``,
``{S}:superseded``; :mod:`.redis_lua`), so every server, and a server started later, sees the
same questions and versions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import AnswerError, StoreError
from ..events import Event
from ..events.hitl import is_question, status_of
from .base import StoredEvent, event_facets
from .redis_lua import (
    LATEST_LUA,
    QUESTIONS_LUA,
    UPDATE_LUA,
    splice_update,
    stored_from_raw,
    update_pre,
    update_state,
)

if TYPE_CHECKING:
    from .redis_url import RedisTarget

__all__ = ["RedisHitlMixin"]


class RedisHitlMixin:
    """HITL for :class:`~.redis.RedisStore` (which provides these attributes)."""

    target: RedisTarget
    epoch: str
    retain: int
    retain_bytes: int
    max_event_bytes: int | None
    append_errors: int
    _redis: Any
    _keys: list[str]
    _seq: int
    _first: int
    _bytes: int
    _resync: bool

    if TYPE_CHECKING:

        def _why(self, exc: BaseException) -> str: ...  # the error's text without the password

    def note_questions(self, stored: Sequence[StoredEvent]) -> None:
        """Nothing to do: the append script indexed the questions when it stored them."""

    def _client_or_raise(self) -> Any:
        if self._redis is None:
            raise StoreError(f"redis store {self.target.safe_url}: closed")
        return self._redis

    async def _eval(self, script: str, keys: list[str], args: list[Any], what: str) -> Any:
        """One script call; Redis errors other than the script's own refusals -> StoreError."""
        client = self._client_or_raise()
        try:
            return await client.eval(script, len(keys), *keys, *args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            text = str(exc)
            if "WSN_" in text:
                raise
            raise StoreError(
                f"redis store {self.target.safe_url}: {what} failed: {self._why(exc)}"
            ) from None

    async def append_update(self, ident: int, event: Event) -> StoredEvent:
        """Append a new version of event ``ident`` (see the module docstring): stored when this
        returns; AnswerError 409 when it is a question no longer pending, 404 when its newest
        version is no longer retained; LimitExceeded when too large; StoreError on failure."""
        self._client_or_raise()
        pre = update_pre(ident, event, self.max_event_bytes, self._seq + 1)
        facets = event_facets(event)
        args = [
            self.epoch,
            self.retain,
            self.retain_bytes,
            str(ident),
            pre,
            *facets,
            update_state(event),
        ]
        try:
            reply = await self._eval(UPDATE_LUA, self._keys, args, "update")
        except StoreError:
            self.append_errors += 1
            raise
        except Exception as exc:  # the script's refusals (WSN_...)
            text = str(exc)
            if "WSN_NOT_PENDING" in text:
                raise AnswerError(await self._refusal(ident), event_id=ident) from None
            if "WSN_GONE" in text:
                raise AnswerError("Event not found", status=404, event_id=ident) from None
            self.append_errors += 1
            if "WSN_EPOCH" in text:
                self._resync = True
            raise StoreError(
                f"redis store {self.target.safe_url}: update failed: {self._why(exc)}"
            ) from None
        seq, first, nbytes = (int(v) for v in reply)
        self._first, self._bytes, self._seq = first, nbytes, max(self._seq, seq)
        return StoredEvent(seq, splice_update(pre, seq), *facets)

    async def _refusal(self, ident: int) -> str:
        """Why an update of question ``ident`` was refused, from its newest version."""
        try:
            current = await self.latest(ident)
        except StoreError:
            current = None
        state = status_of(current)
        if state == "responded":
            return f"event {ident} was already answered"
        return f"event {ident} is no longer pending ({state or 'answered elsewhere'})"

    async def latest(self, ident: int) -> Event | None:
        if ident < 1:
            return None
        keys = [self._keys[0], self._keys[7]]
        found = stored_from_raw(await self._eval(LATEST_LUA, keys, [str(ident)], "read"))
        for stored in found:
            event = stored.event
            if event.get("id") == ident:
                return event
        return None

    async def questions(self, limit: int) -> list[Event]:
        keys = [self._keys[0], self._keys[5], self._keys[7]]
        raw = await self._eval(QUESTIONS_LUA, keys, [max(0, int(limit))], "read")
        events = [s.event for s in stored_from_raw(raw)]
        return [e for e in events if is_question(e)]

    async def _visible(self, items: list[StoredEvent]) -> list[StoredEvent]:
        """``items`` (a ``recent()`` read: contiguous ids up to the stream's end when read)
        without the versions an update among them superseded.  An update after the read does
        not count (its new version is not among ``items``: the old one stays)."""
        if not items:
            return items
        client = self._client_or_raise()
        lo, hi = items[0].id, items[-1].id
        try:
            gone = await client.zrangebyscore(self._keys[8], lo, hi)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise StoreError(
                f"redis store {self.target.safe_url}: read failed: {self._why(exc)}"
            ) from None
        if not gone:
            return items
        old = {int(v) for v in gone}
        return [s for s in items if s.id not in old]
