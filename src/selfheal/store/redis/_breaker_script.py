"""The shared breaker's state transitions, as one Lua script run atomically by Redis.

Per breaker, a hash ``<prefix>:breaker:<name>`` holds ``st`` (closed, open, half_open),
``ver`` (bumped on every state change), ``at`` (when it opened, Redis milliseconds), ``ok``
(successful trials of the current half-open period) and ``max`` (trials that close it); a
sorted set ``...:trials`` holds the trial permits in use, scored by when they expire, so a
node that dies holding one does not keep the fleet half-open for ever.

Time is Redis's own (``TIME``), so nodes whose clocks differ agree on when a recovery timeout
ends: every reply carries Redis's ``now`` beside ``at``, and a node turns the difference into
its own clock's terms. Every change is published on ``<prefix>:breakers`` as
``ver|st|at|now|node|name``, which is all a node needs to update its cache.

Operations (ARGV[1]):

- ``get``: the current record.
- ``save`` (state, expected ver, mode): a node's own decision. ``cas`` applies it only if
  nobody changed the record since the node last saw it (else the reply says what is there, and
  the node follows that); ``merge`` reconciles a node that was cut off: an OPEN it decided
  alone opens a CLOSED fleet (a failure seen anywhere counts), anything else applies only if
  nobody changed the record meanwhile.
- ``trial`` (max, recovery ms, permit, permit ttl ms): OPEN whose timeout passed turns
  HALF_OPEN; a permit is granted while permits in use plus successes stay below max.
- ``done`` (permit, epoch, outcome): a failed trial re-opens; ``max`` successes close.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from selfheal.interfaces import BreakerState
from selfheal.store.redis._client import Script

__all__ = ["BREAKER", "Change", "Reply", "parse_message"]

BREAKER = Script(
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'st', 'ver', 'at', 'ok', 'max')
local st = h[1] or 'closed'
local ver = tonumber(h[2] or '0')
local at = tonumber(h[3] or '0')
local ok = tonumber(h[4] or '0')
local op = ARGV[1]
local function put(new_st, new_at)
  ver = ver + 1
  st = new_st
  at = new_at
  ok = 0
  redis.call('HSET', KEYS[1], 'st', st, 'ver', ver, 'at', at, 'ok', 0)
  redis.call('DEL', KEYS[2])
  redis.call('PUBLISH', ARGV[2], ver .. '|' .. st .. '|' .. at .. '|' .. now .. '|' .. ARGV[4]
    .. '|' .. ARGV[3])
end
local function reply(result) return {st, ver, at, now, result} end
if op == 'get' then return reply('') end
if op == 'save' then
  local want, expected, mode = ARGV[5], tonumber(ARGV[6]), ARGV[7]
  local apply = ver == expected
  if mode == 'merge' and want == 'open' then apply = st == 'closed' end
  if not apply then return reply('rejected') end
  if want == 'open' then put('open', now) else put('closed', at) end
  return reply('applied')
end
if op == 'trial' then
  if st == 'closed' then return reply('closed') end
  if st == 'open' then
    if now < at + tonumber(ARGV[6]) then return reply('open') end
    put('half_open', at)
  end
  redis.call('HSET', KEYS[1], 'max', ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  if redis.call('ZCARD', KEYS[2]) + ok >= tonumber(ARGV[5]) then return reply('busy') end
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[8]), ARGV[7])
  return reply('granted')
end
if op == 'done' then
  if st ~= 'half_open' or ver ~= tonumber(ARGV[6]) then return reply('stale') end
  local held = redis.call('ZREM', KEYS[2], ARGV[5]) == 1
  if ARGV[7] == 'failure' then
    put('open', now)
    return reply('opened')
  end
  if ARGV[7] == 'success' and held then
    ok = ok + 1
    if ok >= tonumber(h[5] or '1') then
      put('closed', at)
      return reply('closed')
    end
    redis.call('HSET', KEYS[1], 'ok', ok)
  end
  return reply('released')
end
return redis.error_reply('unknown breaker op ' .. op)
"""
)


@dataclass(frozen=True, slots=True)
class Reply:
    """A breaker record as Redis holds it.

    Attributes:
        state: The state.
        ver: Its version (0: never stored).
        opened_ms: When it opened, Redis milliseconds.
        now_ms: Redis's time when this was read.
        result: What the operation did (``applied``, ``rejected``, ``granted``, ``busy``...).
    """

    state: BreakerState
    ver: int
    opened_ms: int
    now_ms: int
    result: str = ""

    @classmethod
    def parse(cls, raw: Any) -> Reply:
        """Return the reply of a script call."""
        st, ver, at, now, result = raw
        return cls(BreakerState(st), int(ver), int(at), int(now), str(result))

    @property
    def age(self) -> float:
        """Return seconds since it opened, by Redis's clock."""
        return max(0.0, (self.now_ms - self.opened_ms) / 1000.0)


@dataclass(frozen=True, slots=True)
class Change:
    """A published change: the new record of breaker `name`, made by `node`."""

    name: str
    node: str
    reply: Reply


def parse_message(data: str) -> Change | None:
    """Return the change a ``<prefix>:breakers`` message announces, or None if malformed."""
    parts = data.split("|", 5)
    if len(parts) != 6:
        return None
    ver, st, at, now, node, name = parts
    try:
        return Change(name, node, Reply(BreakerState(st), int(ver), int(at), int(now)))
    except ValueError:
        return None
