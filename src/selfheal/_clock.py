"""Time as a dependency: every component asks a `Clock`, never the `time` module.

Production code gets `SystemClock`; tests get `selfheal.testing.FakeClock`, whose time only
moves when the test says so, so a thirty-second recovery timeout is checked in microseconds.
"""

from __future__ import annotations

import asyncio
import time as _time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """The time source of a component.

    `monotonic` measures durations (timeouts, windows, backoff); `time` stamps events with
    wall-clock seconds since the epoch. Only these four methods are ever used, so any object
    providing them (a trio-style mock, a simulation) can drive selfheal.
    """

    def monotonic(self) -> float:
        """Return seconds on a clock that never goes backwards."""
        ...

    def time(self) -> float:
        """Return wall-clock seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for `seconds`."""
        ...

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for `seconds`."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time`, `time.sleep`, `asyncio.sleep`."""

    __slots__ = ()

    # Bound as class attributes so a call costs one C function call, not a Python frame.
    monotonic = staticmethod(_time.monotonic)
    time = staticmethod(_time.time)
    sleep = staticmethod(_time.sleep)

    async def asleep(self, seconds: float) -> None:
        """Suspend the calling task for `seconds` with `asyncio.sleep`."""
        await asyncio.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


#: The process-wide real clock, the default of every component.
SYSTEM_CLOCK: Clock = SystemClock()
