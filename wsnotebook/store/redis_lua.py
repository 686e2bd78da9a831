"""The Redis store's Lua scripts and the pure helpers around them (no I/O, no redis import).

Why a script: the id of an event is the integer ``n`` of its stream entry id ``n-0``, and ``n``
comes from a counter (``seq`` in the meta hash) incremented **in the same script** that XADDs the
entry.  Redis runs a script atomically, so across any number of servers the ids are one total
order, equal to the stream's order, with no hole: a failed or refused script uses up no id, and
two servers can never XADD out of order (the failure mode of "INCR, then XADD" in two round
trips).  The same script keeps the retention (``retain`` events, ``retain_bytes`` bytes of
encoded events, the newest always kept: ``XTRIM MINID``), the byte count, the oldest id and the
facet sorted sets (value -> newest id holding it; values whose newest id was evicted are
dropped), so every server reads the same ``first_id``, ``filter-options`` and bytes.

Data layout (``S`` the stream name): stream ``S`` with entries ``n-0 {j: <event JSON>}``; hash
``{S}:meta`` with ``epoch``, ``seq`` (last id), ``first`` (oldest retained id), ``bytes``;
sorted sets ``{S}:facet:<field>``; and for human-in-the-loop (:data:`HITL_KEYS`, written by the
same scripts): ``{S}:questions`` (every question's id, scored by it), ``{S}:pending`` (the
questions whose newest version is pending), ``{S}:latest`` (an updated event's id -> the
sequence number of its newest version) and ``{S}:superseded`` (a replaced version's sequence
number -> that of the update replacing it).  Every sorted set is trimmed with the stream: a
member whose score is below the oldest retained id is dropped.  ``{S}`` shares ``S``'s Cluster
hash slot.

Updates (:data:`UPDATE_LUA`, see :mod:`.hitl`): the next sequence number, ``XADD`` of the new
version's JSON with ``"update_seq"`` spliced in, and the bookkeeping above, in one script, after
a check-and-set: a question whose newest version is no longer pending (answered, timed out,
possibly by another server a moment ago) refuses the update, so an answer is recorded once
across any number of servers.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from ..errors import LimitExceeded
from ..events import Event, encode_json
from ..events.hitl import UPDATE_FIELD, is_question, status_of
from .base import Encoded, StoredEvent
from .hitl import QUESTION_MARK, UPDATE_SLACK

__all__ = [
    "APPEND_LUA",
    "HITL_KEYS",
    "LATEST_LUA",
    "OPEN_LUA",
    "QUESTIONS_LUA",
    "UPDATE_LUA",
    "append_args",
    "entry_id",
    "prestamp",
    "question_marks",
    "splice_id",
    "splice_update",
    "stored_from_entries",
    "stored_from_raw",
    "update_pre",
    "update_state",
]

#: Suffixes of the HITL sorted sets (``{S}:<suffix>``), KEYS[6..9] of the writing scripts.
HITL_KEYS = ("questions", "pending", "latest", "superseded")

#: Open (or create) the stream's meta: ARGV[1] a fresh epoch, used only when none exists.
#: Returns {epoch, seq, first, bytes} (first 0 when the stream is empty).
OPEN_LUA = """
local meta = KEYS[2]
if redis.call('HSETNX', meta, 'epoch', ARGV[1]) == 1 then
  local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  local seq = 0
  if #top > 0 then seq = tonumber(string.match(top[1][1], '^(%d+)')) end
  redis.call('HSET', meta, 'seq', seq, 'bytes', 0)
  local bottom = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if #bottom > 0 then
    redis.call('HSET', meta, 'first', tonumber(string.match(bottom[1][1], '^(%d+)')))
  end
end
local v = redis.call('HMGET', meta, 'epoch', 'seq', 'first', 'bytes')
return {v[1], v[2] or '0', v[3] or '0', v[4] or '0'}
"""

#: Retention, shared by the writing scripts: with ``last`` (newest id), ``first`` (oldest
#: retained, not 0) and ``bytes`` set, evict the oldest entries past ``retain`` (ARGV[2]) or
#: ``retain_bytes`` (ARGV[3]) (the newest always kept), drop every sorted set's members scored
#: below the new oldest id (KEYS[3..9]), store ``first``.
_TRIM = """
local retain, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local count = last - first + 1
if count > retain or bytes > budget then
  local gone, gone_bytes = 0, 0
  local cursor = first
  while (count - gone > retain) or (bytes - gone_bytes > budget and count - gone > 1) do
    local page = redis.call('XRANGE', stream, string.format('%d', cursor) .. '-0', '+',
      'COUNT', 512)
    if #page == 0 then break end
    for _, entry in ipairs(page) do
      if not ((count - gone > retain) or (bytes - gone_bytes > budget and count - gone > 1)) then
        break
      end
      gone = gone + 1
      gone_bytes = gone_bytes + #entry[2][2]
      cursor = tonumber(string.match(entry[1], '^(%d+)')) + 1
    end
  end
  if gone > 0 then
    first = cursor
    redis.call('XTRIM', stream, 'MINID', string.format('%d', first) .. '-0')
    bytes = redis.call('HINCRBY', meta, 'bytes', -gone_bytes)
    for k = 3, 9 do
      redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', '(' .. string.format('%d', first))
    end
  end
end
redis.call('HSET', meta, 'first', first)
"""

#: Append events.  KEYS: stream, meta, facet zsets (3), HITL zsets (:data:`HITL_KEYS`, 4).
#: ARGV: epoch, retain, retain_bytes, the offsets (0-based, space-separated) of the questions
#: among the events and those of the pending ones (:func:`question_marks`), then per event its
#: JSON without ``id`` (ends with ``}``) and its three facet values.
#: Returns {first id, first retained id, bytes} or an error reply ``WSN_EPOCH <epoch>`` when
#: the stream's epoch is not ARGV[1] (the data under this name was lost or replaced).
APPEND_LUA = (
    """
local stream, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if epoch ~= ARGV[1] then
  return redis.error_reply('WSN_EPOCH ' .. tostring(epoch))
end
local n = (#ARGV - 5) / 4
local last = redis.call('HINCRBY', meta, 'seq', n)
local start = last - n + 1
local added = 0
for i = 0, n - 1 do
  local id = start + i
  local b = 6 + i * 4
  local pre = ARGV[b]
  local enc = string.sub(pre, 1, -2) .. ',"id":' .. string.format('%d', id) .. '}'
  redis.call('XADD', stream, string.format('%d', id) .. '-0', 'j', enc)
  redis.call('ZADD', KEYS[3], id, ARGV[b + 1])
  redis.call('ZADD', KEYS[4], id, ARGV[b + 2])
  redis.call('ZADD', KEYS[5], id, ARGV[b + 3])
  added = added + #enc
end
for k = 4, 5 do
  for offset in string.gmatch(ARGV[k], '%d+') do
    local id = string.format('%d', start + tonumber(offset))
    redis.call('ZADD', KEYS[k + 2], id, id)
  end
end
local bytes = redis.call('HINCRBY', meta, 'bytes', added)
local first = tonumber(redis.call('HGET', meta, 'first') or '0')
if first == 0 then first = start end
"""
    + _TRIM
    + """
return {start, first, bytes}
"""
)

#: Append a new version of a stored event (an update, see :mod:`.hitl`).  KEYS: as
#: :data:`APPEND_LUA`.  ARGV: epoch, retain, retain_bytes, the event's id, its new JSON (with
#: ``id``, without ``update_seq``; ends with ``}``), its three facet values, and its state
#: (:func:`update_state`: ``p`` a pending question, ``t`` a question in a final state, ``-``
#: not a question).  Refused (error replies, nothing written, no id used): ``WSN_EPOCH
#: <epoch>``; ``WSN_GONE`` when the event's newest version is not retained; ``WSN_NOT_PENDING``
#: when the event is a question whose newest version is no longer pending (the check-and-set
#: that records an answer once).  Returns {sequence number, first retained id, bytes}.
UPDATE_LUA = (
    """
local stream, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if epoch ~= ARGV[1] then
  return redis.error_reply('WSN_EPOCH ' .. tostring(epoch))
end
local ident = ARGV[4]
local cur = tonumber(redis.call('ZSCORE', KEYS[8], ident) or ident)
local first = tonumber(redis.call('HGET', meta, 'first') or '0')
local top = tonumber(redis.call('HGET', meta, 'seq') or '0')
if first == 0 or cur < first or cur > top then
  return redis.error_reply('WSN_GONE')
end
if redis.call('ZSCORE', KEYS[6], ident) and not redis.call('ZSCORE', KEYS[7], ident) then
  return redis.error_reply('WSN_NOT_PENDING')
end
local last = redis.call('HINCRBY', meta, 'seq', 1)
local seq = string.format('%d', last)
local enc = string.sub(ARGV[5], 1, -2) .. ',"update_seq":' .. seq .. '}'
redis.call('XADD', stream, seq .. '-0', 'j', enc)
redis.call('ZADD', KEYS[3], last, ARGV[6])
redis.call('ZADD', KEYS[4], last, ARGV[7])
redis.call('ZADD', KEYS[5], last, ARGV[8])
redis.call('ZADD', KEYS[8], last, ident)
redis.call('ZADD', KEYS[9], last, string.format('%d', cur))
if ARGV[9] ~= '-' then
  redis.call('ZADD', KEYS[6], ident, ident)
end
if ARGV[9] == 'p' then
  redis.call('ZADD', KEYS[7], ident, ident)
else
  redis.call('ZREM', KEYS[7], ident)
end
local bytes = redis.call('HINCRBY', meta, 'bytes', #enc)
"""
    + _TRIM
    + """
return {last, first, bytes}
"""
)

#: The newest version of one event.  KEYS: stream, ``{S}:latest``.  ARGV: the event's id.
#: Returns the stream entry (``[[id, [field, value]]]``; empty when not retained).
LATEST_LUA = """
local s = redis.call('ZSCORE', KEYS[2], ARGV[1]) or ARGV[1]
local e = string.format('%d', tonumber(s)) .. '-0'
return redis.call('XRANGE', KEYS[1], e, e)
"""

#: The newest ARGV[1] questions (newest version each), oldest asked first.  KEYS: stream,
#: ``{S}:questions``, ``{S}:latest``.  Returns stream entries (as :data:`LATEST_LUA`).
QUESTIONS_LUA = """
local limit = tonumber(ARGV[1])
if limit <= 0 then return {} end
local ids = redis.call('ZREVRANGE', KEYS[2], 0, limit - 1)
local out = {}
for i = #ids, 1, -1 do
  local s = redis.call('ZSCORE', KEYS[3], ids[i]) or ids[i]
  local e = string.format('%d', tonumber(s)) .. '-0'
  local got = redis.call('XRANGE', KEYS[1], e, e)
  if #got > 0 then out[#out + 1] = got[1] end
end
return out
"""


def prestamp(items: Sequence[Encoded], received_ms: float) -> list[bytes]:
    """Each item's stored JSON *without* ``id`` (which the script splices in): its JSON, then
    ``timestamp`` (int ms, when the server fills it) and ``server_received``."""
    received = orjson.dumps(received_ms)
    tail = b',"server_received":' + received + b"}"
    filled = b',"timestamp":%d' % int(received_ms) + tail
    return [it.encoded[:-1] + (filled if it.fill_timestamp else tail) for it in items]


def splice_id(pre: bytes, ident: int) -> bytes:
    """What :data:`APPEND_LUA` stores for ``pre`` under id ``ident`` (the same bytes)."""
    return b'%b,"id":%d}' % (pre[:-1], ident)


def question_marks(pres: Sequence[bytes]) -> tuple[str, str]:
    """The offsets (space-separated) of the questions among events about to be appended (their
    JSON ``pres``), and of those among them that are pending.  Only an event whose bytes hold
    :data:`~.hitl.QUESTION_MARK` is decoded."""
    asked: list[str] = []
    pending: list[str] = []
    for i, pre in enumerate(pres):
        if QUESTION_MARK in pre:
            event = orjson.loads(pre)
            if is_question(event):
                asked.append(str(i))
                if status_of(event) == "pending":
                    pending.append(str(i))
    return " ".join(asked), " ".join(pending)


def append_args(
    epoch: str, retain: int, retain_bytes: int, items: Sequence[Encoded], pres: Sequence[bytes]
) -> list[bytes | str | int]:
    """The ARGV of :data:`APPEND_LUA`."""
    args: list[bytes | str | int] = [epoch, retain, retain_bytes, *question_marks(pres)]
    for it, pre in zip(items, pres):
        args += (pre, it.source_app, it.session_id, it.hook_event_type)
    return args


def entry_id(raw: bytes | str) -> int:
    """The integer id of a stream entry id ``b"n-0"``."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    return int(text.partition("-")[0])


def stored_from_entries(entries: Sequence[tuple[bytes, dict[bytes, bytes]]]) -> list[StoredEvent]:
    """Stream entries (as redis-py returns them) -> stored events.  Their facet fields are
    empty: the Redis store answers ``filter-options`` from its sorted sets, never from these."""
    return [StoredEvent(entry_id(raw), fields[b"j"], "", "", "") for raw, fields in entries]


def stored_from_raw(entries: Sequence[list[bytes | list[bytes]]]) -> list[StoredEvent]:
    """Stream entries as a script returns them (``[id, [b"j", json]]``) -> stored events (facet
    fields empty, as :func:`stored_from_entries`)."""
    out = []
    for raw, fields in entries:
        assert isinstance(raw, bytes) and isinstance(fields, list)
        out.append(StoredEvent(entry_id(raw), fields[1], "", "", ""))
    return out


def update_state(event: Event) -> str:
    """The state argument of :data:`UPDATE_LUA`: ``p`` a pending question, ``t`` a question in
    a final state, ``-`` not a question."""
    state = status_of(event)
    if state is None:
        return "-"
    return "p" if state == "pending" else "t"


def update_pre(ident: int, event: Event, max_event_bytes: int | None, seq_hint: int) -> bytes:
    """The JSON :data:`UPDATE_LUA` stores for an update of event ``ident``, before it splices
    ``update_seq`` in: ``event`` with ``"id": ident`` and without ``update_seq`` (exact-size
    bytes; the entry then has the bytes :func:`~.hitl.update_stored` gives an event without
    ``update_seq``).  Its size with ``update_seq`` (``seq_hint`` stands in for the number, not
    yet allocated) over ``max_event_bytes`` plus :data:`~.hitl.UPDATE_SLACK`: LimitExceeded."""
    out = dict(event)
    out.pop(UPDATE_FIELD, None)
    out["id"] = ident
    pre = bytes(memoryview(encode_json(out)))
    size = len(splice_update(pre, max(seq_hint, 1)))
    if max_event_bytes is not None and size > max_event_bytes + UPDATE_SLACK:
        bound = max_event_bytes + UPDATE_SLACK
        raise LimitExceeded(
            f"update of event {ident}: {size} bytes exceeds the limit of {bound}",
            limit="max_event_bytes",
            value=size,
            bound=bound,
        )
    return pre


def splice_update(pre: bytes, seq: int) -> bytes:
    """What :data:`UPDATE_LUA` stores for ``pre`` as sequence number ``seq`` (the same bytes)."""
    return b'%b,"update_seq":%d}' % (pre[:-1], seq)
