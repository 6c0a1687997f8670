"""The demo's users: seeded requests at a steady rate, never retried, each one counted.

A user who gets an error or waits longer than `timeout` is an unavailable request; that share
is the availability the demo reports. Product pages served from the popular-products
fallback count as available (that is what the fallback is for) and are counted apart.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LoadStats", "UserLoad"]

_QUERIES = ("tent", "stove", "mug", "boots", "lantern", "thermos")
_KINDS = ("product", "search", "home", "checkout")
_WEIGHTS = (45, 25, 15, 15)


@dataclass
class LoadStats:
    """What the users saw."""

    sent: int = 0
    ok: int = 0
    degraded: int = 0  # product pages answered with the fallback
    failures: dict[str, int] = field(default_factory=dict)  # reason -> count
    accepted_orders: set[str] = field(default_factory=set)  # checkouts answered 201/202
    latencies: list[float] = field(default_factory=list)

    @property
    def availability(self) -> float | None:
        """Return the share of requests answered successfully (None before any)."""
        return self.ok / self.sent if self.sent else None

    def fail(self, reason: str) -> None:
        """Count a failed request by `reason`."""
        self.failures[reason] = self.failures.get(reason, 0) + 1


class UserLoad:
    """Send `rate` requests per second to the shop at `base_url` until cancelled.

    Args:
        base_url: The shop (the web processes' shared port).
        rate: Requests per second.
        seed: Seeds the mix of requests, so a run sends the same sequence.
        timeout: A user's patience, in seconds.
    """

    def __init__(self, base_url: str, *, rate: float, seed: int, timeout: float = 2.0) -> None:
        self.base_url = base_url
        self.rate = rate
        self.timeout = timeout
        self.seed = seed
        self.stats = LoadStats()
        self._rng = random.Random(seed)  # noqa: S311 - repeatable traffic, not secrets

    def _next(self, index: int) -> tuple[str, str, dict[str, Any] | None]:
        kind = self._rng.choices(_KINDS, _WEIGHTS)[0]
        if kind == "product":
            return kind, f"/product/{self._rng.randint(1, 200)}", None
        if kind == "search":
            return kind, f"/search?q={self._rng.choice(_QUERIES)}", None
        if kind == "home":
            return kind, "/", None
        order = {
            "order_id": f"demo-{self.seed}-{index}",
            "product_id": self._rng.randint(1, 200),
            "quantity": 1,
        }
        return kind, "/checkout", order

    async def run(self) -> None:
        """Send requests at the rate until cancelled (requests in flight are awaited)."""
        import httpx

        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits
        ) as client:
            pending: set[asyncio.Task[None]] = set()
            start = time.monotonic()
            index = 0
            try:
                while True:
                    # Open loop: requests leave on schedule whether or not earlier ones returned,
                    # as users arrive whether or not the shop is slow.
                    delay = start + index / self.rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    task = asyncio.create_task(self._one(client, index))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                    index += 1
            finally:
                if pending:
                    await asyncio.wait(pending, timeout=self.timeout + 1)

    async def _one(self, client: Any, index: int) -> None:
        import httpx

        kind, path, order = self._next(index)
        stats = self.stats
        stats.sent += 1
        began = time.monotonic()
        try:
            if order is None:
                response = await client.get(path)
            else:
                response = await client.post(path, json=order)
        except httpx.TimeoutException:
            stats.fail("timeout")
            return
        except httpx.HTTPError as exc:
            stats.fail(type(exc).__name__)
            return
        finally:
            stats.latencies.append(time.monotonic() - began)
        good = (201, 202) if order is not None else (200,)
        if response.status_code not in good:
            stats.fail(f"HTTP {response.status_code}")
            return
        stats.ok += 1
        if order is not None:
            stats.accepted_orders.add(order["order_id"])
        elif kind == "product" and response.headers.get("x-shop-degraded") == "1":
            stats.degraded += 1
