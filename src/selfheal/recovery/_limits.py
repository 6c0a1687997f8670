"""The limits on remediation, as plain functions of time: a token bucket and flap detection."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["FlapDetector", "FlapPolicy", "RateLimit", "TokenBucket"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The engine-wide limit on started recoveries: a token bucket.

    Attributes:
        per_second: Tokens added per second (e.g. ``10/60`` for ten a minute).
        burst: Bucket size: how many recoveries may start at once after a quiet period.
    """

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(
                f"RateLimit: per_second must be > 0 and burst >= 1, got {self.per_second!r}, "
                f"{self.burst!r}"
            )


class TokenBucket:
    """A token bucket over a caller-supplied clock reading.

    Args:
        limit: Rate and burst.
        now: The monotonic time at creation; the bucket starts full.
    """

    __slots__ = ("_stamp", "_tokens", "limit")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Take one token if there is one at time `now`.

        Returns:
            True when a token was taken.
        """
        elapsed = max(0.0, now - self._stamp)
        self._stamp = max(self._stamp, now)
        self._tokens = min(float(self.limit.burst), self._tokens + elapsed * self.limit.per_second)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class FlapPolicy:
    """When a subject counts as flapping (Nagios-style, with hysteresis).

    A state change is bad to good or good to bad. The subject starts flapping when `high`
    changes fall within `window` seconds and stops only when no more than `low` remain, so it
    does not toggle in and out of flapping on every change.

    Attributes:
        window: Seconds of history considered.
        high: Changes in the window that start flapping.
        low: Changes in the window at or below which flapping stops (``low < high``).
    """

    window: float = 600.0
    high: int = 6
    low: int = 2

    def __post_init__(self) -> None:
        if self.window <= 0 or self.high < 2 or not 0 <= self.low < self.high:
            raise ValueError(
                "FlapPolicy: need window > 0, high >= 2 and 0 <= low < high, got "
                f"window={self.window!r}, high={self.high!r}, low={self.low!r}"
            )


class FlapDetector:
    """Counts state changes of one subject and says whether it is flapping.

    Args:
        policy: Thresholds.
    """

    __slots__ = ("_changes", "_good", "flapping", "policy")

    def __init__(self, policy: FlapPolicy) -> None:
        self.policy = policy
        self._changes: deque[float] = deque()
        # A subject nobody has heard of is presumed good: its first failure is a change.
        self._good = True
        self.flapping = False

    def observe(self, good: bool, now: float) -> bool | None:
        """Record the subject's state at `now`.

        Returns:
            True when it started flapping, False when it stopped, None when unchanged.
        """
        if good != self._good:
            self._good = good
            self._changes.append(now)
        return self.update(now)

    def update(self, now: float) -> bool | None:
        """Forget changes older than the window and re-evaluate (see `observe`)."""
        horizon = now - self.policy.window
        while self._changes and self._changes[0] <= horizon:
            self._changes.popleft()
        count = len(self._changes)
        if not self.flapping and count >= self.policy.high:
            self.flapping = True
            return True
        if self.flapping and count <= self.policy.low:
            self.flapping = False
            return False
        return None

    @property
    def changes(self) -> int:
        """Return how many state changes are in the window (as of the last call)."""
        return len(self._changes)
