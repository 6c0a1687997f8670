"""Bulkhead: cap how many calls run at once, so one slow dependency cannot take every worker.

At most `max_concurrent` calls run; up to `max_waiting` more wait (first come, first served)
for a slot, at most `wait_timeout` seconds; every other call is rejected at once with
`BulkheadFullError`. One bulkhead can be shared by threads and asyncio tasks alike: the
counters live behind one lock that is never held while a protected call runs.

Every front end (the sync and async wrappers, ``with`` and ``async with``) takes the same
steps: `_admit` a call (a slot, a place in the queue, or a refusal), wait if queued, run the
call, `_release` the slot. Only the wait differs: a thread blocks on an event, a task awaits a
future (and the clock, for the wait's limit).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock, SystemClock
from selfheal.errors import PolicyError
from selfheal.events import EventBus, Severity
from selfheal.policies._base import Policy
from selfheal.policies._checks import check_int, check_number
from selfheal.policies._naming import check_name, name_of

__all__ = ["Bulkhead", "BulkheadFullError"]

P = ParamSpec("P")
R = TypeVar("R")


class BulkheadFullError(PolicyError):
    """A call was turned away: all slots busy and the waiting room full (or the wait too long).

    Attributes:
        name: The bulkhead's name.
        max_concurrent: Its number of slots.
        max_waiting: Its number of waiting places.
        reason: ``"full"`` (turned away at once) or ``"wait_timeout"`` (waited in vain).
    """

    def __init__(self, name: str, max_concurrent: int, max_waiting: int, reason: str) -> None:
        what = "waited too long for a slot" if reason == "wait_timeout" else "is full"
        super().__init__(
            f"bulkhead {name!r} {what} ({max_concurrent} running, {max_waiting} waiting allowed)"
        )
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.max_concurrent, self.max_waiting, self.reason))


class _SyncWaiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event = threading.Event()
        self.granted = False


class _AsyncWaiter:
    __slots__ = ("future", "granted", "loop")

    def __init__(self) -> None:
        # Built only inside a task, when the call must queue: the fast path never looks it up.
        self.loop = asyncio.get_running_loop()
        self.future: asyncio.Future[None] = self.loop.create_future()
        self.granted = False


W = TypeVar("W", _SyncWaiter, _AsyncWaiter)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@checked_keywords
class Bulkhead(Policy):
    """At most `max_concurrent` calls at once, `max_waiting` more queued, the rest rejected.

    Use it as a decorator, in a pipeline, or around a block (``with bulkhead:`` /
    ``async with bulkhead:``).

    Args:
        max_concurrent: Calls allowed to run at the same time (at least 1).
        max_waiting: Calls allowed to wait for a slot; 0 rejects as soon as all slots are busy.
        wait_timeout: Longest wait for a slot in seconds, None for no limit.
        clock: Measures the wait (async waits sleep on it, so `FakeClock` drives them).
        bus: Receives ``bulkhead.<name>.rejected``.
        name: The name in event types; defaults to the wrapped function's name.

    Raises:
        ValueError: If a limit is out of range.
    """

    __slots__ = (
        "_active",
        "_lock",
        "_waiters",
        "bus",
        "clock",
        "max_concurrent",
        "max_waiting",
        "name",
        "wait_timeout",
    )

    def __init__(
        self,
        max_concurrent: int,
        max_waiting: int = 0,
        wait_timeout: float | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        name: str | None = None,
    ) -> None:
        check_int("Bulkhead", "max_concurrent", max_concurrent, 1)
        check_int("Bulkhead", "max_waiting", max_waiting, 0)
        check_number("Bulkhead", "wait_timeout", wait_timeout, unit="seconds", none_ok=True)
        check_name("Bulkhead", name)
        self.max_concurrent = max_concurrent
        self.max_waiting = max_waiting
        self.wait_timeout = wait_timeout
        self.clock = clock
        self.bus = bus
        self.name = name
        self._lock = threading.Lock()
        self._active = 0
        self._waiters: deque[_SyncWaiter | _AsyncWaiter] = deque()

    def __repr__(self) -> str:
        return (
            f"Bulkhead(max_concurrent={self.max_concurrent}, max_waiting={self.max_waiting}, "
            f"wait_timeout={self.wait_timeout!r})"
        )

    @property
    def active(self) -> int:
        """Return how many calls hold a slot now."""
        return self._active

    @property
    def waiting(self) -> int:
        """Return how many calls wait for a slot now."""
        return len(self._waiters)

    def _reject(self, name: str, reason: str) -> BulkheadFullError:
        if self.bus is not None:
            self.bus.emit(
                f"bulkhead.{name}.rejected",
                name,
                Severity.WARNING,
                reason=reason,
                max_concurrent=self.max_concurrent,
                max_waiting=self.max_waiting,
            )
        return BulkheadFullError(name, self.max_concurrent, self.max_waiting, reason)

    def _release(self) -> None:
        """Give the slot to the first waiter, or free it."""
        with self._lock:
            while self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                if isinstance(waiter, _SyncWaiter):
                    waiter.event.set()
                    return
                if not waiter.loop.is_closed():
                    # The slot passes straight to the waiter: `_active` stays the same.
                    waiter.loop.call_soon_threadsafe(_resolve, waiter.future)
                    return
            self._active -= 1

    def _admit(self, name: str, make_waiter: Callable[[], W]) -> W | None:
        """Take a slot (None), or a place in the queue (the waiter to wait on), or refuse.

        Raises:
            BulkheadFullError: With reason ``"full"`` when there is neither.
        """
        with self._lock:
            if self._active < self.max_concurrent:
                self._active += 1
                return None
            if len(self._waiters) < self.max_waiting and self.wait_timeout != 0:
                waiter = make_waiter()
                self._waiters.append(waiter)
                return waiter
        raise self._reject(name, "full")

    def _abandon(self, waiter: _SyncWaiter | _AsyncWaiter) -> bool:
        """Leave the queue; return False if a slot was already granted (caller owns it)."""
        with self._lock:
            if waiter.granted:
                return False
            self._waiters.remove(waiter)
            return True

    def _wait_sync(self, waiter: _SyncWaiter, name: str) -> None:
        try:
            granted = self._block(waiter)
        except BaseException:
            # Interrupted while waiting (KeyboardInterrupt, an error from the clock): leave
            # the queue, or hand on a slot granted meanwhile, or the slot is lost for good.
            if not self._abandon(waiter):
                self._release()
            raise
        if not granted and self._abandon(waiter):
            raise self._reject(name, "wait_timeout")
        # Otherwise granted, possibly just as the wait ran out: the slot is ours.

    def _block(self, waiter: _SyncWaiter) -> bool:
        """Wait for `waiter` to be granted a slot; return False if `wait_timeout` ran out."""
        timeout = self.wait_timeout
        if timeout is None:
            return waiter.event.wait()
        if isinstance(self.clock, SystemClock):
            return waiter.event.wait(timeout)
        # A thread can only block on real time: poll so that another clock decides the end.
        deadline = self.clock.monotonic() + timeout
        while not waiter.event.wait(0.005):
            if self.clock.monotonic() >= deadline:
                return False
        return True

    async def _wait_async(self, waiter: _AsyncWaiter, name: str) -> None:
        timeout = self.wait_timeout
        try:
            if timeout is None:
                await waiter.future
                return
            sleeper = asyncio.ensure_future(self.clock.asleep(timeout))
            try:
                await asyncio.wait((waiter.future, sleeper), return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
            if waiter.future.done() or not self._abandon(waiter):
                return  # granted, possibly just as the wait ran out: the slot is ours
        except BaseException:
            # Cancelled while waiting: leave the queue, or hand on a slot granted meanwhile.
            if not self._abandon(waiter):
                self._release()
            raise
        raise self._reject(name, "wait_timeout")

    # -- the front ends: admit, wait if queued (the only difference), call, release --------

    # As a context manager the bulkhead guards a block; events use its name or "bulkhead".
    def __enter__(self) -> Bulkhead:
        waiter = self._admit(self.name or "bulkhead", _SyncWaiter)
        if waiter is not None:
            self._wait_sync(waiter, self.name or "bulkhead")
        return self

    def __exit__(self, *exc: object) -> None:
        self._release()

    async def __aenter__(self) -> Bulkhead:
        waiter = self._admit(self.name or "bulkhead", _AsyncWaiter)
        if waiter is not None:
            await self._wait_async(waiter, self.name or "bulkhead")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release()

    # The wrappers write out the uncontended path, a slot taken and freed under the lock,
    # sync and async alike. Calling `_admit` and `_release` for it instead cost 13% more
    # (sync) and 11% more (async) instructions per call on `bench/policies.py`'s bulkhead
    # cases (valgrind counts: 6,688 against 5,932 and 7,368 against 6,665; timings on the
    # shared benchmark machine wander more than that). Everything else takes the steps above.

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return `fn` admitted through this bulkhead (threads)."""
        name = name_of(self.name, fn)
        lock, limit, waiters = self._lock, self.max_concurrent, self._waiters
        admit, wait, release = self._admit, self._wait_sync, self._release

        def bulkheaded(*args: P.args, **kwargs: P.kwargs) -> R:
            with lock:
                admitted = self._active < limit
                if admitted:
                    self._active += 1
            if not admitted:
                waiter = admit(name, _SyncWaiter)
                if waiter is not None:
                    wait(waiter, name)
            try:
                return fn(*args, **kwargs)
            finally:
                with lock:
                    free = not waiters
                    if free:
                        self._active -= 1
                if not free:
                    release()

        return bulkheaded

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return `fn` admitted through this bulkhead (asyncio tasks)."""
        name = name_of(self.name, fn)
        lock, limit, waiters = self._lock, self.max_concurrent, self._waiters
        admit, wait, release = self._admit, self._wait_async, self._release

        async def bulkheaded(*args: P.args, **kwargs: P.kwargs) -> R:
            with lock:
                admitted = self._active < limit
                if admitted:
                    self._active += 1
            if not admitted:
                waiter = admit(name, _AsyncWaiter)
                if waiter is not None:
                    await wait(waiter, name)
            try:
                return await fn(*args, **kwargs)
            finally:
                with lock:
                    free = not waiters
                    if free:
                        self._active -= 1
                if not free:
                    release()

        return bulkheaded
