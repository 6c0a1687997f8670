"""The scheduler's decisions, with no I/O: options, thresholds, jittered delays, freshness.

Everything here is a pure function of its arguments (or a frozen value), so the rules ("two
failures in a row make a job unhealthy", "a result older than `max_age` is stale", "each wait
is the interval stretched or shortened by up to `jitter`") are tested without running a job.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Freshness",
    "JobOptions",
    "JobResult",
    "ThresholdState",
    "freshness",
    "jittered",
    "step",
]

#: Default upper bound of a run's timeout, when none is given (and the interval is longer).
DEFAULT_TIMEOUT = 5.0
_MAX_JITTER = 0.5


@dataclass(frozen=True, slots=True, kw_only=True)
class JobOptions:
    """How one job is run and judged; build it with `JobOptions.of` to get the defaults.

    Attributes:
        interval: Seconds between the end of one run and the start of the next.
        timeout: Seconds a run may take; then it counts as failed and is abandoned.
        jitter: Fraction (0 to 0.5) by which each wait is randomly stretched or shortened, so
            replicas do not hit a dependency in step.
        failure_threshold: Failures in a row before a healthy (or new) job turns unhealthy.
        success_threshold: Successes in a row before an unhealthy job turns healthy again.
        max_age: Seconds after which the latest result is too old to trust (stale); a first
            result is due within `max_age` of the job's loop starting.

    Raises:
        ValueError: A field out of range; the message names it and what is valid.
    """

    interval: float
    timeout: float
    jitter: float
    failure_threshold: int
    success_threshold: int
    max_age: float

    def __post_init__(self) -> None:
        problem = _problem(
            interval=self.interval,
            timeout=self.timeout,
            jitter=self.jitter,
            failure_threshold=self.failure_threshold,
            success_threshold=self.success_threshold,
            max_age=self.max_age,
        )
        if problem is not None:
            raise ValueError(f"JobOptions: {problem}")

    @classmethod
    def of(
        cls,
        *,
        interval: float = 60.0,
        timeout: float | None = None,
        jitter: float = 0.1,
        failure_threshold: int = 1,
        success_threshold: int = 1,
        max_age: float | None = None,
        where: str = "JobOptions.of",
    ) -> JobOptions:
        """Return validated options, with the defaults filled in.

        Args:
            interval: Seconds between runs (> 0).
            timeout: Seconds a run may take (default: the smaller of 5 s and `interval`).
            jitter: Fraction from 0 to 0.5.
            failure_threshold: Integer >= 1.
            success_threshold: Integer >= 1.
            max_age: Seconds after which a result is stale (default: two intervals plus the
                timeout); at least ``interval * (1 + jitter) + timeout``, or results would go
                stale before the next one can arrive.
            where: The caller's name, which starts every error message (e.g.
                ``"HealthMonitor.register"``).

        Returns:
            The options.

        Raises:
            ValueError: A bad argument; the message names it and what is valid.
        """
        problem = _seconds("interval", interval)
        if problem is None and timeout is not None:
            problem = _seconds("timeout", timeout)
        if problem is None:
            problem = _problem(
                interval=interval,
                timeout=1.0,  # checked above, or the default
                jitter=jitter,
                failure_threshold=failure_threshold,
                success_threshold=success_threshold,
                max_age=None,  # checked below, with the floor
            )
        if problem is None and max_age is not None:
            problem = _seconds("max_age", max_age)
        if problem is not None:
            raise ValueError(f"{where}: {problem}")
        interval, jitter = float(interval), float(jitter)
        timeout = min(DEFAULT_TIMEOUT, interval) if timeout is None else float(timeout)
        floor = interval * (1 + jitter) + timeout
        if max_age is None:
            max_age = interval * (2 + jitter) + timeout
        elif max_age < floor:
            raise ValueError(
                f"{where}: max_age must be at least interval * (1 + jitter) + timeout "
                f"({floor:g} s), or results go stale before the next one can arrive; "
                f"got {max_age!r}"
            )
        return cls(
            interval=interval,
            timeout=timeout,
            jitter=jitter,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            max_age=float(max_age),
        )


def _seconds(name: str, value: object) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return f"{name} must be a number of seconds > 0, got {value!r}"
    return None


def _problem(
    *,
    interval: object,
    timeout: object,
    jitter: object,
    failure_threshold: object,
    success_threshold: object,
    max_age: object,
) -> str | None:
    """Return what is wrong with one set of option values, or None."""
    for name, value in (("interval", interval), ("timeout", timeout)):
        problem = _seconds(name, value)
        if problem is not None:
            return problem
    for name, value in (
        ("failure_threshold", failure_threshold),
        ("success_threshold", success_threshold),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            return f"{name} must be an integer >= 1, got {value!r}"
    if (
        isinstance(jitter, bool)
        or not isinstance(jitter, int | float)
        or not 0 <= jitter <= _MAX_JITTER
    ):
        return f"jitter must be a fraction from 0 to {_MAX_JITTER}, got {jitter!r}"
    if max_age is not None:
        return _seconds("max_age", max_age)
    return None


def jittered(options: JobOptions, draw: float) -> float:
    """Return the wait before a job's next run.

    Args:
        options: The job's options.
        draw: A uniform random number in [0, 1).

    Returns:
        ``interval * (1 + spread)`` with ``spread`` uniform in ``[-jitter, +jitter]``.
    """
    return options.interval * (1 + options.jitter * (2 * draw - 1))


@dataclass(frozen=True, slots=True)
class ThresholdState:
    """What the thresholds have decided about one job so far.

    Attributes:
        healthy: True or False once decided, None before the thresholds decided anything.
        consecutive_failures: Failed runs in a row (0 after a success).
        consecutive_successes: Successful runs in a row (0 after a failure).
    """

    healthy: bool | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0


def step(
    state: ThresholdState, ok: bool, *, failure_threshold: int, success_threshold: int
) -> ThresholdState:
    """Return the state after one more run of a job.

    Kubernetes' rules: a healthy (or undecided) job turns unhealthy after `failure_threshold`
    failures in a row; an unhealthy job turns healthy again after `success_threshold`
    successes in a row. The first success of an undecided job makes it healthy at once
    (nothing is known to distrust it).

    Args:
        state: The state before the run.
        ok: Whether the run succeeded.
        failure_threshold: Failures in a row that make a job unhealthy (>= 1).
        success_threshold: Successes in a row that make an unhealthy job healthy (>= 1).

    Returns:
        The new state.
    """
    if ok:
        successes = state.consecutive_successes + 1
        healthy = state.healthy
        if healthy is None or (healthy is False and successes >= success_threshold):
            healthy = True
        return ThresholdState(healthy, 0, successes)
    failures = state.consecutive_failures + 1
    healthy = state.healthy
    if healthy is not False and failures >= failure_threshold:
        healthy = False
    return ThresholdState(healthy, failures, 0)


@dataclass(frozen=True, slots=True)
class JobResult:
    """One finished run of a job, as recorded; `output` and `observed` are already redacted.

    Attributes:
        name: The job.
        ok: Whether this run succeeded (it returned, did not return False, in time).
        healthy: The thresholds' decision after this run (None: undecided yet).
        output: Why it failed (empty on success).
        observed: The mapping the job returned, redacted (empty if it returned anything else).
        duration: Seconds the run took (the timeout, if it timed out).
        monotonic: `clock.monotonic()` when the run finished; the result's age counts from it.
        time: Wall-clock seconds since the epoch when the run finished.
        consecutive_failures: Failed runs in a row, this one included.
        consecutive_successes: Successful runs in a row, this one included.
        timed_out: Whether the run was abandoned at its timeout (or never started because
            the previous one still hung).
        number: How many results the job has recorded, this one included (1 for the first).
        finished: Whether the job's `until` held for this result: no further runs are
            scheduled (a result of a finished job never goes stale).
    """

    name: str
    ok: bool
    healthy: bool | None
    output: str
    observed: Mapping[str, Any]
    duration: float
    monotonic: float
    time: float
    consecutive_failures: int
    consecutive_successes: int
    timed_out: bool = False
    number: int = 1
    finished: bool = False


@dataclass(frozen=True, slots=True)
class Freshness:
    """How old a job's latest result is, and whether it can still be trusted.

    Attributes:
        age: Seconds since the latest result (None before the first one).
        stale: Whether the result is older than `max_age`, or no first result came within
            `max_age` of the job's loop starting.
        valid_until: The monotonic time until which `stale` stays false if no new result
            arrives: ``inf`` if it never goes stale, ``-inf`` if it already is.
    """

    age: float | None
    stale: bool
    valid_until: float


def freshness(
    last: float | None, *, since: float | None, finished: bool, max_age: float, now: float
) -> Freshness:
    """Return the freshness of a job's latest result.

    Args:
        last: The monotonic time of the latest result, None before the first.
        since: When the job's background loop first started (None: never started, so no
            result is expected yet).
        finished: Whether the job is finished (its last result is final and never stale).
        max_age: The job's `JobOptions.max_age`.
        now: The current monotonic time.

    Returns:
        The age, whether it is stale, and until when that stays true.
    """
    if last is None:
        if since is None:
            return Freshness(None, False, math.inf)
        overdue = now - since > max_age
        return Freshness(None, overdue, -math.inf if overdue else since + max_age)
    age = max(0.0, now - last)
    if finished:
        return Freshness(age, False, math.inf)
    stale = age > max_age
    return Freshness(age, stale, -math.inf if stale else last + max_age)
