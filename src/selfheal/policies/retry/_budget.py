"""The retry budget: retries may add only a share of the calls made, so outages do not snowball."""

from __future__ import annotations

import threading
from typing import Final

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.policies._checks import check_number

__all__ = ["RetryBudget"]


@checked_keywords
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
        check_number("RetryBudget", "ratio", ratio)
        check_number("RetryBudget", "min_per_second", min_per_second)
        check_number("RetryBudget", "window", window, positive=True)
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
