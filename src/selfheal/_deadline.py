"""Deadlines on a `Clock`: the one timeout mechanism every component uses.

`timeout_after` is ``asyncio.timeout`` on an injected clock: the health runner, recovery
actions and the supervisor's probes bound their work with it, so tests drive every deadline
with `selfheal.testing.FakeClock` instead of waiting. The `Timeout` policy uses the same scope
and context variable, with a timer queue of its own on its hot path (see its module).

A deadline is published in a context variable, so the code it protects can ask how much time
is left (`remaining`) and pass it on, e.g. as the timeout of an HTTP request. Nested deadlines
keep the tightest one.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar, Token
from types import TracebackType

from selfheal._clock import SYSTEM_CLOCK, Clock, SystemClock
from selfheal.errors import CallTimeoutError

__all__ = ["ClockTimeout", "current_deadline", "remaining", "timeout_after"]


class _Scope:
    """One deadline: when (on `clock`'s monotonic time), and whether its timer fired."""

    __slots__ = ("clock", "deadline", "expired")

    def __init__(self, deadline: float, clock: Clock) -> None:
        self.deadline = deadline
        self.clock = clock
        self.expired = False


DEADLINE: ContextVar[_Scope | None] = ContextVar("selfheal_deadline", default=None)


def current_deadline() -> float | None:
    """Return the current call's deadline, on the monotonic time of its policy's clock.

    Returns:
        The absolute deadline (comparable with ``clock.monotonic()``), or None outside any
        `Timeout` or retry deadline.
    """
    scope = DEADLINE.get()
    return None if scope is None else scope.deadline


def remaining() -> float | None:
    """Return the seconds left before the current call's deadline.

    Meant for code inside a `Timeout` or a retry with a ``deadline``, to bound what it does
    next (``httpx.get(url, timeout=selfheal.remaining())``).

    Returns:
        Seconds left (0.0 once the deadline has passed), or None when no deadline is set.
    """
    scope = DEADLINE.get()
    if scope is None:
        return None
    return max(0.0, scope.deadline - scope.clock.monotonic())


def tighter(deadline: float, clock: Clock) -> _Scope:
    """Return a scope for `deadline`, or for the enclosing one if that is earlier."""
    outer = DEADLINE.get()
    if outer is not None and outer.deadline < deadline and outer.clock is clock:
        deadline = outer.deadline
    return _Scope(deadline, clock)


class ClockTimeout:
    """An async scope cancelled after `seconds` on `clock`; see `timeout_after`."""

    __slots__ = (
        "_cancelling",
        "_clock",
        "_done",
        "_handle",
        "_name",
        "_scope",
        "_seconds",
        "_task",
        "_token",
        "_watcher",
        "expired",
    )

    def __init__(self, seconds: float, clock: Clock, name: str) -> None:
        self._seconds = seconds
        self._clock = clock
        self._name = name
        self._done = False
        self._handle: asyncio.TimerHandle | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._task: asyncio.Task[object] | None = None
        self._token: Token[_Scope | None] | None = None
        self._cancelling = 0
        self.expired = False

    async def __aenter__(self) -> ClockTimeout:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        if task is None:
            raise RuntimeError("timeout_after must run inside an asyncio task")
        self._task = task
        self._cancelling = task.cancelling()
        now = self._clock.monotonic()
        scope = tighter(now + self._seconds, self._clock)
        delay = max(0.0, scope.deadline - now)
        if isinstance(self._clock, SystemClock):
            # The loop's own timer: no helper task on the real clock.
            self._handle = loop.call_later(delay, self._fire)
        else:
            # Another clock (a FakeClock) only moves when told: a helper task sleeps on it.
            self._watcher = loop.create_task(self._watch(delay))
        self._token = DEADLINE.set(scope)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done = True
        if self._handle is not None:
            self._handle.cancel()
        if self._watcher is not None:
            self._watcher.cancel()
        if self._token is not None:
            DEADLINE.reset(self._token)
        if not self.expired or self._task is None:
            return
        # Only a cancel nobody else asked for becomes a timeout; one from outside propagates.
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise CallTimeoutError(self._name, self._seconds) from exc

    def _fire(self) -> None:
        if not self._done and self._task is not None:
            self.expired = True
            self._task.cancel()

    async def _watch(self, delay: float) -> None:
        await self._clock.asleep(delay)
        self._fire()


def timeout_after(
    seconds: float, clock: Clock = SYSTEM_CLOCK, *, name: str = "deadline"
) -> ClockTimeout:
    """Return an ``async with`` scope that times out after `seconds` on `clock`.

    Like ``asyncio.timeout``: at the deadline the task is cancelled and, on leaving the scope,
    `CallTimeoutError` (a builtin `TimeoutError`) is raised; a cancellation from outside still
    cancels. Inside, `remaining()` tells the time left (the tighter of this and any enclosing
    deadline on the same clock).

    Args:
        seconds: Time allowed.
        clock: The clock the deadline is measured on (a `FakeClock` in tests).
        name: What is timed, for the error (a check's or probe's name).

    Returns:
        The scope; its ``expired`` attribute says whether the deadline was reached.
    """
    return ClockTimeout(seconds, clock, name)
