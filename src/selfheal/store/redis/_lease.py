"""Recovery leases: for one incident, one node of the fleet acts; a fencing token says which.

A lease is one Redis key, ``<prefix>:lease:<name>``, holding ``<token>|<holder>|<state>`` with
a time to live (``SET NX PX`` inside a script). The token comes from ``INCR`` on
``<prefix>:lease:<name>:fence``, so it grows with every grant and is never reused: a node whose
lease expired (it was paused, partitioned, or slow) holds a token smaller than the new
holder's, and `is_current` tells it so before it acts. Renewal and release compare the token
first (a Lua compare-and-set / compare-and-delete), so a late node cannot extend or delete a
lease it lost.

A finished recovery leaves the key in state ``done`` for a while (`finish`): nodes that hear
of the same incident a little later see that it was dealt with, instead of acting again.

Every operation is one script call: `RecoveryLease` runs them on a sync client, the ``a``
twins on an asyncio client; the operations themselves (keys, arguments, parsing the reply) are
written once.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from selfheal.errors import SelfhealError
from selfheal.store.redis._client import Script, connect, connect_async

__all__ = ["LeaseInfo", "LeaseLostError", "RecoveryLease", "node_name"]

T = TypeVar("T")

# ARGV: ttl ms, holder. Returns {token, ""} when granted, {0, current value} when held.
_ACQUIRE = Script(
    """
local cur = redis.call('GET', KEYS[1])
if cur then return {0, cur} end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token .. '|' .. ARGV[2] .. '|running', 'PX', ARGV[1])
return {token, ''}
"""
)
# ARGV: token, ttl ms, new state ('' keeps it). 1 when the lease was still ours.
_RENEW = Script(
    """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
local sep = string.find(cur, '|', 1, true)
if string.sub(cur, 1, sep - 1) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  local rest = string.sub(cur, sep + 1)
  local holder = string.sub(rest, 1, string.find(rest, '|', 1, true) - 1)
  redis.call('SET', KEYS[1], ARGV[1] .. '|' .. holder .. '|' .. ARGV[3], 'PX', ARGV[2])
end
return 1
"""
)
# ARGV: token. 1 when the lease was ours and is deleted.
_RELEASE = Script(
    """
local cur = redis.call('GET', KEYS[1])
if not cur then return 0 end
if string.sub(cur, 1, string.find(cur, '|', 1, true) - 1) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
)


def node_name() -> str:
    """Return a name for this process in the fleet: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class LeaseLostError(SelfhealError):
    """The lease a node acted under expired or was taken over; it must stop acting.

    Attributes:
        name: The lease.
        token: The token the node held.
    """

    def __init__(self, name: str, token: int) -> None:
        super().__init__(f"lease {name!r} (token {token}) was lost to another node")
        self.name = name
        self.token = token

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.token))


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """Who holds a lease.

    Attributes:
        token: Its fencing token.
        holder: The holder's node name.
        state: ``running`` while the holder acts, ``done`` once it finished.
    """

    token: int
    holder: str
    state: Literal["running", "done"]

    @classmethod
    def parse(cls, value: str) -> LeaseInfo:
        """Return the info of a stored ``token|holder|state`` value."""
        token, _, rest = value.partition("|")
        holder, _, state = rest.rpartition("|")
        return cls(int(token), holder, "done" if state == "done" else "running")


@dataclass(frozen=True, slots=True)
class _Op:
    script: Script | None  # None: a plain GET of the lease key
    args: tuple[Any, ...]
    parse: Callable[[Any], Any]


class RecoveryLease:
    """A named lease on one Redis, held by at most one node at a time.

    Args:
        redis: A fleet URL (see `selfheal.store.redis.connect`) or a redis-py client; give
            `aredis` (or a URL) for the ``a`` methods.
        name: What the lease is for, e.g. ``recovery:database``.
        ttl: Seconds the lease lasts unless renewed; a holder that dies loses it this long
            after its last renewal.
        holder: This node's name (default ``host:pid``).
        prefix: Key prefix shared by the fleet.
        aredis: An asyncio client for the ``a`` methods (made from `redis` if it is a URL).

    Raises:
        ValueError: If `ttl` is not positive or `name` is empty.
    """

    def __init__(
        self,
        redis: Any,
        name: str,
        *,
        ttl: float = 30.0,
        holder: str | None = None,
        prefix: str = "selfheal",
        aredis: Any = None,
    ) -> None:
        if not name:
            raise ValueError("RecoveryLease: name must not be empty")
        if not ttl > 0:
            raise ValueError(f"RecoveryLease: ttl must be seconds > 0, got {ttl!r}")
        self.name = name
        self.ttl = float(ttl)
        self.holder = holder or node_name()
        self._url = redis if isinstance(redis, str) else None
        self._redis = connect(redis) if isinstance(redis, str) else redis
        self._aredis = aredis
        self._keys = [f"{prefix}:lease:{name}", f"{prefix}:lease:{name}:fence"]

    def __repr__(self) -> str:
        return f"RecoveryLease(name={self.name!r}, ttl={self.ttl!r}, holder={self.holder!r})"

    @property
    def key(self) -> str:
        """Return the Redis key of the lease (a script can check a token against it)."""
        return str(self._keys[0])

    @property
    def _ttl_ms(self) -> int:
        return max(1, round(self.ttl * 1000))

    # -- the operations, written once ---------------------------------------------------

    def _acquire_op(self) -> _Op:
        def parse(reply: Any) -> int | None:
            token = int(reply[0])
            return token or None

        return _Op(_ACQUIRE, (self._ttl_ms, self.holder), parse)

    def _renew_op(self, token: int, hold: float | None, state: str) -> _Op:
        ms = self._ttl_ms if hold is None else max(1, round(hold * 1000))
        return _Op(_RENEW, (token, ms, state), lambda reply: bool(int(reply)))

    def _release_op(self, token: int) -> _Op:
        return _Op(_RELEASE, (token,), lambda reply: bool(int(reply)))

    def _info_op(self) -> _Op:
        return _Op(None, (), lambda value: LeaseInfo.parse(value) if value else None)

    def _run(self, op: _Op) -> Any:
        if op.script is None:
            return op.parse(self._redis.get(self._keys[0]))
        return op.parse(op.script(self._redis, self._keys, list(op.args)))

    async def _arun(self, op: _Op) -> Any:
        client = self._aredis
        if client is None:
            if self._url is None:
                raise RuntimeError("RecoveryLease: give aredis= (an asyncio client) for a-methods")
            client = self._aredis = connect_async(self._url)
        if op.script is None:
            return op.parse(await client.get(self._keys[0]))
        return op.parse(await op.script.acall(client, self._keys, list(op.args)))

    def close(self) -> None:
        """Close the sync client if this lease made it from a URL."""
        if self._url is not None:
            self._redis.close()

    async def aclose(self) -> None:
        """Close the clients this lease made from a URL (the asyncio one on its loop)."""
        if self._url is not None and self._aredis is not None:
            client, self._aredis = self._aredis, None
            await client.aclose()
        self.close()

    # -- sync ------------------------------------------------------------------------------

    def acquire(self) -> int | None:
        """Take the lease if nobody holds it.

        Returns:
            The fencing token (greater than every token granted before), or None when
            another node holds the lease (or finished under it recently).
        """
        result: int | None = self._run(self._acquire_op())
        return result

    def renew(self, token: int) -> bool:
        """Extend the lease by `ttl`; return False if it is no longer ours (stop acting)."""
        return bool(self._run(self._renew_op(token, None, "")))

    def finish(self, token: int, *, hold: float) -> bool:
        """Mark the work done and keep the lease `hold` seconds so nobody repeats it.

        Returns:
            False if the lease was no longer ours.
        """
        return bool(self._run(self._renew_op(token, hold, "done")))

    def release(self, token: int) -> bool:
        """Give the lease up now (compare-and-delete); return False if it was not ours."""
        return bool(self._run(self._release_op(token)))

    def is_current(self, token: int) -> bool:
        """Return whether `token` still holds the lease (check before each action)."""
        info = self.info()
        return info is not None and info.token == token

    def info(self) -> LeaseInfo | None:
        """Return who holds the lease now, or None."""
        result: LeaseInfo | None = self._run(self._info_op())
        return result

    # -- async -----------------------------------------------------------------------------

    async def aacquire(self) -> int | None:
        """Async twin of `acquire`."""
        result: int | None = await self._arun(self._acquire_op())
        return result

    async def arenew(self, token: int) -> bool:
        """Async twin of `renew`."""
        return bool(await self._arun(self._renew_op(token, None, "")))

    async def afinish(self, token: int, *, hold: float) -> bool:
        """Async twin of `finish`."""
        return bool(await self._arun(self._renew_op(token, hold, "done")))

    async def arelease(self, token: int) -> bool:
        """Async twin of `release`."""
        return bool(await self._arun(self._release_op(token)))

    async def ais_current(self, token: int) -> bool:
        """Async twin of `is_current`."""
        info = await self.ainfo()
        return info is not None and info.token == token

    async def ainfo(self) -> LeaseInfo | None:
        """Async twin of `info`."""
        result: LeaseInfo | None = await self._arun(self._info_op())
        return result
