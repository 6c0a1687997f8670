"""A short tour of selfheal: policies healing a flaky dependency, narrated by their events.

Run with ``.venv/bin/python examples/demo.py``. Real clock, tiny delays: the whole tour takes
well under three seconds.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import selfheal
from selfheal import EventBus, ExponentialBackoff, Timeout

try:  # The circuit breaker lives on its own branch until it is merged.
    from selfheal import CircuitBreaker  # type: ignore[attr-defined]
except ImportError:
    CircuitBreaker = None

START = time.monotonic()


def say(text: str) -> None:
    print(f"{time.monotonic() - START:6.3f}s  {text}")


class FlakyService:
    """Fails `failures` calls in a row, then answers; `down` makes it fail until brought back."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.down = False
        self.calls = 0

    def get_user(self, user_id: int) -> dict[str, Any]:
        self.calls += 1
        if self.down or self.failures > 0:
            self.failures -= 1
            raise ConnectionError("connection refused")
        return {"id": user_id, "name": "ada"}


def make_bus() -> EventBus:
    bus = EventBus()
    bus.subscribe("*", lambda e: say(f"  event {e.type:<34} {dict(e.data)}"))
    return bus


def part_1_retry(bus: EventBus) -> None:
    say("1. A flaky call: retry with exponential backoff heals two failures")
    service = FlakyService(failures=2)
    get_user = selfheal.retry(
        on=ConnectionError,
        attempts=4,
        backoff=ExponentialBackoff(initial=0.02, max=0.1),
        bus=bus,
        name="users",
    )(service.get_user)
    say(f"   -> {get_user(1)} after {service.calls} calls")


def part_2_fallback(bus: EventBus) -> None:
    say("2. The service is down: retry gives up, the fallback answers")
    service = FlakyService()
    service.down = True
    get_user = selfheal.pipeline(
        selfheal.fallback({"id": 1, "name": "guest (cached)"}, bus=bus),
        selfheal.retry(on=ConnectionError, attempts=3, backoff=0.02, bus=bus),
    )(service.get_user)
    say(f"   -> {get_user(1)}")


def part_3_breaker(bus: EventBus) -> None:
    if CircuitBreaker is None:
        say("3. (circuit breaker not available in this build: skipped)")
        return
    say("3. A circuit breaker stops hammering a dead service, then lets it recover")
    service = FlakyService()
    service.down = True
    try:
        breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=0.2, bus=bus, name="users")
    except TypeError:
        breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=0.2)
    get_user = selfheal.pipeline(
        selfheal.fallback({"id": 1, "name": "guest (cached)"}, bus=bus),
        breaker,
    )(service.get_user)
    for _ in range(4):
        say(f"   -> {get_user(1)}   (service called {service.calls}x, breaker {breaker.state})")
    service.down = False
    say("   service is back; waiting for the recovery timeout")
    time.sleep(0.25)
    say(f"   -> {get_user(1)}   (breaker {breaker.state})")


async def part_4_timeout(bus: EventBus) -> None:
    say("4. A hanging async call: a 50 ms timeout cuts it, the fallback answers")

    async def hang(user_id: int) -> dict[str, Any]:
        say(f"   inside: {selfheal.remaining():.3f}s left")
        await asyncio.sleep(10)
        return {"id": user_id}

    get_user = selfheal.pipeline(
        selfheal.fallback({"id": 1, "name": "guest (cached)"}, bus=bus),
        Timeout(0.05, bus=bus, name="users"),
    )(hang)
    say(f"   -> {await get_user(1)}")


def part_5_features(bus: EventBus) -> None:
    say("5. Graceful degradation: a feature switched off by hand uses its fallback")
    features = selfheal.FeatureManager(bus=bus)
    features.register("recommendations", lambda: True, fallback_func=lambda user: ["bestseller"])

    def personal(user: str) -> list[str]:
        return [f"picked for {user}"]

    say(f"   -> {features.use_feature('recommendations', personal, 'ada')}")
    features.degrade("recommendations")
    say(f"   -> {features.use_feature('recommendations', personal, 'ada')}")
    features.restore("recommendations")
    say(f"   -> {features.use_feature('recommendations', personal, 'ada')}")


def main() -> None:
    bus = make_bus()
    part_1_retry(bus)
    part_2_fallback(bus)
    part_3_breaker(bus)
    asyncio.run(part_4_timeout(bus))
    part_5_features(bus)
    say("done")


if __name__ == "__main__":
    main()
