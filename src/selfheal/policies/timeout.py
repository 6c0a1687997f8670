"""Timeout: bound how long a call may take, and tell the code inside how long it has left.

**Async** (``async def``): the call is cancelled at the deadline and `CallTimeoutError` (a
builtin `TimeoutError`) is raised, like `asyncio.timeout`, with the same care for
cancellation: only our own cancel is turned into `CallTimeoutError` (``Task.uncancel``), a
cancel from outside still cancels. With the system
clock the deadline is one event-loop timer (``loop.call_at``); no Task is created per call.
With another clock (`selfheal.testing.FakeClock`) the call runs under `timeout_after`, the
clock-aware timeout every component uses (a helper task sleeps on that clock), so tests move
time by hand.

**Sync** (``def``): a thread cannot be interrupted safely, so a sync `Timeout` is
*cooperative*: it publishes the deadline in a context variable for the code inside
(`selfheal.remaining()`, e.g. as an HTTP client's timeout), and if the call still overruns it
returns its result and publishes ``timeout.<name>.expired`` with ``interrupted=False``. To
really stop waiting on a blocking call, run it in a worker thread from async code
(``await asyncio.to_thread(fn)`` under an async `Timeout`).

Nested deadlines (a pipeline's overall deadline around a per-attempt timeout) keep the tighter
one: the inner `Timeout` fires at whichever comes first.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock, SystemClock
from selfheal._deadline import DEADLINE, _Scope, tighter, timeout_after
from selfheal.errors import CallTimeoutError
from selfheal.events import EventBus, Severity
from selfheal.policies._base import Policy
from selfheal.policies._naming import check_name, name_of

__all__ = ["Timeout"]

P = ParamSpec("P")
R = TypeVar("R")


# Timer callbacks may run a hair before their time (asyncio fires a handle up to the clock's
# resolution early); a deadline within this much of now counts as reached.
_RESOLUTION = time.get_clock_info("monotonic").resolution


class _Timed(_Scope):
    """A deadline with the task it cancels, and whether its call is over."""

    __slots__ = ("done", "task")

    def __init__(self, deadline: float, clock: Clock, task: asyncio.Task[Any]) -> None:
        # Not super().__init__: this runs on every call, and the extra call costs ~30%.
        self.deadline = deadline
        self.clock = clock
        self.expired = False
        self.task = task
        self.done = False


def _expire(scope: _Timed) -> None:
    if not scope.done:
        scope.expired = True
        scope.task.cancel()


class _TimerQueue:
    """All running calls of one `Timeout` on one event loop, with one loop timer between them.

    Calls under one `Timeout` all get the same duration, so their deadlines arrive in the order
    the calls started: a FIFO queue is already sorted. One timer, set for the oldest call's
    deadline, serves them all; finished calls are dropped from the front as they end or when
    the timer fires. A successful call thus costs a deque append and pop instead of a loop
    timer scheduled and cancelled (what `asyncio.timeout` pays per use).
    """

    # No reference to the loop itself: the loop is the key of a weak dictionary of queues.
    __slots__ = ("handle", "queue")

    def __init__(self) -> None:
        self.queue: deque[_Timed] = deque()
        self.handle: asyncio.TimerHandle | None = None

    def add(self, scope: _Timed, loop: asyncio.AbstractEventLoop) -> None:
        """Queue `scope`; return None (the caller's "no own timer")."""
        self.queue.append(scope)
        if self.handle is None:
            self.handle = loop.call_at(scope.deadline, self.fire, loop)

    def trim(self) -> None:
        queue = self.queue
        while queue and queue[0].done:
            queue.popleft()

    def fire(self, loop: asyncio.AbstractEventLoop) -> None:
        queue = self.queue
        now = loop.time() + _RESOLUTION
        while queue:
            head = queue[0]
            if not head.done and head.deadline > now:
                self.handle = loop.call_at(head.deadline, self.fire, loop)
                return
            queue.popleft()
            _expire(head)
        self.handle = None


@checked_keywords
class Timeout(Policy):
    """Give a call at most `seconds`; see the module docstring for sync versus async.

    Args:
        seconds: The time allowed per call.
        clock: The time source (`SYSTEM_CLOCK` uses the event loop's timer directly).
        bus: Receives ``timeout.<name>.expired``.
        name: The name in event types; defaults to the wrapped function's name.

    Raises:
        ValueError: If `seconds` is not a positive number.
    """

    __slots__ = ("_lock", "_timers", "bus", "clock", "name", "seconds")

    def __init__(
        self,
        seconds: float,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        name: str | None = None,
    ) -> None:
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ValueError(f"Timeout: seconds must be a number > 0, got {seconds!r}")
        check_name("Timeout", name)
        self.seconds = float(seconds)
        self.clock = clock
        self.bus = bus
        self.name = name
        self._lock = threading.Lock()
        self._timers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _TimerQueue] = (
            weakref.WeakKeyDictionary()
        )

    def __repr__(self) -> str:
        name = f", name={self.name!r}" if self.name is not None else ""
        return f"Timeout({self.seconds!r}{name})"

    def _expired(self, name: str, *, interrupted: bool, seconds: float | None = None) -> None:
        if self.bus is not None:
            self.bus.emit(
                f"timeout.{name}.expired",
                name,
                Severity.WARNING,
                seconds=self.seconds if seconds is None else seconds,
                interrupted=interrupted,
            )

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return `fn` with the deadline published to it (cooperative; see the module doc)."""
        name = name_of(self.name, fn)
        seconds = self.seconds
        monotonic = self.clock.monotonic
        clock = self.clock
        expired = self._expired

        def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            start = monotonic()
            scope = tighter(start + seconds, clock)
            token = DEADLINE.set(scope)
            try:
                result = fn(*args, **kwargs)
            finally:
                DEADLINE.reset(token)
            if monotonic() > scope.deadline:
                expired(name, interrupted=False, seconds=scope.deadline - start)
            return result

        return timed

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return `fn` cancelled at the deadline, raising `CallTimeoutError`."""
        name = name_of(self.name, fn)
        if not isinstance(self.clock, SystemClock):
            return self._awrap_clock(fn, name)
        # On the system clock the calls share one loop timer per `Timeout` (`_TimerQueue`)
        # instead of taking `timeout_after`'s scope each: that scope (a loop timer scheduled
        # and cancelled per call) measured 5.3-7.1 us of overhead per call against 1.8-2.1 us,
        # and 33,300 against 10,600 instructions, on `bench/policies.py`'s timeout case.
        seconds = self.seconds
        clock = self.clock
        timed_out = self._timed_out
        get_loop = asyncio.get_running_loop
        current_task = asyncio.current_task
        var = DEADLINE
        timers_for = self._timers_for
        # (loop, its timer queue) of the last call, swapped as one reference so that threads
        # running different loops never pair one loop with another's queue.
        cached: list[tuple[Any, Any]] = [(None, None)]

        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            loop = get_loop()
            task = current_task(loop)
            if task is None:
                raise RuntimeError("Timeout must run inside an asyncio task")
            last_loop, timers = cached[0]
            if last_loop is not loop:
                timers = timers_for(loop)
                cached[0] = (loop, timers)
            deadline = loop.time() + seconds
            outer = var.get()
            # A nearer enclosing deadline is out of order for the queue: it gets its own timer.
            # Only a deadline on real monotonic time compares with the loop's (a FakeClock's
            # is on another time line).
            tight = (
                outer is not None
                and outer.deadline < deadline
                and isinstance(outer.clock, SystemClock)
            )
            scope = _Timed(outer.deadline if tight else deadline, clock, task)  # type: ignore[union-attr]
            if tight:
                handle: asyncio.TimerHandle | None = loop.call_at(scope.deadline, _expire, scope)
            else:
                handle = timers.add(scope, loop)
            cancelling = task.cancelling()
            token = var.set(scope)
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                scope.done = True
                var.reset(token)
                if handle is not None:
                    handle.cancel()
                if scope.expired:
                    # The time it had: less than `seconds` under a nearer enclosing deadline.
                    timed_out(name, task, cancelling, exc, scope.deadline - deadline + seconds)
                raise
            scope.done = True
            var.reset(token)
            if handle is not None:
                handle.cancel()
            else:
                timers.trim()
            if scope.expired:
                task.uncancel()  # the call swallowed our cancel and finished anyway
            return result

        return timed

    def _timers_for(self, loop: asyncio.AbstractEventLoop) -> _TimerQueue:
        with self._lock:
            timers = self._timers.get(loop)
            if timers is None:
                timers = self._timers[loop] = _TimerQueue()
            return timers

    def _awrap_clock(
        self, fn: Callable[P, Awaitable[R]], name: str
    ) -> Callable[P, Coroutine[Any, Any, R]]:
        # Another clock (a FakeClock) only moves when told: the call runs under selfheal's
        # one clock-aware timeout, the scope the health checks, probes and recovery use.
        seconds = self.seconds
        clock = self.clock
        expired = self._expired

        async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
            # The time it gets: `seconds`, or less under a nearer enclosing deadline.
            now = clock.monotonic()
            given = max(0.0, tighter(now + seconds, clock).deadline - now)
            scope = timeout_after(given, clock, name=name)
            try:
                async with scope:
                    return await fn(*args, **kwargs)
            except CallTimeoutError:
                if scope.expired:
                    expired(name, interrupted=True, seconds=given)
                raise

        return timed

    def _timed_out(
        self,
        name: str,
        task: asyncio.Task[Any],
        cancelling: int,
        exc: BaseException,
        given: float,
    ) -> None:
        # Our timer fired: only a cancel nobody else asked for becomes a TimeoutError.
        if task.uncancel() <= cancelling and isinstance(exc, asyncio.CancelledError):
            given = max(0.0, min(self.seconds, given))
            self._expired(name, interrupted=True, seconds=given)
            raise CallTimeoutError(name, given) from exc
