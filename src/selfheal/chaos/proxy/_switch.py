"""The fault proxy's kill switch: `Safeguards` seen from an event loop.

While a kill switch is engaged (the file ``selfheal chaos stop`` creates in a state directory,
or the in-process `kill_switch()`), the proxy rolls every fault back and refuses new ones.
The file is looked at every ``poll_interval`` seconds on the proxy's clock; the in-process
switch is heard at once. `SwitchWatch` reports each engagement once, when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from selfheal._clock import Clock
from selfheal._tasks import Tasks
from selfheal.chaos._killswitch import watch_kill_switch
from selfheal.chaos._safety import Safeguards

__all__ = ["SwitchWatch"]


class SwitchWatch:
    """Calls ``on_engaged(reason)`` on `loop` each time the kill switch becomes engaged.

    Args:
        safeguards: Whose ``kill_switch`` file (if any) is polled; the in-process switch is
            always heard.
        clock: Times the polls.
        on_engaged: The coroutine function that rolls every fault back.
    """

    def __init__(
        self,
        safeguards: Safeguards,
        clock: Clock,
        on_engaged: Callable[[str], Coroutine[Any, Any, None]],
    ) -> None:
        self.safeguards = safeguards
        self.clock = clock
        self.on_engaged = on_engaged
        self._engaged = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poll: asyncio.Task[None] | None = None
        self._unwatch: Callable[[], None] | None = None
        self._tasks = Tasks()

    def start(self) -> None:
        """Start listening (on the running loop) and, for a file switch, polling."""
        self._loop = asyncio.get_running_loop()
        self._unwatch = watch_kill_switch(self._heard)
        if self.safeguards.kill_switch is not None:
            self._poll = self._loop.create_task(self._polling())

    def stop(self) -> None:
        """Stop listening and polling."""
        if self._unwatch is not None:
            self._unwatch()
            self._unwatch = None
        if self._poll is not None:
            self._poll.cancel()
        self._tasks.cancel()
        self._poll, self._loop = None, None

    def refusal(self) -> str | None:
        """Return why a fault must be refused now (the switch is engaged), or None."""
        return self.safeguards.stop_reason()

    def _heard(self, reason: str) -> None:
        # Runs in the thread that engaged the in-process switch: hand it to the loop.
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to roll back
                loop.call_soon_threadsafe(self._check)

    def _check(self) -> None:
        reason = self.refusal()
        was, self._engaged = self._engaged, reason is not None
        if reason is not None and not was and self._loop is not None:
            self._tasks.spawn(self.on_engaged(reason), loop=self._loop)

    async def _polling(self) -> None:
        while True:
            self._check()
            await self.clock.asleep(self.safeguards.poll_interval)
