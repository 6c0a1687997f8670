"""Helpers of the recovery tests: let an engine finish, read its reports, make a crash."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from selfheal import Event, EventBus
from selfheal.recovery import RecoveryEngine, RestartProgram

#: The one-step ladder most tests use: restart whatever the event is about.
RESTART = (RestartProgram("{subject}"),)


async def settle(engine: RecoveryEngine) -> None:
    """Let the loop hand the bus's events to the engine, then wait for its recoveries."""
    for _ in range(5):
        await asyncio.sleep(0)
    await engine.wait_idle()


def outcomes(events: list[Event]) -> list[str]:
    """Return ``started``, ``suppressed:cooldown``... for each recovery report."""
    return [
        e.type.rsplit(".", 1)[1] + (f":{e.data['reason']}" if "reason" in e.data else "")
        for e in events
    ]


def crash(bus: EventBus, name: str = "web", code: int = 1) -> None:
    """Publish what a supervisor publishes when program `name` exits with `code`."""
    bus.emit(f"process.{name}.exited", "supervisor", "error", exit_code=code)


def pager(paged: list[str], attr: str = "subject") -> Callable[[Event], Awaitable[None]]:
    """Return an escalation function that records the event's `attr` in `paged`."""

    # Async on purpose: with an autojumping FakeClock a thread (what a sync function gets)
    # could let fake time jump to the action's deadline before it finishes.
    async def page(event: Event) -> None:
        paged.append(getattr(event, attr))

    return page
