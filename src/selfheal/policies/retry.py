"""Retry: run a call again when it fails transiently.

The pieces are small frozen objects that compose: a `Backoff` says how long to wait before
the next attempt (``ConstantBackoff(1) + RandomJitter(0, 0.5)``), a `Stop` says when to give
up (``StopAfterAttempts(5) | StopAfterDelay(30)``), and a `RetryBudget` shared by many calls
caps the extra load retries may add, so that an outage does not turn into a retry storm.

`retry` puts them together into a `Policy`::

    @selfheal.retry(on=ConnectionError, attempts=5, backoff=ExponentialBackoff(max=30))
    def fetch_user(user_id: int) -> User: ...

The success path is one ``try`` around the call; everything else runs only after a failure.
"""

from __future__ import annotations

import math
import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, ParamSpec, TypeAlias, TypeVar

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._deadline import DEADLINE, tighter
from selfheal.errors import PolicyError
from selfheal.events import EventBus, Severity
from selfheal.policies._base import Policy
from selfheal.policies._naming import check_name, name_of

__all__ = [
    "Backoff",
    "ConstantBackoff",
    "DecorrelatedJitter",
    "ExponentialBackoff",
    "LinearBackoff",
    "RandomJitter",
    "Retry",
    "RetryBudget",
    "RetryError",
    "Stop",
    "StopAfterAttempts",
    "StopAfterDelay",
    "StopAtDeadline",
    "is_testing",
    "retry",
    "retry_after_hint",
    "set_testing",
]

P = ParamSpec("P")
R = TypeVar("R")

ExceptionTypes: TypeAlias = type[BaseException] | tuple[type[BaseException], ...]
RetryOn: TypeAlias = ExceptionTypes | Callable[[BaseException], bool]
HintExtractor: TypeAlias = Callable[[BaseException], float | None]


# --------------------------------------------------------------------------- test mode


@dataclass(frozen=True, slots=True)
class _TestMode:
    enabled: bool = False
    attempts: int = 1


# Naughty but it is what users' test suites need: one switch for every retry in the process.
_test_mode = _TestMode()


def set_testing(enabled: bool, *, attempts: int = 1) -> None:
    """Switch the process-wide retry test mode on or off.

    In test mode retries never sleep and every retry makes at most `attempts` attempts, so a
    test of code that retries runs at full speed.

    Args:
        enabled: Whether test mode is on.
        attempts: The cap on attempts per call while test mode is on (at least 1).

    Raises:
        ValueError: If `attempts` is less than 1.
    """
    global _test_mode  # noqa: PLW0603 - the documented process-wide switch
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
        raise ValueError(f"set_testing: attempts must be an int >= 1, got {attempts!r}")
    _test_mode = _TestMode(bool(enabled), attempts)


def is_testing() -> bool:
    """Return whether the retry test mode is on (see `set_testing`)."""
    return _test_mode.enabled


# --------------------------------------------------------------------------- backoff


def _check(owner: str, name: str, value: float, *, positive: bool = False) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < 0
    ):
        valid = "> 0" if positive else ">= 0"
        raise ValueError(f"{owner}: {name} must be a number {valid}, got {value!r}")
    if positive and value == 0:
        raise ValueError(f"{owner}: {name} must be a number > 0, got {value!r}")


def _uniform(rng: random.Random | None, low: float, high: float) -> float:
    return (rng or random).uniform(low, high)


class Backoff(ABC):
    """How long to wait before the next attempt; backoffs add up with ``+``."""

    __slots__ = ()

    @abstractmethod
    def delay(self, attempt: int, previous: float) -> float:
        """Return the seconds to wait after failed attempt number `attempt`.

        Args:
            attempt: The attempt that just failed, 1 for the first call.
            previous: The delay used before that attempt (0.0 after the first call).

        Returns:
            Seconds to wait, at least 0.
        """

    def __add__(self, other: Backoff | float) -> Backoff:
        right = ConstantBackoff(other) if isinstance(other, int | float) else other
        if not isinstance(right, Backoff):
            return NotImplemented
        left = self.parts if isinstance(self, _SumBackoff) else (self,)
        more = right.parts if isinstance(right, _SumBackoff) else (right,)
        return _SumBackoff((*left, *more))

    def __radd__(self, other: float) -> Backoff:
        if not isinstance(other, int | float):
            return NotImplemented
        return ConstantBackoff(other) + self


@dataclass(frozen=True, slots=True)
class _SumBackoff(Backoff):
    parts: tuple[Backoff, ...]

    def delay(self, attempt: int, previous: float) -> float:
        return sum(p.delay(attempt, previous) for p in self.parts)

    def __repr__(self) -> str:
        return " + ".join(map(repr, self.parts))


@dataclass(frozen=True, slots=True)
class ConstantBackoff(Backoff):
    """Wait the same time before every retry.

    Args:
        seconds: The wait.
    """

    seconds: float

    def __post_init__(self) -> None:
        _check("ConstantBackoff", "seconds", self.seconds)

    def delay(self, attempt: int, previous: float) -> float:
        """Return `seconds`."""
        return float(self.seconds)

    def __repr__(self) -> str:
        return f"ConstantBackoff({self.seconds!r})"


@dataclass(frozen=True, slots=True)
class LinearBackoff(Backoff):
    """Wait ``initial + increment * (attempt - 1)`` seconds, at most `max`.

    Args:
        initial: The first wait.
        increment: Added for each further attempt.
        max: The cap.
    """

    initial: float = 0.1
    increment: float = 0.1
    max: float = math.inf

    def __post_init__(self) -> None:
        for name in ("initial", "increment", "max"):
            _check("LinearBackoff", name, getattr(self, name))

    def delay(self, attempt: int, previous: float) -> float:
        """Return the linear wait for `attempt`, capped."""
        return float(min(self.max, self.initial + self.increment * (attempt - 1)))


@dataclass(frozen=True, slots=True)
class ExponentialBackoff(Backoff):
    """Wait ``initial * multiplier ** (attempt - 1)`` plus up to `jitter` seconds, at most `max`.

    Args:
        initial: The first wait.
        multiplier: The growth factor per attempt (at least 1).
        max: The cap, applied after the jitter, so no wait ever exceeds it.
        jitter: A random 0..`jitter` seconds added to spread out clients that failed together.
        rng: The random source of the jitter (for reproducible schedules); `random` if None.
    """

    initial: float = 0.1
    multiplier: float = 2.0
    max: float = 5.0
    jitter: float = 0.0
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("initial", "max", "jitter"):
            _check("ExponentialBackoff", name, getattr(self, name))
        if not isinstance(self.multiplier, int | float) or not self.multiplier >= 1:
            raise ValueError(
                f"ExponentialBackoff: multiplier must be a number >= 1, got {self.multiplier!r}"
            )

    def delay(self, attempt: int, previous: float) -> float:
        """Return the exponential wait for `attempt` with jitter, capped."""
        try:
            base = self.initial * self.multiplier ** (attempt - 1)
        except OverflowError:
            base = math.inf
        if self.jitter:
            base += _uniform(self.rng, 0.0, self.jitter)
        return float(min(self.max, base))


@dataclass(frozen=True, slots=True)
class DecorrelatedJitter(Backoff):
    """AWS's decorrelated jitter: a random wait between `initial` and 3x the previous one.

    Each wait is ``min(max, uniform(initial, previous * 3))``; the waits grow like an
    exponential backoff but clients that failed together drift apart.

    Args:
        initial: The smallest wait (and the first one's lower bound).
        max: The cap.
        rng: The random source (for reproducible schedules); `random` if None.
    """

    initial: float = 0.1
    max: float = 5.0
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check("DecorrelatedJitter", "initial", self.initial)
        _check("DecorrelatedJitter", "max", self.max)
        if self.max < self.initial:
            raise ValueError(
                f"DecorrelatedJitter: max ({self.max!r}) must be >= initial ({self.initial!r})"
            )

    def delay(self, attempt: int, previous: float) -> float:
        """Return a random wait in ``[initial, min(max, 3 * previous)]``."""
        high = max(self.initial, previous * 3.0)
        return float(min(self.max, _uniform(self.rng, self.initial, high)))


@dataclass(frozen=True, slots=True)
class RandomJitter(Backoff):
    """A random wait between `low` and `high`; add it to another backoff (``+``).

    Args:
        low: The smallest wait.
        high: The largest wait.
        rng: The random source; `random` if None.
    """

    low: float = 0.0
    high: float = 1.0
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check("RandomJitter", "low", self.low)
        _check("RandomJitter", "high", self.high)
        if self.high < self.low:
            raise ValueError(f"RandomJitter: high ({self.high!r}) must be >= low ({self.low!r})")

    def delay(self, attempt: int, previous: float) -> float:
        """Return a uniform random wait in ``[low, high]``."""
        return _uniform(self.rng, self.low, self.high)


# --------------------------------------------------------------------------- stop conditions


class Stop(ABC):
    """When to give up; conditions compose with ``|`` (either) and ``&`` (both)."""

    __slots__ = ()

    @abstractmethod
    def __call__(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        """Return whether to give up instead of making another attempt.

        Args:
            attempt: The number of attempts made so far.
            elapsed: Seconds since the first attempt started.
            next_delay: The wait planned before the next attempt.

        Returns:
            True to give up.
        """

    def __or__(self, other: Stop) -> Stop:
        if not isinstance(other, Stop):
            return NotImplemented
        return _AnyStop((self, other))

    def __and__(self, other: Stop) -> Stop:
        if not isinstance(other, Stop):
            return NotImplemented
        return _AllStop((self, other))


@dataclass(frozen=True, slots=True)
class _AnyStop(Stop):
    parts: tuple[Stop, ...]

    def __call__(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        return any(p(attempt, elapsed, next_delay) for p in self.parts)

    def __repr__(self) -> str:
        return "(" + " | ".join(map(repr, self.parts)) + ")"


@dataclass(frozen=True, slots=True)
class _AllStop(Stop):
    parts: tuple[Stop, ...]

    def __call__(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        return all(p(attempt, elapsed, next_delay) for p in self.parts)

    def __repr__(self) -> str:
        return "(" + " & ".join(map(repr, self.parts)) + ")"


@dataclass(frozen=True, slots=True)
class StopAfterAttempts(Stop):
    """Give up once `attempts` attempts (the first call included) have failed.

    Args:
        attempts: At least 1.
    """

    attempts: int

    def __post_init__(self) -> None:
        if (
            isinstance(self.attempts, bool)
            or not isinstance(self.attempts, int)
            or self.attempts < 1
        ):
            raise ValueError(
                f"StopAfterAttempts: attempts must be an int >= 1, got {self.attempts!r}"
            )

    def __call__(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        """Return whether `attempt` reached the limit."""
        return attempt >= self.attempts


@dataclass(frozen=True, slots=True)
class StopAfterDelay(Stop):
    """Give up once `seconds` have passed since the first attempt started.

    Args:
        seconds: The time budget.
    """

    seconds: float

    def __post_init__(self) -> None:
        _check("StopAfterDelay", "seconds", self.seconds)

    def __call__(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        """Return whether the time is up."""
        return elapsed >= self.seconds


@dataclass(frozen=True, slots=True)
class StopAtDeadline(Stop):
    """Give up when the next attempt could not start within `seconds` of the first one.

    Unlike `StopAfterDelay` this looks ahead: it never sleeps past the deadline.

    Args:
        seconds: The overall deadline, counted from the first attempt's start.
    """

    seconds: float

    def __post_init__(self) -> None:
        _check("StopAtDeadline", "seconds", self.seconds)

    def __call__(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        """Return whether waiting `next_delay` would pass the deadline."""
        return elapsed + next_delay >= self.seconds


# --------------------------------------------------------------------------- budget


class RetryBudget:
    """Caps retries at a ratio of the calls made, over a sliding window, shared by many calls.

    Every call deposits `ratio` tokens; every retry withdraws one. A retry is allowed while
    the window's balance ``ratio * calls + min_per_second * window - retries`` is at least 1,
    so in an outage retries add at most `ratio` extra load (plus the small reserve that lets
    a quiet service still retry). Finagle's retry budget, on an injected clock.

    Thread-safe; share one budget between all the retries that call the same dependency.

    Args:
        ratio: Extra load retries may add, e.g. 0.2 for at most 20% more calls.
        min_per_second: Retries always allowed per second of the window, whatever the traffic.
        window: Seconds of history that count.
        clock: The time source.
    """

    __slots__ = (
        "_buckets",
        "_calls",
        "_epoch",
        "_lock",
        "_retries",
        "_width",
        "clock",
        "min_per_second",
        "ratio",
        "window",
    )

    _BUCKETS: Final = 10

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_second: float = 1.0,
        window: float = 10.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        _check("RetryBudget", "ratio", ratio)
        _check("RetryBudget", "min_per_second", min_per_second)
        _check("RetryBudget", "window", window, positive=True)
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.window = float(window)
        self.clock = clock
        self._width = self.window / self._BUCKETS
        self._lock = threading.Lock()
        # Per bucket [calls, retries]; `_epoch` is the index of the newest bucket's time slot.
        self._buckets = [[0, 0] for _ in range(self._BUCKETS)]
        self._calls = 0
        self._retries = 0
        self._epoch = int(clock.monotonic() / self._width)

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio!r}, min_per_second={self.min_per_second!r}, "
            f"window={self.window!r})"
        )

    def _rotate(self) -> list[int]:
        # Caller holds the lock. Empties the buckets whose time slot left the window.
        epoch = int(self.clock.monotonic() / self._width)
        buckets = self._buckets
        if epoch != self._epoch:
            for slot in range(max(self._epoch + 1, epoch - self._BUCKETS + 1), epoch + 1):
                old = buckets[slot % self._BUCKETS]
                self._calls -= old[0]
                self._retries -= old[1]
                old[0] = old[1] = 0
            self._epoch = epoch
        return buckets[epoch % self._BUCKETS]

    def deposit(self) -> None:
        """Record one call (a first attempt)."""
        with self._lock:
            self._rotate()[0] += 1
            self._calls += 1

    def try_withdraw(self) -> bool:
        """Take one retry from the budget.

        Returns:
            True if the retry may go ahead, False if the budget is spent.
        """
        with self._lock:
            bucket = self._rotate()
            if self._balance() < 1.0:
                return False
            bucket[1] += 1
            self._retries += 1
            return True

    def _balance(self) -> float:
        # Caller holds the lock.
        return self.ratio * self._calls + self.min_per_second * self.window - self._retries

    @property
    def balance(self) -> float:
        """Return how many retries the budget would allow right now."""
        with self._lock:
            self._rotate()
            return self._balance()


# --------------------------------------------------------------------------- errors and hints


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


def retry_after_hint(exc: BaseException) -> float | None:
    """Read a server's Retry-After from an exception, the default `hint` of `retry`.

    Looks at the exception's ``retry_after`` attribute: seconds as a number, a numeric
    string (as in the HTTP header) or a `datetime.timedelta`.

    Args:
        exc: The exception the last attempt raised.

    Returns:
        Seconds to wait, or None when the exception carries no usable hint.
    """
    value = getattr(exc, "retry_after", None)
    if isinstance(value, timedelta):
        return max(0.0, value.total_seconds())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            return None  # an HTTP date: not ours to parse without a wall clock contract
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None


# --------------------------------------------------------------------------- the policy


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


class Retry(Policy):
    """A retry policy; build it with `retry`, which documents the options."""

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
        "stop",
    )

    def __init__(
        self,
        *,
        on: RetryOn,
        attempts: int | None = 3,
        backoff: Backoff | float = ExponentialBackoff(),
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
        if attempts is not None and (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ValueError(f"retry: attempts must be an int >= 1 or None, got {attempts!r}")
        if deadline is not None:
            _check("retry", "deadline", deadline, positive=True)
        if attempts is None and deadline is None and stop is None:
            raise ValueError("retry: give at least one of attempts, deadline or stop")
        if isinstance(backoff, int | float):
            backoff = ConstantBackoff(backoff)
        if not isinstance(backoff, Backoff):
            raise TypeError(f"retry: backoff must be a Backoff or seconds, got {backoff!r}")
        if stop is not None and not isinstance(stop, Stop):
            raise TypeError(f"retry: stop must be a Stop, got {stop!r}")
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
        self._stop: Stop = stops[0] if len(stops) == 1 else _AnyStop(tuple(stops))
        # Only time-based stopping needs the start time of the first attempt.
        self._timed = deadline is not None or stop is not None

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

    # The decision, shared by both drivers: no I/O, no waiting.
    def _plan(  # noqa: PLR0911 - one return per reason to give up
        self,
        attempt: int,
        previous: float,
        elapsed: float,
        exc: BaseException | None,
    ) -> float | str:
        """Return the wait before the next attempt, or why to give up (a str)."""
        mode = _test_mode
        if mode.enabled and attempt >= mode.attempts:
            return "attempts"
        hinted = self.hint(exc) if exc is not None and self.hint is not None else None
        delay = self.backoff.delay(attempt, previous) if hinted is None else hinted
        if self._stop(attempt, elapsed, delay):
            if self.attempts is not None and attempt >= self.attempts:
                return "attempts"
            if self.deadline is not None and elapsed + delay >= self.deadline:
                return "deadline"
            return "stop"
        # An enclosing deadline (an outer Timeout, another retry's) binds this retry too:
        # a sync Timeout only publishes it, and an async one would cut the sleep short.
        scope = DEADLINE.get()
        if (
            scope is not None
            and scope.clock is self.clock
            and self.clock.monotonic() + delay >= scope.deadline
        ):
            return "deadline"
        if self.budget is not None and not self.budget.try_withdraw():
            return "budget"
        return 0.0 if mode.enabled else delay

    def _retrying(
        self, name: str, attempt: int, delay: float, exc: BaseException | None, result: Any
    ) -> None:
        bus = self.bus
        topic = f"retry.{name}.retrying"
        if bus is not None and bus.has_subscribers(topic):
            error = repr(exc) if exc is not None else f"result {result!r}"
            bus.emit(topic, name, Severity.INFO, attempt=attempt, delay=delay, error=error)

    def _gave_up(
        self,
        name: str,
        attempt: int,
        reason: str,
        exc: BaseException | None,
        result: Any,
    ) -> BaseException:
        bus = self.bus
        if bus is not None:
            if reason == "budget":
                bus.emit(f"retry.{name}.budget_exhausted", name, Severity.WARNING, attempt=attempt)
            error = repr(exc) if exc is not None else f"result {result!r}"
            bus.emit(
                f"retry.{name}.gave_up",
                name,
                Severity.ERROR,
                attempts=attempt,
                reason=reason,
                error=error,
            )
        if self.reraise and exc is not None:
            return exc
        return RetryError(name, attempt, reason, exc, result)

    def _retryable(self, exc: BaseException) -> bool:
        predicate = self._predicate
        return predicate is None or bool(predicate(exc))

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return `fn` retried under this policy (sync)."""
        name = name_of(self.name, fn)
        catch = self._catch
        clock = self.clock
        on_result = self.retry_on_result
        budget = self.budget
        timed = self._timed
        deadline = self.deadline
        again = self._again_sync

        if on_result is None and budget is None and not timed:
            # The common case gets the leanest wrapper: one try around the call.
            def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    return fn(*args, **kwargs)
                except catch as exc:
                    failed = exc
                # Retried outside the `except`, so later errors do not chain onto this one.
                return again(fn, name, args, kwargs, failed, None, 0.0)

            return retrying

        def retrying_full(*args: P.args, **kwargs: P.kwargs) -> R:
            start = clock.monotonic() if timed else 0.0
            if budget is not None:
                budget.deposit()
            token = DEADLINE.set(tighter(start + deadline, clock)) if deadline else None
            try:
                try:
                    result = fn(*args, **kwargs)
                except catch as exc:
                    failed = exc
                else:
                    if on_result is None or not on_result(result):
                        return result
                    return again(fn, name, args, kwargs, None, result, start)
                # Retried outside the `except`, so later errors do not chain onto this one.
                return again(fn, name, args, kwargs, failed, None, start)
            finally:
                if token is not None:
                    DEADLINE.reset(token)

        return retrying_full

    def _next_delay(  # noqa: PLR0917 - internal, positional to keep the call cheap
        self,
        name: str,
        attempt: int,
        delay: float,
        start: float,
        exc: BaseException | None,
        result: Any,
    ) -> float:
        """Decide what follows failed attempt `attempt` (both drivers share this).

        Returns the delay before the next attempt, or raises: the error itself when it is not
        retryable, or what giving up raises.
        """
        if exc is not None and not self._retryable(exc):
            raise exc
        plan = self._plan(attempt, delay, self.clock.monotonic() - start, exc)
        if isinstance(plan, str):
            error = self._gave_up(name, attempt, plan, exc, result)
            if error is exc:
                raise exc
            raise error from exc
        self._retrying(name, attempt, plan, exc, result)
        return plan

    def _again_sync(  # noqa: PLR0917 - internal, positional to keep the call cheap
        self,
        fn: Callable[..., R],
        name: str,
        args: Any,
        kwargs: Any,
        exc: BaseException | None,
        result: Any,
        start: float,
    ) -> R:
        """Retry after a failed first attempt (sync driver)."""
        if not self._timed:
            start = self.clock.monotonic()
        catch = self._catch
        on_result = self.retry_on_result
        attempt = 1
        delay = 0.0
        while True:
            delay = self._next_delay(name, attempt, delay, start, exc, result)
            if delay > 0:
                self.clock.sleep(delay)
            attempt += 1
            try:
                result = fn(*args, **kwargs)
            except catch as caught:
                exc, result = caught, None
                continue
            if on_result is not None and on_result(result):
                exc = None
                continue
            return result  # type: ignore[no-any-return]

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return `fn` retried under this policy (async)."""
        name = name_of(self.name, fn)
        catch = self._catch
        clock = self.clock
        on_result = self.retry_on_result
        budget = self.budget
        timed = self._timed
        deadline = self.deadline
        again = self._again_async

        if on_result is None and budget is None and not timed:

            async def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
                try:
                    return await fn(*args, **kwargs)
                except catch as exc:
                    failed = exc
                # Retried outside the `except`, so later errors do not chain onto this one.
                return await again(fn, name, args, kwargs, failed, None, 0.0)

            return retrying

        async def retrying_full(*args: P.args, **kwargs: P.kwargs) -> R:
            start = clock.monotonic() if timed else 0.0
            if budget is not None:
                budget.deposit()
            token = DEADLINE.set(tighter(start + deadline, clock)) if deadline else None
            try:
                try:
                    result = await fn(*args, **kwargs)
                except catch as exc:
                    failed = exc
                else:
                    if on_result is None or not on_result(result):
                        return result
                    return await again(fn, name, args, kwargs, None, result, start)
                # Retried outside the `except`, so later errors do not chain onto this one.
                return await again(fn, name, args, kwargs, failed, None, start)
            finally:
                if token is not None:
                    DEADLINE.reset(token)

        return retrying_full

    async def _again_async(  # noqa: PLR0917 - internal, positional to keep the call cheap
        self,
        fn: Callable[..., Awaitable[R]],
        name: str,
        args: Any,
        kwargs: Any,
        exc: BaseException | None,
        result: Any,
        start: float,
    ) -> R:
        """Retry after a failed first attempt (async driver)."""
        if not self._timed:
            start = self.clock.monotonic()
        catch = self._catch
        on_result = self.retry_on_result
        attempt = 1
        delay = 0.0
        while True:
            delay = self._next_delay(name, attempt, delay, start, exc, result)
            if delay > 0:
                await self.clock.asleep(delay)
            attempt += 1
            try:
                result = await fn(*args, **kwargs)
            except catch as caught:
                exc, result = caught, None
                continue
            if on_result is not None and on_result(result):
                exc = None
                continue
            return result  # type: ignore[no-any-return]


def retry(
    *,
    on: RetryOn,
    attempts: int | None = 3,
    backoff: Backoff | float = ExponentialBackoff(),
    deadline: float | None = None,
    stop: Stop | None = None,
    retry_on_result: Callable[[Any], bool] | None = None,
    hint: HintExtractor | None = retry_after_hint,
    budget: RetryBudget | None = None,
    reraise: bool = False,
    clock: Clock = SYSTEM_CLOCK,
    bus: EventBus | None = None,
    name: str | None = None,
) -> Retry:
    """Build a retry policy: a decorator for ``def`` and ``async def``, or a pipeline stage.

    Args:
        on: What is worth retrying: an exception type, a tuple of them, or a predicate taking
            the exception. Required: only the caller knows which failures are transient.
        attempts: Attempts in all, the first call included; None for no limit (then give
            `deadline` or `stop`).
        backoff: The wait before each retry, a `Backoff` or constant seconds. The default
            doubles from 0.1 s up to 5 s.
        deadline: Seconds from the first attempt after which no new attempt starts (a retry
            never sleeps past it). The deadline is visible inside the call through
            `selfheal.remaining()`, and an inner async `Timeout` enforces it. An enclosing
            deadline on the same clock (an outer `Timeout`) also stops the retry this way.
        stop: An extra `Stop` condition, or'ed with `attempts` and `deadline`.
        retry_on_result: A predicate on the result; true means "retry this result".
        hint: Reads the server's wait (Retry-After) from an exception; when it gives seconds,
            they replace the backoff's wait. None to ignore hints.
        budget: A `RetryBudget` shared with other calls; a retry it refuses gives up.
        reraise: Give up by re-raising the last exception instead of `RetryError`.
        clock: Sleeps and measures time.
        bus: Receives ``retry.<name>.retrying`` (per retry, only built when subscribed),
            ``retry.<name>.gave_up`` and ``retry.<name>.budget_exhausted``.
        name: The name in event types; defaults to the wrapped function's name.

    Returns:
        A `Retry` policy.

    Raises:
        TypeError: If `on`, `backoff`, `stop` or `budget` has the wrong type.
        ValueError: If a number is out of range or nothing would ever stop retrying.
    """
    return Retry(
        on=on,
        attempts=attempts,
        backoff=backoff,
        deadline=deadline,
        stop=stop,
        retry_on_result=retry_on_result,
        hint=hint,
        budget=budget,
        reraise=reraise,
        clock=clock,
        bus=bus,
        name=name,
    )
