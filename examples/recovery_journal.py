"""A recovery rule that verifies its fix, and the journal's incident with time to recover.

Run: .venv/bin/python examples/recovery_journal.py
then: .venv/bin/selfheal incidents --db .selfheal/example-journal.db
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from selfheal import Event, EventBus
from selfheal.interfaces import HealthStatus
from selfheal.recovery import CallFunction, RecoveryEngine, Rule, Verify
from selfheal.store import Journal


class CacheHealth:
    """A HealthSource with one check, 'cache', that passes once the cache is warm."""

    def __init__(self) -> None:
        self.warm = False

    def status(self, name: str) -> HealthStatus:
        return HealthStatus.PASS if self.warm else HealthStatus.FAIL

    async def check_now(self, name: str) -> HealthStatus:
        return self.status(name)


async def main() -> None:
    bus = EventBus()
    bus.subscribe("recovery.*", lambda e: print(f"{e.type:<28} {dict(e.data).get('reason', '')}"))
    health = CacheHealth()

    async def rewarm(event: Event) -> None:
        await asyncio.sleep(0.2)  # pretend to reload the cache
        health.warm = True

    rule = Rule(
        on="health.*.failed",
        steps=(CallFunction(rewarm, name="rewarm"),),
        verify=Verify(("cache",), within=5, interval=0.1),
    )
    path = Path(".selfheal/example-journal.db")
    with Journal(bus, path) as journal:
        async with RecoveryEngine(bus, [rule], health=health) as engine:
            for _ in range(3):  # a burst of identical failures: one recovery
                bus.emit("health.cache.failed", "monitor", "error", error="miss rate 97%")
            await asyncio.sleep(0)
            await engine.wait_idle()
        journal.flush(5)
        for incident in journal.incidents(limit=1):
            print(f"incident #{incident.id} {incident.subject}: recovered in {incident.ttr:.2f}s")
    print(f"journal: {path} (try: selfheal incidents --db {path})")


if __name__ == "__main__":
    asyncio.run(main())
