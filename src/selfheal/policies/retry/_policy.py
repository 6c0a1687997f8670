"""Retry: run a call again when it fails transiently.

The pieces are small frozen objects that compose: a `Backoff` says how long to wait before
the next attempt (``ConstantBackoff(1) + RandomJitter(0, 0.5)``), a `Stop` says when to give
up (``StopAfterAttempts(5) | StopAfterDelay(30)``), and a `RetryBudget` shared by many calls
caps the extra load retries may add, so that an outage does not turn into a retry storm.

`Retry` puts them together into a `Policy` (built by `retry`, in `_entry`)::

    @selfheal.retry(on=ConnectionError, attempts=5, backoff=ExponentialBackoff(max=30))
    def fetch_user(user_id: int) -> User: ...

This module holds the decorators' front ends; what follows a failure is decided in
`_attempts`, once for them and for the loop form (`_loop`). The success path is one ``try``
around the call and one count.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import Token
from typing import Any, ParamSpec, TypeAlias, TypeVar

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._deadline import DEADLINE, _Scope, tighter
from selfheal.events import EventBus
from selfheal.policies._base import Policy
from selfheal.policies._checks import check_int, check_number
from selfheal.policies._naming import check_name, name_of
from selfheal.policies.retry._attempts import Attempts
from selfheal.policies.retry._backoff import Backoff, ConstantBackoff, ExponentialBackoff
from selfheal.policies.retry._budget import RetryBudget
from selfheal.policies.retry._hints import HintExtractor, retry_after_hint
from selfheal.policies.retry._loop import RetryLoop
from selfheal.policies.retry._migration import check_options, stop_error
from selfheal.policies.retry._statistics import RetryStatistics
from selfheal.policies.retry._stop import Stop, StopAfterAttempts, StopAtDeadline, any_of

__all__ = ["Retry", "RetryOn"]

P = ParamSpec("P")
R = TypeVar("R")

ExceptionTypes: TypeAlias = type[BaseException] | tuple[type[BaseException], ...]
RetryOn: TypeAlias = ExceptionTypes | Callable[[BaseException], object]

#: 0.1 s doubling up to 5 s; one frozen instance serves every retry built with the default.
DEFAULT_BACKOFF: Backoff = ExponentialBackoff()


def _exception_types(on: RetryOn) -> tuple[tuple[type[BaseException], ...], Any]:
    """Split `on` into the exception types to catch and an optional predicate."""
    if isinstance(on, type) and issubclass(on, BaseException):
        return (on,), None
    if isinstance(on, tuple) and on:
        bad = [t for t in on if not (isinstance(t, type) and issubclass(t, BaseException))]
        if not bad:
            return on, None
    elif callable(on) and not isinstance(on, type):
        return (Exception,), on
    raise TypeError(
        "retry: on must be an exception type, a non-empty tuple of exception types, or a "
        f"predicate taking the exception, got {on!r}"
    )


@functools.partial(checked_keywords, check=check_options)
class Retry(Policy):
    """A retry policy; build it with `retry`, which documents the options.

    Attributes:
        statistics: How its calls fared (`RetryStatistics`); every function it decorates
            also carries it as ``fn.statistics``.
    """

    __slots__ = (
        "_catch",
        "_predicate",
        "_stop",
        "_timed",
        "attempts",
        "backoff",
        "budget",
        "bus",
        "clock",
        "deadline",
        "hint",
        "name",
        "on",
        "reraise",
        "retry_on_result",
        "statistics",
        "stop",
    )

    def __init__(
        self,
        *,
        on: RetryOn,
        attempts: int | None = 3,
        backoff: Backoff | float = DEFAULT_BACKOFF,
        deadline: float | None = None,
        stop: Stop | None = None,
        retry_on_result: Callable[[Any], bool] | None = None,
        hint: HintExtractor | None = retry_after_hint,
        budget: RetryBudget | None = None,
        reraise: bool = False,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        name: str | None = None,
    ) -> None:
        self._catch, self._predicate = _exception_types(on)
        check_int("retry", "attempts", attempts, 1, none_ok=True)
        if deadline is not None:
            check_number("retry", "deadline", deadline, positive=True)
        if attempts is None and deadline is None and stop is None:
            raise ValueError("retry: give at least one of attempts, deadline or stop")
        if isinstance(backoff, int | float):
            backoff = ConstantBackoff(backoff)
        if not isinstance(backoff, Backoff):
            raise TypeError(f"retry: backoff must be a Backoff or seconds, got {backoff!r}")
        if stop is not None and not isinstance(stop, Stop):
            raise TypeError(stop_error(stop))
        if budget is not None and not isinstance(budget, RetryBudget):
            raise TypeError(f"retry: budget must be a RetryBudget, got {budget!r}")
        if retry_on_result is not None and not callable(retry_on_result):
            raise TypeError(
                "retry: retry_on_result must be a callable taking the result (true means "
                f"retry it), or None, got {retry_on_result!r}"
            )
        if hint is not None and not callable(hint):
            raise TypeError(
                "retry: hint must be a callable taking the exception and returning seconds "
                f"or None (like retry_after_hint), or None, got {hint!r}"
            )
        check_name("retry", name)
        self.on = on
        self.attempts = attempts
        self.backoff = backoff
        self.deadline = deadline
        self.stop = stop
        self.retry_on_result = retry_on_result
        self.hint = hint
        self.budget = budget
        self.reraise = reraise
        self.clock = clock
        self.bus = bus
        self.name = name
        stops: list[Stop] = []
        if attempts is not None:
            stops.append(StopAfterAttempts(attempts))
        if deadline is not None:
            stops.append(StopAtDeadline(deadline))
        if stop is not None:
            stops.append(stop)
        self._stop = any_of(stops)
        # Only time-based stopping needs the start time of the first attempt.
        self._timed = deadline is not None or stop is not None
        self.statistics = RetryStatistics()

    def __repr__(self) -> str:
        parts = [f"on={self.on!r}", f"attempts={self.attempts!r}", f"backoff={self.backoff!r}"]
        if self.deadline is not None:
            parts.append(f"deadline={self.deadline!r}")
        if self.stop is not None:
            parts.append(f"stop={self.stop!r}")
        if self.budget is not None:
            parts.append(f"budget={self.budget!r}")
        if self.name is not None:
            parts.append(f"name={self.name!r}")
        return f"Retry({', '.join(parts)})"

    def retrying(self, *, name: str | None = None) -> RetryLoop:
        """Return a loop that retries a block of code under this policy (see `retrying`).

        Args:
            name: The name in events and errors; defaults to the policy's, else ``"block"``.

        Raises:
            TypeError: If the policy has a `retry_on_result`: a block has no result.
        """
        if self.retry_on_result is not None:
            raise TypeError(
                "retrying(): this policy has retry_on_result=, but a with-block has no result "
                "to look at; check it inside the block and raise an error that on= retries"
            )
        check_name("retrying", name)
        return RetryLoop(self, name or self.name or "block")

    def _attach(self, wrapper: Any) -> None:
        # After functools.wraps, which copied a retried function's own `statistics` onto it.
        wrapper.statistics = self.statistics

    def _begin(self) -> tuple[float, Token[_Scope | None] | None]:
        """Start a call that needs more than a ``try``: its start time, budget and deadline.

        Returns:
            The start time, and the token that unpublishes the retry's deadline (None when
            it has none).
        """
        clock = self.clock
        start = clock.monotonic() if self._timed else 0.0
        if self.budget is not None:
            self.budget.deposit()
        deadline = self.deadline
        if deadline is None:
            return start, None
        return start, DEADLINE.set(tighter(start + deadline, clock))

    # The front ends below write the first attempt out in full, sync and async: it is the
    # success path. Sending it through the attempt loop as well (an `Attempts` per call and
    # one loop for every attempt) measured about 1,200 ns of overhead per sync call against
    # 125, and 1,100 ns per async call against 300, on `bench/policies.py`'s retry cases;
    # with a deadline (its "retry, deadline" cases) about 1,400 ns against 1,100 per sync
    # call. After a failure both drivers take every decision from `Attempts`; they differ
    # only in how they call and wait.

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return `fn` retried under this policy (sync)."""
        name = name_of(self.name, fn)
        catch = self._catch
        monotonic = self.clock.monotonic
        on_result = self.retry_on_result
        again = self._again
        first_try, error = self.statistics.first_try, self.statistics.record_error

        if on_result is None and self.budget is None and not self._timed:
            # The common case gets the leanest wrapper: one try around the call.
            def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    result = fn(*args, **kwargs)
                except catch as exc:
                    failed = exc
                except Exception:
                    error()
                    raise
                else:
                    first_try()
                    return result
                # Retried outside the `except`, so later errors do not chain onto this one.
                return again(fn, args, kwargs, Attempts(self, name, monotonic(), failed))

            return retrying

        begin = self._begin

        def retrying_full(*args: P.args, **kwargs: P.kwargs) -> R:
            start, token = begin()
            try:
                try:
                    result = fn(*args, **kwargs)
                except catch as exc:
                    attempts = Attempts(self, name, start, exc)
                except Exception:
                    error()
                    raise
                else:
                    if on_result is None or not on_result(result):
                        first_try()
                        return result
                    attempts = Attempts(self, name, start, None, result)
                # Retried outside the `except`, so later errors do not chain onto this one.
                return again(fn, args, kwargs, attempts)
            finally:
                if token is not None:
                    DEADLINE.reset(token)

        return retrying_full

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return `fn` retried under this policy (async)."""
        name = name_of(self.name, fn)
        catch = self._catch
        monotonic = self.clock.monotonic
        on_result = self.retry_on_result
        again = self._aagain
        first_try, error = self.statistics.first_try, self.statistics.record_error

        if on_result is None and self.budget is None and not self._timed:

            async def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    result = await fn(*args, **kwargs)
                except catch as exc:
                    failed = exc
                except Exception:
                    error()
                    raise
                else:
                    first_try()
                    return result
                # Retried outside the `except`, so later errors do not chain onto this one.
                return await again(fn, args, kwargs, Attempts(self, name, monotonic(), failed))

            return retrying

        begin = self._begin

        async def retrying_full(*args: P.args, **kwargs: P.kwargs) -> R:
            start, token = begin()
            try:
                try:
                    result = await fn(*args, **kwargs)
                except catch as exc:
                    attempts = Attempts(self, name, start, exc)
                except Exception:
                    error()
                    raise
                else:
                    if on_result is None or not on_result(result):
                        first_try()
                        return result
                    attempts = Attempts(self, name, start, None, result)
                # Retried outside the `except`, so later errors do not chain onto this one.
                return await again(fn, args, kwargs, attempts)
            finally:
                if token is not None:
                    DEADLINE.reset(token)

        return retrying_full

    # The two drivers: `attempts` decides after every failure; they only call and wait.

    def _again(self, fn: Callable[..., R], args: Any, kwargs: Any, attempts: Attempts) -> R:
        """Retry after a failed attempt until one is accepted or `attempts` gives up (sync)."""
        catch, sleep = self._catch, self.clock.sleep
        while True:
            delay = attempts.next_delay()
            if delay > 0:
                sleep(delay)
            try:
                result = fn(*args, **kwargs)
            except catch as exc:
                attempts.failed(exc)
                continue
            except Exception:
                attempts.raised()
                raise
            if attempts.accepts(result):
                return result

    async def _aagain(
        self, fn: Callable[..., Awaitable[R]], args: Any, kwargs: Any, attempts: Attempts
    ) -> R:
        """Retry after a failed attempt until one is accepted or `attempts` gives up (async)."""
        catch, sleep = self._catch, self.clock.asleep
        while True:
            delay = attempts.next_delay()
            if delay > 0:
                await sleep(delay)
            try:
                result = await fn(*args, **kwargs)
            except catch as exc:
                attempts.failed(exc)
                continue
            except Exception:
                attempts.raised()
                raise
            if attempts.accepts(result):
                return result
