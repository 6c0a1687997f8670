"""What the monkey disrupts, what it reports, and how it calls the user's functions.

`Disruption` is the protocol of a fault object, `ChaosTarget` a registered target,
`ChaosReport` how a run ended; `call_user` runs a disrupt, recover or check function.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from selfheal._calls import describe, is_async_callable
from selfheal._clock import Clock
from selfheal._deadline import timeout_after
from selfheal._threads import in_own_thread

__all__ = ["ChaosReport", "ChaosTarget", "Disruption", "Outcome", "call_user"]


@runtime_checkable
class Disruption(Protocol):
    """A fault the monkey can inject and roll back (`KillProcess`, `StopProcess`...).

    Either method may be sync or async. `inject` receives the fault's time limit, so a fault
    that outlives its injector (a stopped process) can arm a dead-man switch of its own.
    """

    def inject(self, limit: float | None = None) -> object:
        """Cause the disruption; it must be undone by `rollback` within `limit` seconds."""
        ...

    def rollback(self) -> object:
        """Undo the disruption; safe to call when nothing (or only part) was injected."""
        ...


@dataclass(slots=True)
class ChaosTarget:
    """A registered target and what happened to it.

    Attributes:
        name: The target's name (the middle of its event types).
        disrupt: Causes the disruption (sync or async; given the limit if `takes_limit`).
        recover: Undoes it (sync or async).
        frequency: Average seconds between disruptions.
        duration: Time limit of each disruption in seconds.
        takes_limit: Whether `disrupt` takes the time limit (a `Disruption`'s `inject`).
        disrupted: Whether a disruption is in place (or its rollback failed).
        disruptions: How many disruptions were injected.
        failures: How many injections or rollbacks failed.
        last_disruption: Wall time of the latest injection (0.0 before the first).
    """

    name: str
    disrupt: Callable[..., object]
    recover: Callable[[], object]
    frequency: float
    duration: float
    takes_limit: bool = False
    disrupted: bool = False
    disruptions: int = 0
    failures: int = 0
    last_disruption: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (the functions by name)."""
        return {
            "disrupted": self.disrupted,
            "disruptions": self.disruptions,
            "failures": self.failures,
            "last_disruption": self.last_disruption,
            "frequency": self.frequency,
            "duration": self.duration,
            "disrupt": describe(self.disrupt),
            "recover": describe(self.recover),
        }


@dataclass(frozen=True, slots=True)
class ChaosReport:
    """How a monkey's run ended.

    Attributes:
        reason: ``stopped``, or why it was aborted (the kill switch's reason...).
        aborted: Whether it was an abort (kill switch, `abort`) rather than a stop.
        rolled_back: Targets rolled back at the end.
        failed: Targets whose rollback failed: they may still be disrupted.
        steady_state: After an abort, whether the steady-state check passed; None if there
            is no check or it was a stop.
    """

    reason: str
    aborted: bool
    rolled_back: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    steady_state: bool | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a user function did: its error (None if it returned) and its result."""

    error: Exception | None
    result: object = None


async def call_user(
    fn: Callable[..., object], *args: Any, clock: Clock, limit: float, what: str
) -> Outcome:
    """Run a user function for at most `limit` seconds; return its error instead of raising.

    Sync functions run in a thread of their own (they may block), async ones on the loop;
    a sync function that returns an awaitable has it awaited.

    Args:
        fn: The function.
        *args: Its arguments.
        clock: The clock the timeout is measured on.
        limit: Seconds allowed.
        what: Names the call (thread name, timeout error).
    """
    try:
        async with timeout_after(limit, clock, name=what):
            if is_async_callable(fn):
                result = await fn(*args)  # type: ignore[misc]
            else:
                result = await in_own_thread(fn, *args, name=what)
                if inspect.isawaitable(result):
                    result = await result
    except Exception as exc:  # noqa: BLE001 - reported as an event, never raised
        return Outcome(exc)
    return Outcome(None, result)
