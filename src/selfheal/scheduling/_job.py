"""One scheduled job: what it runs, how, its state, and the report readers see of it."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from selfheal._calls import is_async_callable
from selfheal.scheduling._core import JobOptions, JobResult, ThresholdState, freshness

__all__ = ["Job", "JobReport"]


@dataclass(frozen=True, slots=True)
class JobReport:
    """What a reader sees of one job right now.

    Attributes:
        name: The job.
        options: Its options.
        result: The latest result, or None before the first one.
        age: Seconds since the latest result (None before the first one).
        stale: Whether the latest result is older than ``options.max_age``, or no first result
            came within ``max_age`` of the job's loop starting.
        running: Whether a run is in flight (or an abandoned run has not returned yet).
        next_run: The monotonic time the next run is due, while the loop waits for it.
        finished: Whether the job's `until` held: it is not scheduled again.
        successes: Successful runs recorded so far.
        failures: Failed runs recorded so far.
    """

    name: str
    options: JobOptions
    result: JobResult | None
    age: float | None
    stale: bool
    running: bool
    next_run: float | None
    finished: bool
    successes: int
    failures: int


class Job:
    """One scheduled job, as `Scheduler.add` returns it: read it, only its scheduler changes it.

    Attributes:
        name: The job's name.
        fn: What runs.
        options: Its options.
        until: The predicate that finishes it, if any.
    """

    __slots__ = (
        "_busy_since",
        "_failures",
        "_finished",
        "_last",
        "_next_run",
        "_pending",
        "_since",
        "_successes",
        "_task",
        "_threshold",
        "fn",
        "is_async",
        "name",
        "options",
        "until",
    )

    def __init__(
        self,
        name: str,
        fn: Callable[[], Any],
        options: JobOptions,
        until: Callable[[JobResult], bool] | None,
    ) -> None:
        self.name = name
        self.fn = fn
        self.options = options
        self.until = until
        self.is_async = is_async_callable(fn)
        self._since: float | None = None
        self._threshold = ThresholdState()
        self._last: JobResult | None = None
        self._finished = False
        self._successes = 0
        self._failures = 0
        # The run whose result concurrent callers share (one in flight per job).
        self._pending: concurrent.futures.Future[JobResult] | None = None
        # Set while the job's code is still executing, even after its run timed out: a hung
        # job is not started again until it returns.
        self._busy_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_run: float | None = None

    def __repr__(self) -> str:
        return f"Job({self.name!r}, {self.options!r})"

    @property
    def since(self) -> float | None:
        """Return when the job's background loop first started (None: not yet).

        A first result is due within ``options.max_age`` of it.
        """
        return self._since

    @property
    def last(self) -> JobResult | None:
        """Return the latest result, None before the first."""
        return self._last

    @property
    def finished(self) -> bool:
        """Return whether `until` held for a result: the job is not scheduled again."""
        return self._finished

    @property
    def next_run(self) -> float | None:
        """Return the monotonic time the next run is due, while the job's loop waits for it.

        None while a run is in flight, after the job finished, and when it is not scheduled.
        """
        return self._next_run

    @property
    def running(self) -> bool:
        """Return whether a run is in flight (or an abandoned run has not returned yet)."""
        return self._busy_since is not None

    def report(self, now: float) -> JobReport:
        """Return what the job looks like at monotonic time `now`."""
        # One read of each attribute: a result recorded meanwhile on another thread cannot mix
        # with the previous one.
        last, finished = self._last, self._finished
        fresh = freshness(
            None if last is None else last.monotonic,
            since=self._since,
            finished=finished,
            max_age=self.options.max_age,
            now=now,
        )
        return JobReport(
            name=self.name,
            options=self.options,
            result=last,
            age=fresh.age,
            stale=fresh.stale,
            running=self._busy_since is not None,
            next_run=self._next_run,
            finished=finished,
            successes=self._successes,
            failures=self._failures,
        )
