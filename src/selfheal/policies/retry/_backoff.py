"""Backoffs: how long to wait before the next attempt, as small frozen objects that add up.

``ConstantBackoff(1) + RandomJitter(0, 0.5)`` waits 1 to 1.5 s; every backoff has a readable
``repr`` and the jittered ones take ``rng=random.Random(seed)`` for reproducible schedules.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from selfheal._calls import checked_keywords
from selfheal.policies._checks import check_number

__all__ = [
    "Backoff",
    "ConstantBackoff",
    "DecorrelatedJitter",
    "ExponentialBackoff",
    "LinearBackoff",
    "RandomJitter",
]


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


@checked_keywords
@dataclass(frozen=True, slots=True)
class ConstantBackoff(Backoff):
    """Wait the same time before every retry.

    Args:
        seconds: The wait.
    """

    seconds: float

    def __post_init__(self) -> None:
        check_number("ConstantBackoff", "seconds", self.seconds)

    def delay(self, attempt: int, previous: float) -> float:
        """Return `seconds`."""
        return float(self.seconds)

    def __repr__(self) -> str:
        return f"ConstantBackoff({self.seconds!r})"


@checked_keywords
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
            check_number("LinearBackoff", name, getattr(self, name))

    def delay(self, attempt: int, previous: float) -> float:
        """Return the linear wait for `attempt`, capped."""
        return float(min(self.max, self.initial + self.increment * (attempt - 1)))


@checked_keywords
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
            check_number("ExponentialBackoff", name, getattr(self, name))
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


@checked_keywords
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
        check_number("DecorrelatedJitter", "initial", self.initial)
        check_number("DecorrelatedJitter", "max", self.max)
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
        check_number("RandomJitter", "low", self.low)
        check_number("RandomJitter", "high", self.high)
        if self.high < self.low:
            raise ValueError(f"RandomJitter: high ({self.high!r}) must be >= low ({self.low!r})")

    def delay(self, attempt: int, previous: float) -> float:
        """Return a uniform random wait in ``[low, high]``."""
        return _uniform(self.rng, self.low, self.high)
