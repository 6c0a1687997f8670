"""Stop conditions: when a retry gives up, composable with ``|`` (either) and ``&`` (both)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from selfheal.policies._checks import check_int, check_number

__all__ = ["Stop", "StopAfterAttempts", "StopAfterDelay", "StopAtDeadline"]


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
        check_int("StopAfterAttempts", "attempts", self.attempts, 1)

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
        check_number("StopAfterDelay", "seconds", self.seconds)

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
        check_number("StopAtDeadline", "seconds", self.seconds)

    def __call__(self, attempt: int, elapsed: float, next_delay: float) -> bool:
        """Return whether waiting `next_delay` would pass the deadline."""
        return elapsed + next_delay >= self.seconds


def any_of(stops: list[Stop]) -> Stop:
    """Return a stop that gives up when any of `stops` does (the one itself if alone)."""
    return stops[0] if len(stops) == 1 else _AnyStop(tuple(stops))
