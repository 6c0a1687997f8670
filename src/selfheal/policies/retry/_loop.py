"""The loop form of a retry, for a block of code rather than a function.

::

    for attempt in selfheal.retrying(on=ConnectionError, attempts=5):
        with attempt:
            rows = db.execute(query)

    async for attempt in selfheal.retrying(on=ConnectionError):
        with attempt:
            await client.get(url)

``with attempt:`` records how the block ended (and keeps a retryable error from leaving it);
the iterator then asks `Attempts`, the decision core the decorators use too, what follows:
the next attempt after a wait on the clock, the end of the loop, or the error that ends the
call. There is no loop of ours here: the ``for`` is the caller's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextvars import Token
from types import TracebackType
from typing import TYPE_CHECKING

from selfheal._deadline import DEADLINE, _Scope, tighter
from selfheal.policies.retry._attempts import Attempts
from selfheal.policies.retry._statistics import RetryStatistics

if TYPE_CHECKING:
    from selfheal.policies.retry._policy import Retry

__all__ = ["RetryAttempt", "RetryLoop"]

_NEW, _RUNNING, _DONE = 0, 1, 2


class RetryLoop:
    """Retries a block of code: ``for attempt in loop: with attempt: ...`` (or ``async for``).

    Made by `selfheal.retrying` or `Retry.retrying`. Each ``for`` over it is a new call of the
    block under its policy: the same waits, stops, deadline, budget, test mode and events as
    the decorator, and the same way to give up.

    Attributes:
        policy: The `Retry` that decides.
        name: The name in events and errors.
    """

    __slots__ = ("name", "policy")

    def __init__(self, policy: Retry, name: str) -> None:
        self.policy = policy
        self.name = name

    def __repr__(self) -> str:
        return f"RetryLoop({self.policy!r}, name={self.name!r})"

    @property
    def statistics(self) -> RetryStatistics:
        """Return the policy's statistics, which count every run of this loop."""
        return self.policy.statistics

    def __iter__(self) -> Iterator[RetryAttempt]:
        return _Run(self.policy, self.name)

    def __aiter__(self) -> AsyncIterator[RetryAttempt]:
        return _Run(self.policy, self.name)


class RetryAttempt:
    """One attempt of a `RetryLoop`; ``with attempt:`` goes around the code to retry.

    Attributes:
        number: 1 for the first attempt.
        delay: The seconds waited before this attempt (0.0 before the first).
    """

    __slots__ = ("_run", "_state", "_token", "delay", "number")

    def __init__(self, run: _Run, number: int, delay: float) -> None:
        self._run = run
        self.number = number
        self.delay = delay
        self._state = _NEW
        self._token: Token[_Scope | None] | None = None

    def __repr__(self) -> str:
        return f"RetryAttempt(number={self.number}, delay={self.delay!r})"

    def __enter__(self) -> RetryAttempt:
        if self._state != _NEW:
            raise RuntimeError(
                f"retrying(): attempt {self.number} was already used; each attempt is one "
                "'with attempt:' block"
            )
        self._state = _RUNNING
        policy = self._run.policy
        if policy.deadline is not None:
            # Published per attempt, so that it is set and reset in the caller's own context.
            scope = tighter(self._run.start + policy.deadline, policy.clock)
            self._token = DEADLINE.set(scope)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        self._state = _DONE
        if self._token is not None:
            DEADLINE.reset(self._token)
            self._token = None
        return self._run.ended(exc)


class _Run:
    """One run of a loop: its attempts so far, stepping both ``for`` and ``async for``."""

    __slots__ = ("_attempts", "_current", "_failed", "name", "policy", "start")

    def __init__(self, policy: Retry, name: str) -> None:
        self.policy = policy
        self.name = name
        self.start = policy.clock.monotonic()
        if policy.budget is not None:
            policy.budget.deposit()
        self._attempts: Attempts | None = None
        self._current: RetryAttempt | None = None
        self._failed: BaseException | None = None

    def ended(self, exc: BaseException | None) -> bool:
        """Record how the current attempt's block ended; return True to swallow `exc`."""
        attempts = self._attempts
        if exc is None:
            if attempts is None:
                self.policy.statistics.first_try()
            else:
                attempts.succeeded()
            return False
        if isinstance(exc, self.policy._catch):
            self._failed = exc  # judged (retry, or give up with it) when the loop moves on
            return True
        if isinstance(exc, Exception):
            if attempts is None:
                self.policy.statistics.record_error()
            else:
                attempts.raised()
        return False

    def _step(self) -> float | None:
        """Decide what follows the current attempt: None to end the loop, else the wait.

        Raises:
            BaseException: The failure, or `RetryError`, when the retry gives up.
        """
        current = self._current
        if current is None:
            return 0.0
        if current._state != _DONE:
            raise RuntimeError(
                f"retrying(): attempt {current.number} was not used; put the code to retry "
                "inside 'with attempt:' in the loop's body"
            )
        exc, self._failed = self._failed, None
        if exc is None:
            return None
        attempts = self._attempts
        if attempts is None:
            attempts = self._attempts = Attempts(self.policy, self.name, self.start, exc)
        else:
            attempts.failed(exc)
        return attempts.next_delay()

    def _next(self, delay: float) -> RetryAttempt:
        number = 1 if self._current is None else self._current.number + 1
        self._current = RetryAttempt(self, number, delay)
        return self._current

    def __iter__(self) -> _Run:
        return self

    def __next__(self) -> RetryAttempt:
        delay = self._step()
        if delay is None:
            raise StopIteration
        if delay > 0:
            self.policy.clock.sleep(delay)
        return self._next(delay)

    def __aiter__(self) -> _Run:
        return self

    async def __anext__(self) -> RetryAttempt:
        delay = self._step()
        if delay is None:
            raise StopAsyncIteration
        if delay > 0:
            await self.policy.clock.asleep(delay)
        return self._next(delay)
