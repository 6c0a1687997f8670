"""The background tasks a component started: kept referenced, awaited and cancelled together.

asyncio keeps only a weak reference to a task, so a component that fires one off must hold
it; and a component that stops must wait for the tasks it cancelled, or their cleanup (a
killed probe command still to be reaped, a recovery reporting its failure) runs after the
component said it stopped, or never, once the loop is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Tasks", "finish"]


async def finish(awaitable: Awaitable[Any]) -> None:
    """Await `awaitable` to its end, however often the caller is cancelled meanwhile.

    For cleanup that must complete, such as reaping a process just sent SIGKILL. A supervisor
    stopping a program cancels its probe, then cancels it again when it closes its tasks, and
    a wait cut short by the second cancel let ``stop`` return with the command still alive.
    The wait must be short; the caller re-raises its own cancellation afterwards.
    """
    waiting = asyncio.ensure_future(awaitable)
    while not waiting.done():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(waiting)


class Tasks:
    """A set of running tasks; finished ones leave it by themselves."""

    def __init__(self) -> None:
        self._live: set[asyncio.Future[Any]] = set()

    def spawn(
        self,
        coro: Awaitable[Any],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        on_done: Callable[[asyncio.Future[Any]], object] | None = None,
    ) -> asyncio.Future[Any]:
        """Run `coro` as a task (on `loop`, or the running loop) and keep it until it ends."""
        task = asyncio.ensure_future(coro, loop=loop)
        self._live.add(task)
        task.add_done_callback(self._live.discard)
        if on_done is not None:
            task.add_done_callback(on_done)
        return task

    def __len__(self) -> int:
        return len(self._live)

    def cancel(self) -> None:
        """Ask every task to stop; `close` also waits until they did."""
        for task in list(self._live):
            task.cancel()

    async def wait(self) -> None:
        """Wait until the tasks that run on this loop ended, and those they started meanwhile.

        Tasks of other threads' loops (a set shared across loops) are theirs to await.
        """
        await self._settle(cancel=False)

    async def close(self) -> None:
        """Cancel the tasks of this loop and wait until each has finished its cleanup."""
        await self._settle(cancel=True)

    async def _settle(self, *, cancel: bool) -> None:
        loop = asyncio.get_running_loop()
        while mine := [t for t in list(self._live) if t.get_loop() is loop]:
            if cancel:
                for task in mine:
                    task.cancel()
            await asyncio.gather(*mine, return_exceptions=True)
