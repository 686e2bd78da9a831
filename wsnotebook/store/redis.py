"""The Redis Streams backend (``store="redis://host:port/db?stream=events"``): many servers, one
ordered stream.

Owns :class:`RedisStore`: append through :data:`~.redis_lua.APPEND_LUA` (group commit:
:mod:`.redis_group`), reads with XRANGE / XREVRANGE, the tail that feeds the server.  The URL is
:mod:`.redis_url`'s; the scripts and their data layout :mod:`.redis_lua`'s; the options
(:class:`~.redis_conn.RedisOptions`) and the redis-py clients :mod:`.redis_conn`'s (redis-py,
``pip install 'wsnotebook[redis]'``, is imported when a store opens, never before).

How several servers behave as one: every server appends with one atomic script (ids ``n`` of
entries ``n-0``: one total order, no hole) and **tails** the stream (``XREAD BLOCK``), handing
what it reads, its own appends included, to the server's feed (:attr:`Store.feeds`): each
server broadcasts the stream's order, each event once.  The epoch lives in Redis (``{S}:meta``),
so it is the same on every server and across restarts of any of them: a client that fails over
resumes with ``?since=&epoch=`` as from the same server.

Durability: ``append`` returns when Redis has run the script (a 200); what that survives is
Redis's persistence (``appendonly yes`` + ``appendfsync always``: on disk before the reply).
Nothing is acknowledged that Redis did not confirm; redis-py's own retries are off (a retried
script could store an event twice).  Redis down: ``append`` raises StoreError at once (HTTP 503),
the tail reconnects with :class:`~wsnotebook.protocol.Backoff` (logged rate-limited, counted),
WebSocket clients stay connected.  Redis back with another epoch (its data lost): the server's
clients are closed (the feed's ``reset``) and resume into the new epoch with a gap record.

Human in the loop: questions, their answers and every update of an event, recorded once across
the servers by a check-and-set in the update script, are :mod:`.redis_hitl`'s.

Errors: a malformed URL, a missing redis-py, an unreachable or refusing Redis at :meth:`open` is
a ConfigError naming the URL without its password; later failures are StoreError.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, cast

from ..errors import ConfigError, StoreError
from ..events import Event, now_ms
from ..protocol import Backoff
from ..runtime.logthrottle import ThrottledLog
from .base import (
    DEFAULT_RETAIN_BYTES,
    FACET_FIELDS,
    Appendable,
    Encoded,
    Store,
    StoredEvent,
    check_retain,
    check_retain_bytes,
    fit_budget,
)
from .redis_conn import RedisOptions, close_clients, error_text, make_client
from .redis_group import AppendGroups
from .redis_hitl import RedisHitlMixin
from .redis_lua import (
    APPEND_LUA,
    HITL_KEYS,
    OPEN_LUA,
    append_args,
    prestamp,
    splice_id,
    stored_from_entries,
)
from .redis_url import RedisTarget, parse_redis_url
from .stamping import snapshot_events

__all__ = ["CLOSE_WAIT", "READ_CHUNK", "RedisOptions", "RedisStore"]

log = logging.getLogger("wsnotebook")

#: Entries read per XRANGE when a read has a byte budget (it stops once the budget is spent).
READ_CHUNK = 256
#: Seconds ``close()`` waits for the tail to stop, before and after closing its connections.
CLOSE_WAIT = 1.0


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()


def _facets(item: Encoded) -> tuple[str, str, str]:
    return item.source_app, item.session_id, item.hook_event_type


class RedisStore(RedisHitlMixin, Store):
    """A store on one Redis stream, shared by any number of servers; see the module docstring.

    ``retain`` (1..100,000,000) and ``retain_bytes`` (1 KiB..1 TiB of encoded events, the
    newest always kept) bound the **stream** (every server's appends trim it; eviction is the
    usual ``reset``/gap).  ``first_id``, ``len()`` and ``retained_bytes`` are the stream's as
    last seen (refreshed by every append and read); ``last_id`` is the newest id this server's
    tail has handed to its feed (what its clients have been sent)."""

    kind = "redis"
    feeds = True

    def __init__(
        self,
        url: str | RedisTarget,
        *,
        retain: int = 100_000,
        retain_bytes: int = DEFAULT_RETAIN_BYTES,
        options: RedisOptions | None = None,
    ) -> None:
        self.target = url if isinstance(url, RedisTarget) else parse_redis_url(url)
        self.retain = check_retain(retain)
        self.retain_bytes = check_retain_bytes(retain_bytes)
        self.options = options or RedisOptions()
        self.epoch = ""
        self._redis: Any = None  # commands (appends, reads)
        self._reader: Any = None  # the tail's blocking XREAD
        self._append: Any = None
        self._tail_task: asyncio.Task[None] | None = None
        self._deliver: Callable[[list[StoredEvent]], None] | None = None
        self._reset_feed: Callable[[], None] | None = None
        self._last = 0  # newest id handed to the feed
        self._seq = 0  # newest id known to exist
        self._first = 0  # oldest retained id (0: none)
        self._bytes = 0
        self._resync = False  # the epoch in Redis may have changed: check before reading on
        self._closing = False
        self.connected = False  # the tail's view of Redis
        self.tail_errors = 0
        self.append_errors = 0
        self.reconnects = 0
        self.epoch_changes = 0
        self._throttle = ThrottledLog(log)
        self._groups = AppendGroups(self._run_script)
        self._pools: list[Any] = []
        keys = [self.target.stream, self.target.meta_key]
        self._keys = keys + [self.target.facet_key(name) for name, _ in FACET_FIELDS]
        self._keys += [self.target.key(name) for name in HITL_KEYS]

    def __repr__(self) -> str:
        return f"<RedisStore {self.target.safe_url} epoch={self.epoch or '-'}>"

    # ------------------------------------------------------------------ interface
    @property
    def last_id(self) -> int:
        return self._last

    @property
    def first_id(self) -> int | None:
        return self._first or None

    def __len__(self) -> int:
        return max(0, self._seq - self._first + 1) if self._first else 0

    @property
    def retained_bytes(self) -> int:
        return self._bytes

    def set_feed(
        self, deliver: Callable[[list[StoredEvent]], None], reset: Callable[[], None]
    ) -> None:
        self._deliver, self._reset_feed = deliver, reset

    def stats(self) -> dict[str, Any]:
        out = super().stats()
        out.update(
            url=self.target.safe_url,
            connected=self.connected,
            tail_errors=self.tail_errors,
            append_errors=self.append_errors,
            reconnects=self.reconnects,
            epoch_changes=self.epoch_changes,
            append_calls=self._groups.calls,
            appends_grouped=self._groups.grouped,
        )
        return out

    # ------------------------------------------------------------------ lifecycle
    def _client(self, read_timeout: float) -> Any:
        client, pool = make_client(self.target, self.options, read_timeout)
        self._pools.append(pool)
        return client

    async def open(self) -> None:
        if self._redis is not None:
            raise StoreError(f"redis store {self.target.safe_url}: already open")
        opts = self.options
        self._redis = self._client(opts.command_timeout)
        self._reader = self._client(opts.block_ms / 1000 + opts.command_timeout)
        self._append = self._redis.register_script(APPEND_LUA)
        try:
            await self._open_meta()
        except BaseException as exc:
            await self._close_clients()
            if isinstance(exc, Exception) and not isinstance(exc, ConfigError):
                raise ConfigError(
                    f"store: cannot use Redis at {self.target.safe_url}: {self._why(exc)}"
                ) from None
            raise
        self._last = self._seq
        self.connected = True
        self._closing = False
        self._tail_task = asyncio.ensure_future(self._tail())

    async def _open_meta(self) -> None:
        """Adopt the stream's epoch (creating it for a new stream) and its positions."""
        epoch, seq, first, nbytes = await self._redis.eval(
            OPEN_LUA, 2, *self._keys[:2], secrets.token_hex(8)
        )
        self.epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        self._seq, self._first, self._bytes = int(seq), int(first), int(nbytes)

    async def close(self) -> None:
        """Stop the tail and close the connections; bounded (a few seconds at most)."""
        with contextlib.suppress(asyncio.TimeoutError):  # appends already submitted finish
            await asyncio.wait_for(self._groups.idle(), self.options.command_timeout)
        task, self._tail_task = self._tail_task, None
        self._closing = True  # the tail stops even if redis-py swallowed the cancel
        if task is not None:
            task.cancel()
            # redis-py can swallow a cancel that lands while it connects (the task then waits
            # on a socket forever): closing the connections below ends that wait.
            await asyncio.wait({task}, timeout=CLOSE_WAIT)
        await self._close_clients()
        if task is not None and not task.done():
            await asyncio.wait({task}, timeout=CLOSE_WAIT)
            if not task.done():  # pragma: no cover - left behind, its errors retrieved
                log.debug("wsnotebook: redis store tail did not stop; left behind")
            task.add_done_callback(_retrieve)
        self.connected = False

    async def _close_clients(self) -> None:
        clients = [c for c in (self._redis, self._reader) if c is not None]
        pools, self._pools = self._pools, []
        self._redis = self._reader = self._append = None
        await close_clients(clients, pools)

    def _why(self, exc: BaseException) -> str:
        return error_text(exc, self.target.password)

    # ------------------------------------------------------------------ writing
    async def append(self, events: Appendable) -> list[StoredEvent]:
        if not events:
            return []
        if self._append is None:
            raise StoreError(f"redis store {self.target.safe_url}: closed")
        if type(events[0]) is Encoded:
            items = cast("list[Encoded]", list(events))
        else:  # validated dicts: the same encodability and size rules as every store
            items = snapshot_events(cast("list[Event]", events), self.max_event_bytes)
        pres = prestamp(items, now_ms())
        start, first, nbytes = await self._groups.submit(items, pres)
        self._first, self._bytes = first, nbytes
        self._seq = max(self._seq, start + len(items) - 1)
        return [
            StoredEvent(start + i, splice_id(pre, start + i), *_facets(it))
            for i, (it, pre) in enumerate(zip(items, pres))
        ]

    async def _run_script(self, items: list[Encoded], pres: list[bytes]) -> tuple[int, int, int]:
        """One script call for a group of appends (:mod:`.redis_group`)."""
        if self._append is None:
            raise StoreError(f"redis store {self.target.safe_url}: closed")
        args = append_args(self.epoch, self.retain, self.retain_bytes, items, pres)
        try:
            start, first, nbytes = await self._append(keys=self._keys, args=args)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.append_errors += 1
            if "WSN_EPOCH" in str(exc):
                self._resync = True
            # logged (rate-limited) and counted by the server as a store error (HTTP 503)
            raise StoreError(
                f"redis store {self.target.safe_url}: append failed: {self._why(exc)}"
            ) from None
        return int(start), int(first), int(nbytes)

    # ------------------------------------------------------------------ reading
    async def _range(self, reverse: bool, start: str, count: int) -> list[StoredEvent]:
        """One XRANGE (or XREVRANGE) page, with the meta refreshed in the same round trip."""
        if self._redis is None:
            raise StoreError(f"redis store {self.target.safe_url}: closed")
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                if reverse:
                    pipe.xrevrange(self.target.stream, max=start, min="-", count=count)
                else:
                    pipe.xrange(self.target.stream, min=start, max="+", count=count)
                pipe.hmget(self.target.meta_key, ["first", "seq", "bytes"])
                entries, meta = await pipe.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise StoreError(
                f"redis store {self.target.safe_url}: read failed: {self._why(exc)}"
            ) from None
        self._note_meta(meta)
        return stored_from_entries(entries)

    def _note_meta(self, meta: list[bytes | None]) -> None:
        """Take the stream's oldest id, newest id and bytes from an ``HMGET first seq bytes``."""
        first, seq, nbytes = (int(v or 0) for v in meta)
        self._first, self._bytes, self._seq = first, nbytes, max(self._seq, seq)

    async def recent(self, limit: int, max_bytes: int | None = None) -> list[StoredEvent]:
        """The latest ``limit`` entries without superseded ones (each event once, in its
        newest version: fewer than ``limit`` may come back)."""
        newest = await self._paged(True, "+", limit, max_bytes)
        newest.reverse()
        return await self._visible(newest)

    async def since(
        self, after_id: int, limit: int, max_bytes: int | None = None
    ) -> list[StoredEvent]:
        return await self._paged(False, f"{after_id + 1}-0", limit, max_bytes)

    async def _paged(
        self, reverse: bool, start: str, limit: int, max_bytes: int | None
    ) -> list[StoredEvent]:
        """Up to ``limit`` entries from ``start`` on (newest first when ``reverse``); with a byte
        budget read :data:`READ_CHUNK` at a time and stop once it is spent (at least one event,
        the rule of :func:`fit_budget`), so a read never holds much more than it returns."""
        out: list[StoredEvent] = []
        spent = 0
        while len(out) < limit:
            want = limit - len(out) if max_bytes is None else min(READ_CHUNK, limit - len(out))
            page = await self._range(reverse, start, want)
            if max_bytes is not None and page:
                fit = fit_budget((len(s.encoded) for s in page), max_bytes - spent)
                if out and fit == 1 and len(page[0].encoded) + 1 > max_bytes - spent:
                    break  # the budget is spent (fit_budget keeps one event at least)
                page = page[:fit]
                spent += sum(len(s.encoded) + 1 for s in page)
            out += page
            if len(page) < want:
                break
            # ids are contiguous entries n-0: the next page starts beside the last one read
            start = f"{page[-1].id - 1}-0" if reverse else f"{page[-1].id + 1}-0"
        return out

    async def filter_options(self) -> dict[str, list[str]]:
        if self._redis is None:
            raise StoreError(f"redis store {self.target.safe_url}: closed")
        first = self._first or 1
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in self._keys[2 : 2 + len(FACET_FIELDS)]:
                    pipe.zrangebyscore(key, first, "+inf")
                found = await pipe.execute()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise StoreError(
                f"redis store {self.target.safe_url}: read failed: {self._why(exc)}"
            ) from None
        return {
            reply: sorted(v.decode() for v in values)
            for (_, reply), values in zip(FACET_FIELDS, found)
        }

    # ------------------------------------------------------------------ the tail
    async def _tail(self) -> None:
        """Read the stream after ``last_id`` forever, handing each page to the feed; on an error
        back off and reconnect (never raises: errors are logged rate-limited and counted)."""
        opts = self.options
        backoff = Backoff(base=opts.backoff_base, cap=opts.backoff_cap, clock=time.monotonic)
        while not self._closing:
            self._throttle.flush()  # "(K more suppressed)" summaries of ended periods
            try:
                if self._resync or not self.connected:
                    await self._check_epoch()
                async with self._reader.pipeline(transaction=False) as pipe:
                    pipe.xread(
                        {self.target.stream: f"{self._last}-0"},
                        count=opts.read_count,
                        block=opts.block_ms,
                    )
                    pipe.hmget(self.target.meta_key, ["first", "seq", "bytes"])
                    reply, meta = await pipe.execute()
                self._note_meta(meta)
                if not self.connected:
                    self.connected = True
                    self.reconnects += 1
                    log.info("wsnotebook: redis store %s: connected again", self.target.safe_url)
                backoff.reset()
                if reply and not self._closing:
                    self._hand_over(stored_from_entries(reply[0][1]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._closing:
                    return
                self.tail_errors += 1
                self.connected = False
                self._throttle.warning(
                    "redis_tail",
                    "wsnotebook: redis store %s: reading the stream failed (%s); retrying",
                    self.target.safe_url,
                    self._why(exc),
                )
                await asyncio.sleep(backoff.next_delay())

    def _hand_over(self, page: list[StoredEvent]) -> None:
        if not page:
            return
        self._last = page[-1].id
        self._seq = max(self._seq, self._last)
        deliver = self._deliver
        if deliver is None:
            return
        try:
            deliver(page)
        except Exception as exc:  # a broken subscriber must not stop the tail
            self.tail_errors += 1
            self._throttle.error(
                "redis_feed", "wsnotebook: redis store feed failed: %r", exc, exc_info=exc
            )

    async def _check_epoch(self) -> None:
        """After a reconnect (or a refused append): is the stream still the one we tail?  When
        its epoch changed (Redis lost its data), adopt the new one and reset the feed."""
        old = self.epoch
        await self._open_meta()
        self._resync = False
        if self.epoch == old:
            return
        self.epoch_changes += 1
        log.error(
            "wsnotebook: redis store %s: epoch changed %s -> %s (Redis lost its data?); "
            "clients are told to resume in the new epoch",
            self.target.safe_url,
            old,
            self.epoch,
        )
        self._last = 0  # tail the new stream from its start
        if self._reset_feed is not None:
            self._reset_feed()
