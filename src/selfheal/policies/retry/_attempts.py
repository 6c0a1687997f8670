"""The retry decision, written once for both drivers: what follows each failed attempt.

`Attempts` is one call's progress once an attempt has failed. The driver tells it how each
attempt ended (`failed`, `accepts`) and asks `next_delay` what comes next: seconds to wait
before the next attempt, or the error that ends the call. Whether the failure is retryable,
the backoff or the server's hint, the stop conditions, an enclosing deadline, the budget, test
mode and the events are all decided here, with no I/O and no waiting: the sync driver sleeps
on the clock, the async one awaits it, and that is their only difference (stamina's
``_core.py`` serves its two front ends from one attempt iterator the same way).

It also records the call in the policy's `RetryStatistics`: every front end reports each
outcome here, so the counters mean the same for all of them.

Nothing here runs on the success path: an `Attempts` is made only after a failure.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from selfheal._deadline import DEADLINE
from selfheal.errors import PolicyError
from selfheal.events import Severity
from selfheal.policies.retry._testing import current_mode

if TYPE_CHECKING:
    from selfheal.policies.retry._policy import Retry

__all__ = ["Attempts", "RetryError"]


class RetryError(PolicyError):
    """Raised when a retry gives up; the last failure is its ``__cause__``.

    Attributes:
        name: The retry's name.
        attempts: How many attempts were made.
        reason: Why it gave up: ``"attempts"``, ``"deadline"``, ``"stop"`` or ``"budget"``.
        last_exception: The last attempt's exception, or None if it returned a rejected result.
        last_result: The last attempt's result when `retry_on_result` rejected it, else None.
    """

    def __init__(
        self,
        name: str,
        attempts: int,
        reason: str,
        last_exception: BaseException | None,
        last_result: Any = None,
    ) -> None:
        last = repr(last_exception) if last_exception is not None else f"result {last_result!r}"
        super().__init__(f"retry {name!r} gave up after {attempts} attempt(s) ({reason}): {last}")
        self.name = name
        self.attempts = attempts
        self.reason = reason
        self.last_exception = last_exception
        self.last_result = last_result

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from the fields (not the message), so it crosses process pools intact.
        args = (self.name, self.attempts, self.reason, self.last_exception, self.last_result)
        return (type(self), args)


def _verdict_wait(verdict: object) -> float | None:
    """Return the wait a predicate of `on` asked for, or None for the usual backoff.

    As stamina's backoff hooks: a number (not a bool) or a `timedelta` is the wait in seconds
    (negative counts as 0); True, or any other true value, retries after the backoff. A wait
    that is not finite is ignored (the backoff applies), so a bad hook cannot sleep forever.
    """
    if isinstance(verdict, timedelta):
        verdict = verdict.total_seconds()
    if isinstance(verdict, int | float) and not isinstance(verdict, bool):
        return max(0.0, float(verdict)) if math.isfinite(verdict) else None
    return None


class Attempts:
    """One call's attempts after a failure: records outcomes, decides what follows.

    Args:
        policy: The retry whose options decide.
        name: The name in events and errors.
        start: Monotonic time of the first attempt (time-based stops count from it).
        exc: The first attempt's exception, or None if its result was rejected.
        result: The first attempt's rejected result (when `exc` is None).

    Attributes:
        attempt: The number of the attempt that failed last (1 for the first call).
        delay: The wait before that attempt (0.0 before the first).
        idle: The seconds waited so far, between all the attempts.
    """

    __slots__ = ("_exc", "_policy", "_result", "attempt", "delay", "idle", "name", "start")

    def __init__(
        self,
        policy: Retry,
        name: str,
        start: float,
        exc: BaseException | None,
        result: Any = None,
    ) -> None:
        self._policy = policy
        self.name = name
        self.start = start
        self._exc = exc
        self._result = result
        self.attempt = 1
        self.delay = self.idle = 0.0

    def failed(self, exc: BaseException) -> None:
        """Record that the attempt just made raised `exc` (one of the types the retry catches)."""
        self._exc, self._result = exc, None
        self.attempt += 1

    def accepts(self, result: Any) -> bool:
        """Return whether `result`, of the attempt just made, ends the call.

        A result `retry_on_result` rejects is recorded as that attempt's failure.
        """
        on_result = self._policy.retry_on_result
        if on_result is None or not on_result(result):
            self.succeeded()
            return True
        self._exc, self._result = None, result
        self.attempt += 1
        return False

    def succeeded(self) -> None:
        """Record that the attempt just made ended the call well."""
        self._end(succeeded=True, gave_up=False, attempts=self.attempt + 1)

    def raised(self) -> None:
        """Record that the attempt just made raised an error the retry does not catch."""
        self._end(succeeded=False, gave_up=False, attempts=self.attempt + 1)

    def _end(self, *, succeeded: bool, gave_up: bool, attempts: int) -> None:
        policy = self._policy
        policy.statistics.record_end(
            succeeded=succeeded,
            gave_up=gave_up,
            attempts=attempts,
            start=self.start,
            end=policy.clock.monotonic(),
            idle=self.idle,
        )

    def next_delay(self) -> float:
        """Decide what follows the failed attempt: the wait before the next one, or an error.

        Returns:
            Seconds to wait (0.0 for none) before the next attempt.

        Raises:
            BaseException: The failure itself when it is not retryable or ``reraise`` is set,
                else `RetryError` (from the failure) when the retry gives up.
        """
        policy, exc = self._policy, self._exc
        predicate = policy._predicate
        wait = None
        if exc is not None and predicate is not None:
            verdict = predicate(exc)
            wait = _verdict_wait(verdict)
            if wait is None and not verdict:
                self._end(succeeded=False, gave_up=False, attempts=self.attempt)
                raise exc
        plan = self._plan(policy, exc, wait)
        if isinstance(plan, str):
            self._end(succeeded=False, gave_up=True, attempts=self.attempt)
            error = self._gave_up(policy, plan)
            if error is exc:
                raise exc
            raise error from exc
        self.delay = plan
        self.idle += plan
        policy.statistics.record_retry()
        self._retrying(policy, plan)
        return plan

    def _plan(  # noqa: PLR0911 - one return per reason to give up
        self, policy: Retry, exc: BaseException | None, wait: float | None
    ) -> float | str:
        """Return the wait before the next attempt, or why to give up (a str).

        `wait` is the one `on`'s predicate asked for; else the hint's, else the backoff's.
        """
        attempt, clock = self.attempt, policy.clock
        mode = current_mode()
        if not mode.active or (mode.enabled and attempt >= mode.attempts):
            return "attempts"
        if mode.enabled and not mode.cap:
            return 0.0  # exactly mode.attempts: the policy's own stops do not count
        hint = policy.hint
        hinted = wait
        if hinted is None and exc is not None and hint is not None:
            hinted = hint(exc)
        delay = policy.backoff.delay(attempt, self.delay) if hinted is None else hinted
        elapsed = clock.monotonic() - self.start
        if policy._stop(attempt, elapsed, delay):
            if policy.attempts is not None and attempt >= policy.attempts:
                return "attempts"
            if policy.deadline is not None and elapsed + delay >= policy.deadline:
                return "deadline"
            return "stop"
        # An enclosing deadline (an outer Timeout, another retry's) binds this retry too:
        # a sync Timeout only publishes it, and an async one would cut the sleep short.
        scope = DEADLINE.get()
        if (
            scope is not None
            and scope.clock is clock
            and clock.monotonic() + delay >= scope.deadline
        ):
            return "deadline"
        if policy.budget is not None and not policy.budget.try_withdraw():
            return "budget"
        return 0.0 if mode.enabled else delay

    def _error_text(self) -> str:
        return repr(self._exc) if self._exc is not None else f"result {self._result!r}"

    def _retrying(self, policy: Retry, delay: float) -> None:
        bus, name = policy.bus, self.name
        topic = f"retry.{name}.retrying"
        if bus is not None and bus.has_subscribers(topic):
            error = self._error_text()
            bus.emit(topic, name, Severity.INFO, attempt=self.attempt, delay=delay, error=error)

    def _gave_up(self, policy: Retry, reason: str) -> BaseException:
        bus, name, attempt = policy.bus, self.name, self.attempt
        if bus is not None:
            if reason == "budget":
                bus.emit(f"retry.{name}.budget_exhausted", name, Severity.WARNING, attempt=attempt)
            bus.emit(
                f"retry.{name}.gave_up",
                name,
                Severity.ERROR,
                attempts=attempt,
                reason=reason,
                error=self._error_text(),
            )
        if policy.reraise and self._exc is not None:
            return self._exc
        return RetryError(name, attempt, reason, self._exc, self._result)
