"""A clock whose time moves only when told.

Use `FakeClock` wherever a component takes `clock=`; no test should wait on real time for a
timer to fire.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
from dataclasses import dataclass, field

__all__ = ["FakeClock"]

#: How many event-loop turns `autojump` lets other ready tasks run before it moves time.
_AUTOJUMP_TURNS = 8


@dataclass(order=True)
class _Sleeper:
    deadline: float
    seq: int
    future: asyncio.Future[None] | None = field(compare=False, default=None)
    loop: asyncio.AbstractEventLoop | None = field(compare=False, default=None)


class FakeClock:
    """A `Clock` for tests: time stands still until `advance` moves it.

    Args:
        start: The initial monotonic reading.
        wall_start: The wall-clock reading (`time()`) that corresponds to `start`.
        sync_sleep_advances: When true (the default), a synchronous `sleep` moves time forward
            itself and returns at once, since the sleeping thread is usually the test's own
            and nobody else would advance the clock. When false, `sleep` blocks the calling
            thread until another thread advances time past its deadline.
        autojump: When true, an async sleep that nobody else wakes moves time forward to the
            earliest pending deadline once the event loop has had a few turns to run the
            other ready tasks (trio's ``MockClock(autojump_threshold=0)``, approximated).

    Every requested sleep duration is appended to `sleeps`, so a test can assert a backoff
    schedule exactly.
    """

    def __init__(
        self,
        start: float = 0.0,
        *,
        wall_start: float = 1_700_000_000.0,
        sync_sleep_advances: bool = True,
        autojump: bool = False,
    ) -> None:
        self._now = float(start)
        self._wall_offset = float(wall_start) - float(start)
        self._sync_sleep_advances = sync_sleep_advances
        self._autojump = autojump
        self._cond = threading.Condition()
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self.sleeps: list[float] = []
        # Autojump runs one chain of loop callbacks; any wake-up or new sleeper restarts its
        # count, so woken tasks get to run before time jumps again.
        self._activity = 0
        self._autojump_loops: set[asyncio.AbstractEventLoop] = set()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r}, pending_sleepers={self.pending_sleepers})"

    def monotonic(self) -> float:
        """Return the fake monotonic time."""
        return self._now

    def time(self) -> float:
        """Return the fake wall-clock time, moving in step with `monotonic`."""
        return self._now + self._wall_offset

    @property
    def pending_sleepers(self) -> int:
        """Return how many async sleeps are waiting for time to move."""
        with self._cond:
            return sum(1 for s in self._sleepers if s.future is not None and not s.future.done())

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds` and wake every sleeper whose deadline has passed.

        Safe to call from any thread: async sleepers are woken on their own event loop.

        Raises:
            ValueError: If `seconds` is negative; monotonic time never goes back.
        """
        if not seconds >= 0:  # also refuses NaN, which would stop time for good
            raise ValueError(f"FakeClock.advance: seconds must be >= 0, got {seconds!r}")
        with self._cond:
            self._now += seconds
            self._activity += 1
            due: list[_Sleeper] = []
            while self._sleepers and self._sleepers[0].deadline <= self._now:
                due.append(heapq.heappop(self._sleepers))
            self._cond.notify_all()
        for sleeper in due:
            _wake(sleeper)

    def sleep(self, seconds: float) -> None:
        """Sleep on fake time: advance it yourself, or wait for another thread to (see init)."""
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        if self._sync_sleep_advances:
            self.advance(seconds)
            return
        with self._cond:
            deadline = self._now + seconds
            self._cond.wait_for(lambda: self._now >= deadline)

    async def asleep(self, seconds: float) -> None:
        """Suspend the task until fake time reaches now + `seconds`."""
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            sleeper = _Sleeper(self._now + seconds, next(self._seq), future, loop)
            self._activity += 1
            if seconds == 0:
                future.set_result(None)
            else:
                heapq.heappush(self._sleepers, sleeper)
        if self._autojump and seconds > 0 and loop not in self._autojump_loops:
            self._autojump_loops.add(loop)
            loop.call_soon(self._autojump_check, loop, _AUTOJUMP_TURNS, self._activity)
        try:
            await future
        finally:
            if not future.done():
                future.cancel()
            with self._cond:
                if sleeper in self._sleepers:
                    self._sleepers.remove(sleeper)
                    heapq.heapify(self._sleepers)

    async def wait_for_sleepers(self, count: int = 1, *, max_turns: int = 10_000) -> None:
        """Let the event loop run until at least `count` async sleeps are pending.

        The usual way to reach a known point before `advance`: start a task, wait for it to
        go to sleep, then move time.

        Raises:
            TimeoutError: If the loop turned `max_turns` times without reaching `count`.
        """
        for _ in range(max_turns):
            if self.pending_sleepers >= count:
                return
            await asyncio.sleep(0)
        raise TimeoutError(
            f"FakeClock.wait_for_sleepers: {self.pending_sleepers} of {count} sleepers "
            f"after {max_turns} loop turns"
        )

    def _autojump_check(
        self, loop: asyncio.AbstractEventLoop, turns_left: int, seen_activity: int
    ) -> None:
        if self._activity != seen_activity:
            loop.call_soon(self._autojump_check, loop, _AUTOJUMP_TURNS, self._activity)
            return
        if turns_left > 0:
            loop.call_soon(self._autojump_check, loop, turns_left - 1, seen_activity)
            return
        with self._cond:
            live = [s for s in self._sleepers if s.future is not None and not s.future.done()]
            target = min((s.deadline for s in live), default=None)
        if target is None:
            self._autojump_loops.discard(loop)
            return
        self.advance(max(0.0, target - self._now))
        loop.call_soon(self._autojump_check, loop, _AUTOJUMP_TURNS, self._activity)


def _wake(sleeper: _Sleeper) -> None:
    future, loop = sleeper.future, sleeper.loop
    if future is None or loop is None or loop.is_closed():
        return

    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        resolve()
    else:
        loop.call_soon_threadsafe(resolve)
