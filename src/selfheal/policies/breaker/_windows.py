"""What a breaker judges its rates over: the window specs users give, and the windows kept.

`FailureRateWindow` and `SlowCallRule` are the options (frozen, checked when built); the
count and time windows are the counters the machine records every CLOSED outcome in. Each
outcome is a pair of flags (failed, slow), so one record serves both rates.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "FAILED",
    "SLOW",
    "CountWindow",
    "FailureRateWindow",
    "SlowCallRule",
    "TimeWindow",
    "Window",
    "new_window",
]

#: The flags of one outcome, or'ed together.
FAILED = 1
SLOW = 2


@dataclass(frozen=True, slots=True)
class FailureRateWindow:
    """Trip when the failure rate over the recent calls reaches a threshold.

    Args:
        size: How many recent calls (``kind="count"``) or seconds (``kind="time"``) the
            window covers.
        kind: ``"count"`` for the last `size` calls, ``"time"`` for the last `size` seconds.
        min_calls: No rate is judged before the window holds this many calls, so that one
            failure out of one call does not trip the breaker. A count window never holds
            more than `size` calls, so there a larger `min_calls` is lowered to `size` (as
            resilience4j does): ``FailureRateWindow(size=5).min_calls == 5``, judged from
            the fifth call on.
        threshold: Failure rate in (0, 1] at or above which the breaker trips.
    """

    size: float = 100
    kind: Literal["count", "time"] = "count"
    min_calls: int = 10
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in ("count", "time"):
            raise ValueError(
                f"FailureRateWindow: kind must be 'count' or 'time', got {self.kind!r}"
            )
        if self.kind == "count" and (
            isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1
        ):
            raise ValueError(
                f"FailureRateWindow: size must be an int >= 1 for kind='count', got {self.size!r}"
            )
        if self.kind == "time" and (
            isinstance(self.size, bool) or not isinstance(self.size, int | float) or self.size <= 0
        ):
            raise ValueError(
                f"FailureRateWindow: size must be seconds > 0 for kind='time', got {self.size!r}"
            )
        if isinstance(self.min_calls, bool) or not isinstance(self.min_calls, int):
            raise ValueError(f"FailureRateWindow: min_calls must be an int, got {self.min_calls!r}")
        if self.min_calls < 1:
            raise ValueError(f"FailureRateWindow: min_calls must be >= 1, got {self.min_calls!r}")
        _check_rate("FailureRateWindow", "threshold", self.threshold)
        if self.kind == "count" and self.min_calls > self.size:
            # Otherwise the window could never trip: it holds at most `size` calls.
            object.__setattr__(self, "min_calls", int(self.size))


@dataclass(frozen=True, slots=True)
class SlowCallRule:
    """Count calls slower than `duration` as slow; trip when their rate reaches a threshold.

    The rate is taken over the breaker's `FailureRateWindow`, so a rule needs a window. A
    half-open trial that is slow counts as a failed trial.

    Args:
        duration: Seconds at or above which a call is slow.
        rate_threshold: Slow-call rate in (0, 1] at or above which the breaker trips.
    """

    duration: float
    rate_threshold: float = 0.5

    def __post_init__(self) -> None:
        if (
            isinstance(self.duration, bool)
            or not isinstance(self.duration, int | float)
            or self.duration <= 0
        ):
            raise ValueError(f"SlowCallRule: duration must be seconds > 0, got {self.duration!r}")
        _check_rate("SlowCallRule", "rate_threshold", self.rate_threshold)


def _check_rate(owner: str, field: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise ValueError(f"{owner}: {field} must be a rate in (0, 1], got {value!r}")


class CountWindow:
    """Outcomes of the last `size` calls in a ring, with running sums."""

    __slots__ = ("_failures", "_filled", "_i", "_ring", "_size", "_slow")

    def __init__(self, size: int) -> None:
        self._ring = bytearray(size)
        self._size = size
        self._i = 0
        self._filled = 0
        self._failures = 0
        self._slow = 0

    def record(self, now: float, flags: int) -> tuple[int, int, int]:
        """Add one outcome; return (calls, failures, slow calls) in the window."""
        ring, i = self._ring, self._i
        if self._filled == self._size:
            old = ring[i]
            if old:
                self._failures -= old & FAILED
                self._slow -= old >> 1
        else:
            self._filled += 1
        ring[i] = flags
        if flags:
            self._failures += flags & FAILED
            self._slow += flags >> 1
        i += 1
        self._i = 0 if i == self._size else i
        return self._filled, self._failures, self._slow


class TimeWindow:
    """Outcomes of the last `size` seconds, in 20 buckets so that old calls age out."""

    __slots__ = ("_buckets", "_calls", "_failures", "_n", "_slow", "_width")

    _BUCKETS = 20

    def __init__(self, size: float) -> None:
        self._n = self._BUCKETS
        self._width = size / self._n
        self._buckets: deque[list[int]] = deque()  # [bucket index, calls, failures, slow]
        self._calls = self._failures = self._slow = 0

    def _expire(self, now: float) -> int:
        key = int(now // self._width)
        buckets = self._buckets
        while buckets and buckets[0][0] <= key - self._n:
            _, calls, failures, slow = buckets.popleft()
            self._calls -= calls
            self._failures -= failures
            self._slow -= slow
        return key

    def record(self, now: float, flags: int) -> tuple[int, int, int]:
        """Add one outcome; return (calls, failures, slow calls) in the window."""
        key = self._expire(now)
        buckets = self._buckets
        if not buckets or buckets[-1][0] != key:
            buckets.append([key, 0, 0, 0])
        bucket = buckets[-1]
        failed, slow = flags & FAILED, flags >> 1
        bucket[1] += 1
        bucket[2] += failed
        bucket[3] += slow
        self._calls += 1
        self._failures += failed
        self._slow += slow
        return self._calls, self._failures, self._slow


Window = CountWindow | TimeWindow


def new_window(spec: FailureRateWindow | None) -> Window | None:
    """Return an empty window as `spec` describes, or None without one."""
    if spec is None:
        return None
    if spec.kind == "count":
        return CountWindow(int(spec.size))
    return TimeWindow(float(spec.size))
