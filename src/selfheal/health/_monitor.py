"""`HealthMonitor`: checks run in the background, each under a timeout; readers get the cache.

The article's monitor ran every check from the request that asked, one after another, with no
timeout: a probe flood became a database flood and one hanging dependency hung the probe. Here
the checks are jobs of a `selfheal.scheduling.Scheduler`: each has its own background loop
(interval with jitter), runs under its own timeout (sync checks in a daemon thread, async
checks as tasks), and never has two runs in flight. The monitor turns each result into a
status (thresholds, criticality, staleness) and an event on a change. Readers (`status`, the
HTTP endpoints) only read the latest recorded result and its age, so answering a probe costs
microseconds and calls no dependency.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import threading
import weakref
from collections.abc import Callable, Iterable

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._observers import Observers
from selfheal.events import EventBus, Severity
from selfheal.health._core import (
    CheckKind,
    Transition,
    effective_status,
    transition,
)
from selfheal.health._draining import Draining
from selfheal.health._reports import CheckState, check_report, probe_report
from selfheal.health._results import (
    AnyCheck,
    CheckOptions,
    CheckReport,
    CheckResult,
    Probe,
    ProbeReport,
    ResultObserver,
)
from selfheal.interfaces import HealthStatus
from selfheal.scheduling import JobOptions, JobResult, Scheduler

__all__ = ["HealthMonitor"]

logger = logging.getLogger("selfheal.health")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_SEVERITY = {
    Transition.FAILED: Severity.ERROR,
    Transition.DEGRADED: Severity.WARNING,
    Transition.RECOVERED: Severity.INFO,
}


@checked_keywords
class HealthMonitor(Draining):
    """Named health checks, refreshed in the background, read from a cache.

    The article's API (`register`, `check_service`, `is_healthy`, `check_all`,
    `start_monitoring`) with its call shapes, done safely: every run has a timeout, checks run
    concurrently, a failing non-critical check degrades instead of failing, and results too
    old to trust count as failures. It satisfies `selfheal.health.HealthSource` and the
    `Component` lifecycle (`await start()`, `await stop()`).

    Events on every status change: ``health.<name>.failed`` (a critical check fails),
    ``health.<name>.degraded`` (a non-critical one fails) and ``health.<name>.recovered``.

    Args:
        clock: Drives intervals, timeouts and ages; `FakeClock` in tests.
        bus: Where transition events go; a private `EventBus` if not given (see `bus`).
        rng: Source of the interval jitter (seed it for reproducible schedules).
    """

    def __init__(
        self,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(clock)
        self._clock = clock
        self.bus = bus if bus is not None else EventBus(clock=clock)
        self._scheduler = Scheduler(clock=clock, rng=rng, name="health")
        self._scheduler.add_observer(self._record)
        self._lock = threading.RLock()
        self._entries: dict[str, CheckState] = {}
        self._observers: Observers[[CheckResult, HealthStatus]] = Observers(
            logger, "health observer"
        )
        self._generation = 0
        ref = weakref.ref(self)

        def after_fork_in_child() -> None:
            # Only the forking thread survives a fork; a lock held by another one (the
            # scheduler's thread recording a result) would never be released.
            monitor = ref()
            if monitor is not None:
                monitor._lock = threading.RLock()

        os.register_at_fork(after_in_child=after_fork_in_child)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"HealthMonitor(checks={list(self._entries)!r}, {state})"

    @property
    def clock(self) -> Clock:
        """Return the clock that drives the monitor."""
        return self._clock

    @property
    def running(self) -> bool:
        """Return whether background monitoring is running."""
        return self._scheduler.running

    # -- registration -------------------------------------------------------------------

    def register(
        self,
        name: str,
        check: AnyCheck,
        interval: float = 60,
        critical: bool = True,
        *,
        timeout: float | None = None,
        kind: CheckKind | str = CheckKind.READINESS,
        failure_threshold: int = 1,
        success_threshold: int = 1,
        jitter: float = 0.1,
        max_age: float | None = None,
    ) -> CheckOptions:
        """Add a check, run every `interval` seconds in the background once monitoring runs.

        Args:
            name: Letters, digits, ``_`` and ``-`` (it appears in URLs and event types).
            check: A function or coroutine function of no arguments. It fails by raising
                (or returning False); it may return a mapping of observed values. Sync
                checks run in a thread of their own, async ones on the monitor's loop.
            interval: Seconds between runs.
            critical: Whether a failure fails the service (else it only degrades it: WARN,
                still HTTP 200).
            timeout: Seconds a run may take before it counts as failed and is abandoned
                (default: the smaller of 5 s and `interval`).
            kind: ``"readiness"`` (default; dependencies belong here), ``"liveness"`` (only
                what a restart would fix) or ``"startup"`` (runs until it passes once).
            failure_threshold: Failures in a row before the check fails.
            success_threshold: Successes in a row before a failed check recovers.
            jitter: Fraction (0 to 0.5) by which each interval is randomly lengthened or
                shortened, so checks of many replicas do not hit a dependency in step.
            max_age: Seconds after which the latest result is too old to trust and counts as
                a failure (default: two intervals plus the timeout).

        Returns:
            The validated options.

        Raises:
            ValueError: A bad argument; the message names it and what is valid.
        """
        where = "HealthMonitor.register"
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ValueError(
                f"{where}: name must be 1-63 letters, digits, '_' or '-' starting with a "
                f"letter or digit, got {name!r}"
            )
        if not callable(check):
            raise ValueError(f"{where}: check must be a callable, got {check!r}")
        try:
            kind = CheckKind(kind)
        except ValueError:
            valid = ", ".join(repr(k.value) for k in CheckKind)
            raise ValueError(f"{where}: kind must be one of {valid}, got {kind!r}") from None
        timing = JobOptions.of(
            interval=interval,
            timeout=timeout,
            jitter=jitter,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            max_age=max_age,
            where=where,
        )
        options = CheckOptions(
            interval=timing.interval,
            timeout=timing.timeout,
            critical=bool(critical),
            kind=kind,
            failure_threshold=timing.failure_threshold,
            success_threshold=timing.success_threshold,
            jitter=timing.jitter,
            max_age=timing.max_age,
        )
        # A startup check runs until it passes once.
        until = _passed if kind == CheckKind.STARTUP else None
        with self._lock:
            if name in self._entries:
                raise ValueError(f"{where}: a check named {name!r} is already registered")
            job = self._scheduler.add(name, check, timing, until=until)
            self._entries[name] = CheckState(name, options, job)
            self._generation += 1
        return options

    def unregister(self, name: str) -> None:
        """Remove check `name` and stop its background loop.

        Raises:
            KeyError: If no check has that name.
        """
        with self._lock:
            self._entry(name)
            del self._entries[name]
            self._generation += 1
            self._scheduler.remove(name)

    def names(self) -> list[str]:
        """Return the registered check names, in registration order."""
        return list(self._entries)

    def options(self, name: str) -> CheckOptions:
        """Return the options check `name` was registered with.

        Raises:
            KeyError: If no check has that name.
        """
        return self._entry(name).options

    def add_observer(self, observer: ResultObserver) -> Callable[[], None]:
        """Call `observer(result, previous_status)` after every recorded run of any check.

        Observers run on the monitor's loop and must be quick; exceptions are logged.

        Returns:
            A function that removes the observer.
        """
        return self._observers.add(observer)

    def _entry(self, name: str) -> CheckState:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise KeyError(f"no health check named {name!r} (registered: {known})") from None

    # -- reading (never runs a check) ---------------------------------------------------

    def report(self, name: str) -> CheckReport:
        """Return what check `name` looks like now, from its latest result.

        Raises:
            KeyError: If no check has that name.
        """
        return check_report(self._entry(name), self._clock.monotonic())[0]

    def status(self, name: str) -> HealthStatus:
        """Return the latest status of check `name`; a stale result counts as failing.

        A failing critical check is FAIL, a failing non-critical one WARN.

        Raises:
            KeyError: If no check has that name.
        """
        return self.report(name).status

    def reports(self) -> list[CheckReport]:
        """Return a report for every check, in registration order."""
        now = self._clock.monotonic()
        return [check_report(e, now)[0] for e in list(self._entries.values())]

    def probe(
        self, probe: Probe | str, *, exclude: Iterable[str] = (), only: str | None = None
    ) -> ProbeReport:
        """Return the answer to a probe from the cached results.

        Unknown statuses (no result yet) count as passing for ``livez`` and as failing
        (critical) or degraded (non-critical) for the others: nothing is ready until it
        has been seen to be.

        Args:
            probe: ``livez``, ``readyz`` or ``healthz``.
            exclude: Names of checks to leave out.
            only: Ask this one check only (``/readyz/<check>``); draining is left out.

        Returns:
            The report.

        Raises:
            KeyError: If `only` names no check of this probe.
        """
        # The generation is read before the results: a result recorded meanwhile makes the
        # report look older than it is (recomputed next time), never newer.
        return probe_report(
            list(self._entries.values()),
            Probe(probe),
            exclude=exclude,
            only=only,
            draining=self.draining,
            generation=self._generation,
            now=self._clock.monotonic(),
        )

    @property
    def generation(self) -> int:
        """Return a number that changes whenever a result is recorded or the checks change.

        With `ProbeReport.valid_until` it lets readers cache rendered answers safely.
        """
        return self._generation

    # -- article API ----------------------------------------------------------------------

    def check_service(self, name: str) -> HealthStatus:
        """Return the status of check `name` (the article's ``check_service``).

        While background monitoring runs this only reads the cached result (a probe never
        calls a dependency). Without monitoring it keeps the article's behaviour: the check
        runs, under its timeout, if its latest result is older than its interval. The
        article's ``"HEALTHY"``/``"UNHEALTHY"``/``"UNKNOWN"`` are `HealthStatus.PASS`
        (or WARN for a failing non-critical check), FAIL and UNKNOWN.

        Raises:
            KeyError: If no check has that name.
        """
        entry = self._entry(name)
        self._refresh_due([entry])
        return self.status(name)

    def check_all(self) -> dict[str, HealthStatus]:
        """Return every check's status by name; without monitoring, due checks run first."""
        self._refresh_due(list(self._entries.values()))
        return {report.name: report.status for report in self.reports()}

    def is_healthy(self) -> bool:
        """Return whether the service is healthy: no check fails and it is not draining.

        Degraded (WARN) still counts as healthy, as in the article, where non-critical checks
        were ignored. Runs due checks first if monitoring is not running.
        """
        self._refresh_due(list(self._entries.values()))
        return self.probe(Probe.HEALTHZ).status != HealthStatus.FAIL

    def start_monitoring(self) -> None:
        """Start background monitoring on an event loop in a daemon thread (for sync apps).

        Returns once every check's loop is started; calling it again does nothing. Async apps
        call ``await monitor.start()`` on their own loop instead.
        """
        self._scheduler.start_in_thread()

    def stop_monitoring(self) -> None:
        """Stop what `start_monitoring` started and wait for its thread; safe to call twice."""
        self._scheduler.stop_thread()

    def resume_after_fork(self) -> None:
        """In a forked child of a process that ran `start_monitoring`, start it again.

        Cheap enough to call on every request (the WSGI app does): it does nothing unless this
        process was forked while the monitoring thread ran, which the fork did not copy.
        """
        self._scheduler.resume_after_fork()

    # -- HealthSource and Component ------------------------------------------------------

    async def check_now(self, name: str) -> HealthStatus:
        """Run check `name` now, bounded by its timeout, and return its new status.

        If a run is already in flight its result is awaited instead of starting another.

        Raises:
            KeyError: If no check has that name.
        """
        self._entry(name)
        await self._scheduler.run_now(name)
        return self.status(name)

    async def start(self) -> None:
        """Start every check's background loop on the running event loop.

        Raises:
            RuntimeError: If the monitor already runs on another loop.
        """
        home = self._scheduler.loop
        if home is not None and home is not asyncio.get_running_loop():
            raise RuntimeError("HealthMonitor.start: already running on another event loop")
        await self._scheduler.start()

    async def stop(self) -> None:
        """Cancel the background loops and wait for them; safe to call twice.

        Also stops the thread of `start_monitoring` when called from another loop.
        """
        await self._scheduler.stop()

    # -- recording -------------------------------------------------------------------------

    def _record(self, job_result: JobResult, previous: JobResult | None) -> None:
        """Judge a result the scheduler recorded: status, event, observers."""
        with self._lock:
            entry = self._entries.get(job_result.name)
            if entry is None or entry.number >= job_result.number:
                return  # unregistered meanwhile, or overtaken by a later result
            options = entry.options
            before = entry.status
            status = effective_status(job_result.healthy, critical=options.critical, stale=False)
            result = CheckResult(
                name=entry.name,
                ok=job_result.ok,
                status=status,
                output=job_result.output,
                observed=job_result.observed,
                duration=job_result.duration,
                monotonic=job_result.monotonic,
                time=job_result.time,
                consecutive_failures=job_result.consecutive_failures,
                consecutive_successes=job_result.consecutive_successes,
                timed_out=job_result.timed_out,
            )
            entry.status, entry.last, entry.started = status, result, job_result.finished
            entry.number = job_result.number
            self._generation += 1
        change = transition(before, status)
        if change is not None:
            self._announce(entry, change, result)
        self._observers.notify(result, before)

    def _announce(self, entry: CheckState, change: Transition, result: CheckResult) -> None:
        if change == Transition.RECOVERED:
            logger.info("health check %s recovered", entry.name)
        else:
            logger.warning("health check %s %s: %s", entry.name, change.value, result.output)
        self.bus.emit(
            f"health.{entry.name}.{change.value}",
            "health",
            _SEVERITY[change],
            check=entry.name,
            status=result.status.value,
            kind=entry.options.kind.value,
            critical=entry.options.critical,
            output=result.output,
            duration=result.duration,
            consecutive_failures=result.consecutive_failures,
        )

    def _refresh_due(self, entries: list[CheckState]) -> None:
        """Run, without monitoring, the checks whose latest result is older than their interval."""
        if self.running:
            return
        now = self._clock.monotonic()
        due = [
            e.name
            for e in entries
            if not e.started and (e.last is None or now - e.last.monotonic >= e.options.interval)
        ]
        if not due:
            return

        async def run_all() -> None:
            await asyncio.gather(*(self._scheduler.run_now(name) for name in due))

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(run_all())
            return
        # Called from async code without monitoring: the caller's loop is busy with us, so
        # the checks run on a loop of their own (each still bounded by its timeout).
        worker = threading.Thread(target=asyncio.run, args=(run_all(),), daemon=True)
        worker.start()
        worker.join()

    def _drain_began(self) -> None:
        with self._lock:
            self._generation += 1


def _passed(result: JobResult) -> bool:
    return result.ok
