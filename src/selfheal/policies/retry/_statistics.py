"""Retry statistics: how a retry has fared, counted without slowing down its success path.

A call that succeeds at its first attempt costs one ``next()`` on an `itertools.count` (atomic
under the GIL, no lock, no clock read); everything else is recorded on the failure path, under
a lock, by `Attempts`, the decision core that every front end shares.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["RetryStatistics"]

_KEYS = (
    "calls",
    "successes",
    "failures",
    "gave_up",
    "retries",
    "attempt_number",
    "start_time",
    "delay_since_first_attempt",
    "idle_for",
)


class RetryStatistics(Mapping[str, Any]):
    """A live view of one retry policy's statistics; also a read-only mapping, as tenacity's.

    ``fn.statistics`` on a decorated function (tenacity's spelling), ``policy.statistics`` on
    the policy, ``loop.statistics`` on a `retrying` loop; ``dict(fn.statistics)`` takes a
    snapshot. They belong to the policy: ``@retry(...)`` makes one per function, and a policy
    object reused for several functions, loops or pipelines counts them all.

    Counters, over every call: `calls` (= `successes` + `failures`), `successes`, `failures`
    (calls that raised: the retry gave up, or the error was not one to retry), `gave_up` (of
    the failures, those where the retry gave up), `retries` (attempts after the first).
    A call interrupted by a `BaseException` that `on` does not catch (cancellation, Ctrl-C) is
    not counted.

    tenacity's figures describe the last call whose first attempt failed in a way the retry
    had to decide on (a call that succeeds at once is not recorded: that would cost a clock
    read on every call): `attempt_number` (attempts it made; 0 before any),
    `start_time` (``clock.monotonic()`` when its first attempt failed; when it started if the
    retry has a `deadline` or `stop`, and for a `retrying` loop; None before any),
    `delay_since_first_attempt` (seconds from then to its end) and `idle_for` (seconds it
    waited between attempts).
    """

    __slots__ = (
        "_count",
        "_failures",
        "_gave_up",
        "_last",
        "_lock",
        "_reads",
        "_recovered",
        "_retries",
        "first_try",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = itertools.count()
        #: Record a call whose first attempt succeeded (the wrappers' success path calls it).
        self.first_try = self._count.__next__
        self._reads = 0  # reads advance `_count` too (see `_first_tries`)
        self._recovered = self._failures = self._gave_up = self._retries = 0
        self._last: tuple[int, float | None, float, float] = (0, None, 0.0, 0.0)

    @classmethod
    def of(cls, fn: object) -> RetryStatistics:
        """Return the statistics of a function decorated by a retry (typed ``fn.statistics``).

        Raises:
            TypeError: If `fn` was not decorated by a retry.
        """
        found = getattr(fn, "statistics", None)
        if not isinstance(found, RetryStatistics):
            raise TypeError(f"RetryStatistics.of: {fn!r} is not decorated by selfheal.retry")
        return found

    # Recording, by `Attempts` and the wrappers.

    def record_retry(self) -> None:
        """Count one retry (an attempt after the first)."""
        with self._lock:
            self._retries += 1

    def record_error(self) -> None:
        """Count a call whose first attempt raised an error the retry does not catch."""
        with self._lock:
            self._failures += 1

    def record_end(
        self,
        *,
        succeeded: bool,
        gave_up: bool,
        attempts: int,
        start: float,
        end: float,
        idle: float,
    ) -> None:
        """Count a call that went through `Attempts`, and make it the last call described."""
        with self._lock:
            if succeeded:
                self._recovered += 1
            else:
                self._failures += 1
                self._gave_up += int(gave_up)
            self._last = (attempts, start, end - start, idle)

    # Reading.

    def _first_tries(self) -> int:
        # `next()` is the only way to read an itertools.count; every read adds one.
        with self._lock:
            value = next(self._count) - self._reads
            self._reads += 1
            return value

    @property
    def successes(self) -> int:
        """Calls that returned."""
        first = self._first_tries()
        with self._lock:
            return first + self._recovered

    @property
    def failures(self) -> int:
        """Calls that raised."""
        with self._lock:
            return self._failures

    @property
    def calls(self) -> int:
        """Calls made (and finished): `successes` + `failures`."""
        first = self._first_tries()
        with self._lock:
            return first + self._recovered + self._failures

    @property
    def gave_up(self) -> int:
        """Calls where the retry gave up (attempts, deadline, stop or budget)."""
        with self._lock:
            return self._gave_up

    @property
    def retries(self) -> int:
        """Attempts after the first, over all calls."""
        with self._lock:
            return self._retries

    @property
    def attempt_number(self) -> int:
        """Attempts made by the last call described (0 before any)."""
        return self._last[0]

    @property
    def start_time(self) -> float | None:
        """When the last call described began failing, on the clock's ``monotonic()``."""
        return self._last[1]

    @property
    def delay_since_first_attempt(self) -> float:
        """Seconds from `start_time` to the end of that call."""
        return self._last[2]

    @property
    def idle_for(self) -> float:
        """Seconds the last call described waited between its attempts."""
        return self._last[3]

    def __getitem__(self, key: str) -> Any:
        if key not in _KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_KEYS)

    def __len__(self) -> int:
        return len(_KEYS)

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self.items())
        return f"RetryStatistics({fields})"
