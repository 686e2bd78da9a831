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
sorted sets ``{S}:facet:<field>``.  ``{S}`` shares ``S``'s Cluster hash slot.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from .base import Encoded, StoredEvent

__all__ = [
    "APPEND_LUA",
    "OPEN_LUA",
    "append_args",
    "entry_id",
    "prestamp",
    "splice_id",
    "stored_from_entries",
]

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

#: Append events.  KEYS: stream, meta, facet zsets (3).  ARGV: epoch, retain, retain_bytes,
#: then per event its JSON without ``id`` (ends with ``}``) and its three facet values.
#: Returns {first id, first retained id, bytes} or an error reply ``WSN_EPOCH <epoch>`` when
#: the stream's epoch is not ARGV[1] (the data under this name was lost or replaced).
APPEND_LUA = """
local stream, meta = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'epoch')
if epoch ~= ARGV[1] then
  return redis.error_reply('WSN_EPOCH ' .. tostring(epoch))
end
local n = (#ARGV - 3) / 4
local last = redis.call('HINCRBY', meta, 'seq', n)
local start = last - n + 1
local added = 0
for i = 0, n - 1 do
  local id = start + i
  local b = 4 + i * 4
  local pre = ARGV[b]
  local enc = string.sub(pre, 1, -2) .. ',"id":' .. string.format('%d', id) .. '}'
  redis.call('XADD', stream, string.format('%d', id) .. '-0', 'j', enc)
  redis.call('ZADD', KEYS[3], id, ARGV[b + 1])
  redis.call('ZADD', KEYS[4], id, ARGV[b + 2])
  redis.call('ZADD', KEYS[5], id, ARGV[b + 3])
  added = added + #enc
end
local bytes = redis.call('HINCRBY', meta, 'bytes', added)
local first = tonumber(redis.call('HGET', meta, 'first') or '0')
if first == 0 then first = start end
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
    for k = 3, 5 do
      redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', '(' .. string.format('%d', first))
    end
  end
end
redis.call('HSET', meta, 'first', first)
return {start, first, bytes}
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


def append_args(
    epoch: str, retain: int, retain_bytes: int, items: Sequence[Encoded], pres: Sequence[bytes]
) -> list[bytes | str | int]:
    """The ARGV of :data:`APPEND_LUA`."""
    args: list[bytes | str | int] = [epoch, retain, retain_bytes]
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
