"""In-process faults: what an injection point does when a fault on it fires.

Three kinds, each a small frozen value: `Latency` (wait on the injector's clock before the
call), `RaiseError` (raise instead of calling) and `WrongResult` (call, then answer something
else). An `Injector` activates them on named points with a probability and a time limit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from selfheal.errors import SelfhealError

__all__ = ["Fault", "InjectedFaultError", "Latency", "RaiseError", "WrongResult"]


class InjectedFaultError(SelfhealError):
    """The error a `RaiseError` fault raises by default.

    Attributes:
        point: The injection point's name.
    """

    def __init__(self, point: str) -> None:
        super().__init__(f"fault injected at {point!r}")
        self.point = point

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.point,))


@dataclass(frozen=True, slots=True)
class Latency:
    """Wait before the call, on the injector's clock.

    Args:
        seconds: The added latency.
        jitter: Up to this many seconds more, drawn uniformly from the fault's seeded stream.

    Raises:
        ValueError: For a negative or non-finite `seconds` or `jitter`.
    """

    seconds: float
    jitter: float = 0.0

    def __post_init__(self) -> None:
        for name in ("seconds", "jitter"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and 0 <= value < math.inf):
                raise ValueError(f"Latency.{name}: must be a finite number >= 0, got {value!r}")

    def delay(self, rng: random.Random) -> float:
        """Return this occurrence's delay, drawing the jitter from `rng`."""
        return self.seconds + (rng.uniform(0.0, self.jitter) if self.jitter else 0.0)


@dataclass(frozen=True, slots=True)
class RaiseError:
    """Raise instead of calling.

    Args:
        error: An exception class (built with the message ``fault injected at 'point'``),
            an exception instance (raised as is each time), or a function of the point's
            name that returns one. Default: `InjectedFaultError`.

    Raises:
        TypeError: If `error` is none of these.
    """

    error: type[BaseException] | BaseException | Callable[[str], BaseException] = InjectedFaultError

    def __post_init__(self) -> None:
        if not (isinstance(self.error, BaseException) or callable(self.error)):
            raise TypeError(
                f"RaiseError.error: must be an exception class, instance or factory, "
                f"got {self.error!r}"
            )

    def build(self, point: str) -> BaseException:
        """Return the exception to raise at `point`."""
        error = self.error
        if isinstance(error, BaseException):
            return error.with_traceback(None)  # no traceback growing with every raise
        if isinstance(error, type) and issubclass(error, BaseException):
            if issubclass(error, InjectedFaultError):
                return error(point)
            return error(f"fault injected at {point!r}")
        built = error(point)  # type: ignore[call-arg]
        if not isinstance(built, BaseException):
            return TypeError(f"RaiseError at {point!r}: the factory returned {built!r}")
        return built


@dataclass(frozen=True, slots=True)
class WrongResult:
    """Call, then answer something else: `value`, or ``func(real_result)``.

    At a bare ``inject(name, value)`` the given value stands for the result.

    Args:
        value: The wrong answer.
        func: Computes the wrong answer from the real one (takes precedence over `value`).
    """

    value: Any = None
    func: Callable[[Any], Any] | None = None

    def apply(self, result: Any) -> Any:
        """Return the wrong answer for the real `result`."""
        return self.func(result) if self.func is not None else self.value


#: Any in-process fault.
Fault: TypeAlias = Latency | RaiseError | WrongResult
