"""`Scheduler`: named jobs run in the background, each on its own interval and under a timeout.

Each job has a loop of its own (interval with jitter), runs under its own timeout (sync jobs in
a daemon thread, async jobs as tasks) and never has two runs in flight: callers of `run_now`
during a run share its result, and a job whose earlier run is still stuck past its timeout is
not started again. Results carry thresholds (Kubernetes' failure and success thresholds) and
an age; readers only read the latest recorded result, so reading costs microseconds.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import threading
import weakref
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeAlias

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._observers import Observers
from selfheal._threads import in_own_thread
from selfheal.scheduling._core import JobOptions, JobResult, jittered, step
from selfheal.scheduling._job import Job, JobReport
from selfheal.scheduling._run import Outcome, run_once

__all__ = ["JobObserver", "Scheduler"]

logger = logging.getLogger("selfheal.scheduling")

#: Called with every recorded result and the job's result before it (None for the first).
JobObserver: TypeAlias = Callable[[JobResult, JobResult | None], object]


class Scheduler:
    """Named periodic jobs, run in the background on an injected clock, read from a cache.

    A job is a function or coroutine function of no arguments that fails by raising (or
    returning False) and may return a mapping of observed values. It runs at once when the
    scheduler starts, then every ``interval`` (with jitter) after the previous run ended,
    under ``timeout``; at most one run per job is in flight. Observers see every result.

    It is a `selfheal.interfaces.Component` (``await start()`` on the running loop, ``await
    stop()``), or runs on a loop in a daemon thread of its own (`start_in_thread`), which a
    process forked while it ran restarts with `resume_after_fork`.

    Args:
        clock: Drives intervals, timeouts and ages; `selfheal.testing.FakeClock` in tests.
        rng: Source of the interval jitter (seed it for reproducible schedules).
        name: Names the scheduler's thread (``selfheal-<name>``), its tasks
            (``<name>:<job>``) and the threads of sync jobs (``selfheal-<name>-<job>``).
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        name: str = "scheduler",
    ) -> None:
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._name = name
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._observers: Observers[[JobResult, JobResult | None]] = Observers(
            logger, f"{name} observer"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        # Set in a forked child whose parent ran the scheduler in a thread: that thread did
        # not survive the fork (gunicorn --preload), so the child restarts it.
        self._forked_while_running = False
        ref = weakref.ref(self)

        def after_fork_in_child() -> None:
            scheduler = ref()
            if scheduler is not None:
                scheduler._after_fork()

        os.register_at_fork(after_in_child=after_fork_in_child)

    def __repr__(self) -> str:
        state = "running" if self._loop is not None else "stopped"
        return f"Scheduler({self._name!r}, jobs={list(self._jobs)!r}, {state})"

    @property
    def clock(self) -> Clock:
        """Return the clock that drives the scheduler."""
        return self._clock

    @property
    def running(self) -> bool:
        """Return whether the background loops run."""
        return self._loop is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """Return the event loop the jobs run on while running, else None."""
        return self._loop

    # -- jobs ---------------------------------------------------------------------------

    def add(
        self,
        name: str,
        fn: Callable[[], Any],
        options: JobOptions,
        *,
        until: Callable[[JobResult], bool] | None = None,
    ) -> Job:
        """Add a job; if the scheduler runs, its loop starts at once.

        Args:
            name: A name unique in this scheduler.
            fn: A function or coroutine function of no arguments (sync ones run in a daemon
                thread of their own, async ones on the scheduler's loop). It fails by
                raising or by returning False; a mapping it returns is kept, redacted.
            options: Interval, timeout, jitter, thresholds, max age (`JobOptions.of`).
            until: If given, called with each result under the scheduler's lock (keep it
                quick and pure); once it returns True the job is finished and its loop ends
                (``lambda result: result.ok`` runs a job until it passes once).

        Returns:
            The job.

        Raises:
            ValueError: An empty or duplicate name, or `fn` not callable.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"Scheduler.add: name must be a non-empty string, got {name!r}")
        if not callable(fn):
            raise ValueError(f"Scheduler.add: fn must be a callable, got {fn!r}")
        job = Job(name, fn, options, until)
        with self._lock:
            if name in self._jobs:
                raise ValueError(f"Scheduler.add: a job named {name!r} is already scheduled")
            self._jobs[name] = job
            loop = self._loop
        if loop is not None:
            _call_on_loop(loop, self._spawn, job)
        return job

    def remove(self, name: str) -> None:
        """Remove job `name` and stop its background loop.

        Raises:
            KeyError: If no job has that name.
        """
        with self._lock:
            job = self.job(name)
            del self._jobs[name]
            loop, task = self._loop, job._task
        if loop is not None and task is not None:
            _call_on_loop(loop, task.cancel)

    def job(self, name: str) -> Job:
        """Return job `name`.

        Raises:
            KeyError: If no job has that name.
        """
        try:
            return self._jobs[name]
        except KeyError:
            known = ", ".join(self._jobs) or "none"
            raise KeyError(f"no job named {name!r} (scheduled: {known})") from None

    def names(self) -> list[str]:
        """Return the job names, in the order they were added."""
        return list(self._jobs)

    def report(self, name: str) -> JobReport:
        """Return what job `name` looks like now, from its latest result.

        Raises:
            KeyError: If no job has that name.
        """
        return self.job(name).report(self._clock.monotonic())

    def reports(self) -> list[JobReport]:
        """Return a report for every job, in the order they were added."""
        now = self._clock.monotonic()
        return [job.report(now) for job in list(self._jobs.values())]

    def add_observer(self, observer: JobObserver) -> Callable[[], None]:
        """Call ``observer(result, previous)`` after every recorded run of any job.

        Observers run where the run ended (on the scheduler's loop) and must be quick;
        their exceptions are logged.

        Returns:
            A function that removes the observer.
        """
        return self._observers.add(observer)

    # -- running -----------------------------------------------------------------------

    async def run_now(self, name: str) -> JobResult:
        """Run job `name` now, bounded by its timeout, and return its result.

        If a run is already in flight its result is awaited instead of starting another.
        While the scheduler runs on another loop, the run happens there.

        Raises:
            KeyError: If no job has that name.
        """
        job = self.job(name)
        home = self._loop
        if home is None or home is asyncio.get_running_loop():
            return await self._run(job)
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._run(job), home))

    async def start(self) -> None:
        """Start every job's background loop on the running event loop.

        Raises:
            RuntimeError: If the scheduler already runs on another loop.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop is loop:
                return
            if self._loop is not None:
                raise RuntimeError("Scheduler.start: already running on another event loop")
            self._loop = loop
            jobs = list(self._jobs.values())
        for job in jobs:
            self._spawn(job)

    async def stop(self) -> None:
        """Cancel the background loops and wait for them; safe to call twice.

        Also stops the thread of `start_in_thread` when called from another loop.
        """
        with self._lock:
            thread, home = self._thread, self._loop
        if thread is not None and home is not asyncio.get_running_loop():
            # A thread of its own, not asyncio.to_thread: the loop's shared pool may be
            # full of hung user code at shutdown.
            await in_own_thread(self.stop_thread, name=f"{self._name}-stop")
            return
        with self._lock:
            loop, self._loop = self._loop, None
            tasks = [job._task for job in self._jobs.values() if job._task is not None]
            for job in self._jobs.values():
                job._task = None
        if loop is None:
            return
        for task in tasks:
            task.cancel()
        if loop is asyncio.get_running_loop():
            await asyncio.gather(*tasks, return_exceptions=True)

    def start_in_thread(self) -> None:
        """Run the scheduler on an event loop in a daemon thread (for sync programs).

        Returns once every job's loop is started; calling it again does nothing.
        """
        with self._lock:
            if self._loop is not None:
                return
            ready = threading.Event()
            failure: list[BaseException] = []
            thread = threading.Thread(
                target=self._thread_main,
                args=(ready, failure),
                name=f"selfheal-{self._name}",
                daemon=True,
            )
            self._thread = thread
        thread.start()
        ready.wait()
        if failure:
            raise failure[0]

    def stop_thread(self) -> None:
        """Stop what `start_in_thread` started and wait for its thread; safe to call twice."""
        with self._lock:
            thread, loop = self._thread, self._loop
            self._thread = None
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def resume_after_fork(self) -> None:
        """In a forked child of a process that ran `start_in_thread`, start it again.

        Cheap enough to call on every request: it does nothing unless this process was forked
        while the scheduler's thread ran, which the fork did not copy.
        """
        if self._forked_while_running:
            self._forked_while_running = False
            self.start_in_thread()

    def _thread_main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that asked
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(self.stop())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def _after_fork(self) -> None:
        # In the child, only the forking thread exists: the scheduler's thread, its loop's
        # tasks and any job threads are gone, and a lock held by one of them would never be
        # released. (A scheduler started on the caller's loop with `start` is left alone: if
        # the fork happened on that loop, the child's copy of it runs on.)
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            return
        self._lock = threading.RLock()
        self._forked_while_running = True
        self._loop = None
        self._thread = None
        for job in self._jobs.values():
            job._task = None
            job._pending = None
            job._busy_since = None
            job._next_run = None

    def _spawn(self, job: Job) -> None:
        loop = self._loop
        if loop is None or job._task is not None or self._jobs.get(job.name) is not job:
            return
        if job._since is None:
            job._since = self._clock.monotonic()
        job._task = loop.create_task(self._loop_forever(job), name=f"{self._name}:{job.name}")

    async def _loop_forever(self, job: Job) -> None:
        while not job._finished:
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug here must not silently end the job's loop: its results would stop
                # coming and it would only be noticed when they went stale.
                logger.exception("%s job %s: internal error", self._name, job.name)
            if not job._finished:
                delay = jittered(job.options, self._rng.random())
                job._next_run = self._clock.monotonic() + delay
                try:
                    await self._clock.asleep(delay)
                finally:
                    job._next_run = None

    async def _run(self, job: Job) -> JobResult:
        now = self._clock.monotonic()
        with self._lock:
            shared = job._pending
            mine: concurrent.futures.Future[JobResult] | None = None
            hung_for = None if job._busy_since is None else now - job._busy_since
            if shared is None and hung_for is None:
                mine = job._pending = concurrent.futures.Future()
                job._busy_since = now
        if shared is not None:
            # shield: a waiter that is cancelled must not cancel the run the others share.
            return await asyncio.shield(asyncio.wrap_future(shared))
        if mine is None:
            output = (
                f"previous run has not returned after {hung_for:.3g} s (hung); not started again"
            )
            return self._record(job, Outcome(False, output, timed_out=True))
        try:
            outcome = await run_once(
                job.fn,
                name=f"{self._name}-{job.name}",
                is_async=job.is_async,
                timeout=job.options.timeout,
                clock=self._clock,
                on_finish=lambda: self._finished(job),
            )
            result = self._record(job, outcome)
        except BaseException:
            with self._lock:
                job._pending = None
            mine.cancel()
            raise
        with self._lock:
            job._pending = None
        mine.set_result(result)
        return result

    def _finished(self, job: Job) -> None:
        with self._lock:
            job._busy_since = None

    def _record(self, job: Job, outcome: Outcome) -> JobResult:
        options = job.options
        with self._lock:
            previous = job._last
            state = step(
                job._threshold,
                outcome.ok,
                failure_threshold=options.failure_threshold,
                success_threshold=options.success_threshold,
            )
            result = JobResult(
                name=job.name,
                ok=outcome.ok,
                healthy=state.healthy,
                output=outcome.output,
                observed=outcome.observed,
                duration=outcome.duration,
                monotonic=self._clock.monotonic(),
                time=self._clock.time(),
                consecutive_failures=state.consecutive_failures,
                consecutive_successes=state.consecutive_successes,
                timed_out=outcome.timed_out,
                number=job._successes + job._failures + 1,
                finished=job._finished,
            )
            if not job._finished and self._until(job, result):
                result = replace(result, finished=True)
            job._threshold, job._last, job._finished = state, result, result.finished
            if outcome.ok:
                job._successes += 1
            else:
                job._failures += 1
        self._observers.notify(result, previous)
        return result

    def _until(self, job: Job, result: JobResult) -> bool:
        if job.until is None:
            return False
        try:
            return bool(job.until(result))
        except Exception:
            logger.exception("%s job %s: its until predicate failed", self._name, job.name)
            return False


def _call_on_loop(loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        fn(*args)
    else:
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(fn, *args)
