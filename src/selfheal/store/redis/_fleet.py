"""`FleetLeases`: the recovery engine's way to let one node of the fleet act on an incident.

`claim` returns a grant to the first node that asks; the others wait while it works. If it
finishes, they are told (None) and do nothing; if it dies, its lease expires (it renews every
third of `ttl` while it works) and one of the waiting nodes gets the grant: the takeover. A
grant checks its fencing token before every action (`check`), so a node that was paused past
its lease does not act on after another took over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.store.redis._client import connect_async, parse_url, redis_errors
from selfheal.store.redis._lease import RecoveryLease, node_name

__all__ = ["FleetGrant", "FleetLeases"]

logger = logging.getLogger("selfheal.recovery.fleet")


class FleetGrant:
    """This node's right to run one recovery; renewed in the background until `end`.

    Args:
        lease: The lease.
        token: Its fencing token.
        clock: Paces the renewals.
    """

    def __init__(self, lease: RecoveryLease, token: int, clock: Clock) -> None:
        self.lease = lease
        self.token = token
        self.clock = clock
        self.lost = False
        self._errors = redis_errors()
        self._renewer = asyncio.ensure_future(self._renew())

    def __repr__(self) -> str:
        return f"FleetGrant(name={self.lease.name!r}, token={self.token}, lost={self.lost})"

    async def _renew(self) -> None:
        lease = self.lease
        last_ok = self.clock.monotonic()
        while True:
            await self.clock.asleep(lease.ttl / 3)
            try:
                if not await lease.arenew(self.token):
                    break
                last_ok = self.clock.monotonic()
            except self._errors as exc:
                logger.warning("lease %s: renewal failed: %r", lease.name, exc)
                if self.clock.monotonic() - last_ok >= lease.ttl:
                    break  # it has expired on Redis by now
        self.lost = True
        logger.warning("lease %s (token %d) lost", lease.name, self.token)

    async def check(self) -> bool:
        """Return whether this node still holds the lease (ask Redis; False if unsure)."""
        if self.lost:
            return False
        try:
            return await self.lease.ais_current(self.token)
        except self._errors:
            return False

    async def end(self, *, hold: float) -> None:
        """Stop renewing; mark the recovery done for `hold` seconds so nobody repeats it."""
        self._renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._renewer
        try:
            await self.lease.afinish(self.token, hold=max(hold, 0.001))
        except self._errors as exc:
            logger.warning("lease %s: could not mark done (%r); it expires", self.lease.name, exc)


class FleetLeases:
    """Recovery leases on Redis for a `RecoveryEngine` (``leases=``).

    Args:
        url: A fleet URL.
        ttl: Seconds a lease outlives the last renewal of a node that died.
        poll: Seconds between looks of a waiting node (default: a quarter of `ttl`).
        prefix: Key prefix shared by the fleet.
        holder: This node's name (default ``host:pid``).
        clock: Paces polls and renewals.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = 10.0,
        poll: float | None = None,
        prefix: str = "selfheal",
        holder: str | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._url = parse_url(url)
        self.ttl = ttl
        self.poll = poll if poll is not None else ttl / 4
        self.prefix = prefix
        self.holder = holder or node_name()
        self.clock = clock
        self._client: Any = None

    def __repr__(self) -> str:
        return f"FleetLeases({self._url.safe!r}, ttl={self.ttl!r}, holder={self.holder!r})"

    async def claim(
        self, key: str, *, on_wait: Callable[[str], object] | None = None
    ) -> FleetGrant | None:
        """Wait until this node may run the recovery of `key`, or another node finished it.

        Args:
            key: What the recovery is about (the rule and its subject).
            on_wait: Called once with the holder's name if another node is working on it.

        Returns:
            A grant (call `FleetGrant.end` when done), or None when another node finished.

        Raises:
            ConnectionError: (redis-py's) when Redis cannot be reached.
        """
        if self._client is None:
            self._client = connect_async(self._url)
        lease = RecoveryLease(
            self._client,
            f"recovery:{key}",
            ttl=self.ttl,
            holder=self.holder,
            prefix=self.prefix,
            aredis=self._client,
        )
        told = False
        while True:
            token = await lease.aacquire()
            if token is not None:
                return FleetGrant(lease, token, self.clock)
            info = await lease.ainfo()
            if info is None:
                continue  # expired between the two calls: try again at once
            if info.state == "done":
                return None
            if not told and on_wait is not None:
                told = True
                on_wait(info.holder)
            await self.clock.asleep(self.poll)

    async def start(self) -> None:
        """Nothing to start: the client connects on first use."""

    async def stop(self) -> None:
        """Close the client (on the loop that used it)."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
