"""A check of an event loop's lag, measured from outside the loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.errors import CheckError
from selfheal.health._results import Check
from selfheal.health.checks._worker import Worker

__all__ = ["event_loop_lag_check"]


def event_loop_lag_check(
    loop: asyncio.AbstractEventLoop | None = None,
    *,
    max_lag: float = 0.25,
    clock: Clock = SYSTEM_CLOCK,
) -> Check:
    """Return a check that measures an event loop's lag from outside the loop.

    A thread hands the loop a callback with ``call_soon_threadsafe`` and measures how long
    the loop takes to run it: code blocking the loop delays the callback, so a blocked loop
    fails the check after `max_lag` even though nothing on that loop can run. Best used as a
    liveness check of an application's loop from a monitor on another thread
    (`HealthMonitor.start_monitoring`).

    Args:
        loop: The loop to watch (default: the loop the check runs on).
        max_lag: Seconds of lag above which the check fails.
        clock: Measures the lag. The wait itself is a real wait on a real loop, bounded by
            `max_lag`.
    """
    if not max_lag > 0:
        raise ValueError(f"event_loop_lag_check: max_lag must be > 0 seconds, got {max_lag!r}")

    def measure(target: asyncio.AbstractEventLoop) -> Mapping[str, Any]:
        ran = threading.Event()
        start = clock.monotonic()
        try:
            target.call_soon_threadsafe(ran.set)
        except RuntimeError:
            raise CheckError("the event loop is closed") from None
        if not ran.wait(max_lag):
            raise CheckError(
                f"the event loop did not run a callback within {max_lag * 1000:.0f} ms (blocked)"
            )
        lag = clock.monotonic() - start
        return {
            "componentType": "system",
            "measurement": "lag",
            "observedValue": round(lag * 1000, 3),
            "observedUnit": "ms",
        }

    worker = Worker("event_loop_lag_check")

    async def check() -> Mapping[str, Any]:
        target = loop if loop is not None else asyncio.get_running_loop()
        return await worker.run(lambda: measure(target))

    check.__qualname__ = "event_loop_lag_check"
    return check
