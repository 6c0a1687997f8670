"""`HealthMonitor`: checks run in the background, each under a timeout; readers get the cache.

The article's monitor ran every check from the request that asked, one after another, with no
timeout: a probe flood became a database flood and one hanging dependency hung the probe. Here
each check has its own background loop (interval with jitter), runs under its own timeout
(sync checks in a daemon thread, async checks as tasks), and never has two runs in flight.
Readers (`status`, the HTTP endpoints) only read the latest recorded result and its age, so
answering a probe costs microseconds and calls no dependency.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import random
import re
import signal
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from selfheal._calls import is_async_callable
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._threads import in_own_thread
from selfheal.events import EventBus, Severity
from selfheal.health._core import (
    CheckKind,
    ThresholdState,
    Transition,
    aggregate,
    counted_status,
    effective_status,
    step,
    transition,
)
from selfheal.health._results import (
    PROBE_KINDS,
    AnyCheck,
    CheckOptions,
    CheckReport,
    CheckResult,
    Probe,
    ProbeReport,
    ResultObserver,
)
from selfheal.health._runner import Outcome, run_check
from selfheal.interfaces import HealthStatus

__all__ = [
    "AnyCheck",
    "CheckOptions",
    "CheckReport",
    "CheckResult",
    "HealthMonitor",
    "Probe",
    "ProbeReport",
    "ResultObserver",
]

logger = logging.getLogger("selfheal.health")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_SEVERITY = {
    Transition.FAILED: Severity.ERROR,
    Transition.DEGRADED: Severity.WARNING,
    Transition.RECOVERED: Severity.INFO,
}


@dataclass(slots=True, eq=False)
class _Entry:
    name: str
    check: AnyCheck
    is_async: bool
    options: CheckOptions
    threshold: ThresholdState = field(default_factory=ThresholdState)
    status: HealthStatus = HealthStatus.UNKNOWN
    last: CheckResult | None = None
    # The run whose result concurrent callers share (one in flight per check).
    pending: concurrent.futures.Future[CheckResult] | None = None
    # Set while the check's code is still executing, even after its run timed out: a hung
    # check is not started again until it returns.
    busy_since: float | None = None
    # When its background loop was first started: a first result is due within max_age of
    # it, or "no result yet" would count as alive for ever when the loop never delivers.
    expected_since: float | None = None
    started: bool = False
    task: asyncio.Task[None] | None = None


class HealthMonitor:
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
        self._clock = clock
        self.bus = bus if bus is not None else EventBus(clock=clock)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._lock = threading.RLock()
        self._entries: dict[str, _Entry] = {}
        self._observers: tuple[ResultObserver, ...] = ()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._drain_started: float | None = None
        self._drain_seconds = 0.0
        self._generation = 0
        # Set in a forked child whose parent monitored in a thread: that thread did not
        # survive the fork (gunicorn --preload), so the child restarts it (`resume_after_fork`).
        self._forked_while_monitoring = False
        ref = weakref.ref(self)

        def after_fork_in_child() -> None:
            monitor = ref()
            if monitor is not None:
                monitor._after_fork()

        os.register_at_fork(after_in_child=after_fork_in_child)

    def __repr__(self) -> str:
        state = "running" if self._loop is not None else "stopped"
        return f"HealthMonitor(checks={list(self._entries)!r}, {state})"

    @property
    def clock(self) -> Clock:
        """Return the clock that drives the monitor."""
        return self._clock

    @property
    def running(self) -> bool:
        """Return whether background monitoring is running."""
        return self._loop is not None

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
        interval = _positive(where, "interval", interval)
        timeout = min(5.0, interval) if timeout is None else _positive(where, "timeout", timeout)
        try:
            kind = CheckKind(kind)
        except ValueError:
            valid = ", ".join(repr(k.value) for k in CheckKind)
            raise ValueError(f"{where}: kind must be one of {valid}, got {kind!r}") from None
        for field_name, value in (
            ("failure_threshold", failure_threshold),
            ("success_threshold", success_threshold),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{where}: {field_name} must be an integer >= 1, got {value!r}")
        if (
            isinstance(jitter, bool)
            or not isinstance(jitter, int | float)
            or not 0 <= jitter <= 0.5
        ):
            raise ValueError(f"{where}: jitter must be a fraction from 0 to 0.5, got {jitter!r}")
        floor = interval * (1 + jitter) + timeout
        if max_age is None:
            max_age = interval * (2 + jitter) + timeout
        elif _positive(where, "max_age", max_age) < floor:
            raise ValueError(
                f"{where}: max_age must be at least interval * (1 + jitter) + timeout "
                f"({floor:g} s), or results go stale before the next one can arrive; "
                f"got {max_age!r}"
            )
        options = CheckOptions(
            interval=interval,
            timeout=timeout,
            critical=bool(critical),
            kind=kind,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            jitter=float(jitter),
            max_age=float(max_age),
        )
        entry = _Entry(name, check, is_async_callable(check), options)
        with self._lock:
            if name in self._entries:
                raise ValueError(f"{where}: a check named {name!r} is already registered")
            self._entries[name] = entry
            self._generation += 1
            loop = self._loop
        if loop is not None:
            self._call_on_loop(loop, self._spawn, entry)
        return options

    def unregister(self, name: str) -> None:
        """Remove check `name` and stop its background loop.

        Raises:
            KeyError: If no check has that name.
        """
        with self._lock:
            entry = self._entry(name)
            del self._entries[name]
            self._generation += 1
            loop, task = self._loop, entry.task
        if loop is not None and task is not None:
            self._call_on_loop(loop, task.cancel)

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
        with self._lock:
            self._observers = (*self._observers, observer)

        def remove() -> None:
            with self._lock:
                self._observers = tuple(o for o in self._observers if o is not observer)

        return remove

    def _entry(self, name: str) -> _Entry:
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
        return self._report(self._entry(name), self._clock.monotonic())

    def _report(self, entry: _Entry, now: float) -> CheckReport:
        # One read of each attribute: a result recorded meanwhile on another thread cannot
        # mix with the previous one.
        last, status, options = entry.last, entry.status, entry.options
        if last is None:
            since = entry.expected_since
            overdue = since is not None and now - since > options.max_age
            if overdue:
                status = effective_status(None, critical=options.critical, stale=True)
            return CheckReport(
                entry.name, options.kind, options.critical, status, None, None, overdue
            )
        age = max(0.0, now - last.monotonic)
        # A startup check that passed is done for good; its result never goes stale.
        stale = age > options.max_age and not entry.started
        if stale:
            status = effective_status(False, critical=options.critical, stale=True)
        return CheckReport(entry.name, options.kind, options.critical, status, last, age, stale)

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
        return [self._report(e, now) for e in list(self._entries.values())]

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
        probe = Probe(probe)
        kinds = PROBE_KINDS[probe]
        # Read before the results: a result recorded meanwhile makes the report look older
        # than it is (recomputed next time), never newer.
        generation = self._generation
        now = self._clock.monotonic()
        entries = [e for e in list(self._entries.values()) if e.options.kind in kinds]
        if only is not None:
            entries = [e for e in entries if e.name == only]
            if not entries:
                raise KeyError(f"no {probe.value} check named {only!r}")
        # Asking for one check by name and excluding it would answer "pass" about nothing.
        skip = set(exclude) if only is None else set()
        excluded = tuple(e.name for e in entries if e.name in skip)
        kept = [e for e in entries if e.name not in skip]
        reports = tuple(self._report(e, now) for e in kept)
        liveness = probe == Probe.LIVEZ
        counted = [
            counted_status(
                r.status,
                critical=r.critical,
                liveness=liveness,
                startup=r.kind == CheckKind.STARTUP,
            )
            for r in reports
        ]
        # Draining is the service's state, not a check's: a one-check probe leaves it out.
        draining = self.draining and probe != Probe.LIVEZ and only is None
        if draining:
            counted.append(HealthStatus.FAIL)
        status = aggregate(counted, unknown=HealthStatus.FAIL)
        valid_until = float("inf")
        for entry, report in zip(kept, reports, strict=True):
            if report.stale:
                valid_until = float("-inf")
            elif entry.started:
                continue
            elif report.result is not None:
                valid_until = min(valid_until, report.result.monotonic + entry.options.max_age)
            elif entry.expected_since is not None:
                valid_until = min(valid_until, entry.expected_since + entry.options.max_age)
        return ProbeReport(probe, status, reports, excluded, draining, generation, valid_until)

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
        with self._lock:
            if self._loop is not None:
                return
            ready = threading.Event()
            failure: list[BaseException] = []
            thread = threading.Thread(
                target=self._thread_main, args=(ready, failure), name="selfheal-health", daemon=True
            )
            self._thread = thread
        thread.start()
        ready.wait()
        if failure:
            raise failure[0]

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

    def stop_monitoring(self) -> None:
        """Stop what `start_monitoring` started and wait for its thread; safe to call twice."""
        with self._lock:
            thread, loop = self._thread, self._loop
            self._thread = None
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()

    def _after_fork(self) -> None:
        # In the child, only the forking thread exists: the monitoring thread, its loop's
        # tasks and any check threads are gone, and a lock held by one of them would never be
        # released. (A monitor started on the caller's loop with `start` is left alone: if
        # the fork happened on that loop, the child's copy of it runs on.)
        thread = self._thread
        if thread is None or threading.current_thread() is thread:
            return
        self._lock = threading.RLock()
        self._forked_while_monitoring = True
        self._loop = None
        self._thread = None
        for entry in self._entries.values():
            entry.task = None
            entry.pending = None
            entry.busy_since = None

    def resume_after_fork(self) -> None:
        """In a forked child of a process that ran `start_monitoring`, start it again.

        Cheap enough to call on every request (the WSGI app does): it does nothing unless this
        process was forked while the monitoring thread ran, which the fork did not copy.
        """
        if self._forked_while_monitoring:
            self._forked_while_monitoring = False
            self.start_monitoring()

    # -- HealthSource and Component ------------------------------------------------------

    async def check_now(self, name: str) -> HealthStatus:
        """Run check `name` now, bounded by its timeout, and return its new status.

        If a run is already in flight its result is awaited instead of starting another.

        Raises:
            KeyError: If no check has that name.
        """
        entry = self._entry(name)
        home = self._loop
        current = asyncio.get_running_loop()
        if home is None or home is current:
            await self._run(entry)
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._run(entry), home))
        return self.status(name)

    async def start(self) -> None:
        """Start every check's background loop on the running event loop.

        Raises:
            RuntimeError: If the monitor already runs on another loop.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._loop is loop:
                return
            if self._loop is not None:
                raise RuntimeError("HealthMonitor.start: already running on another event loop")
            self._loop = loop
            entries = list(self._entries.values())
        for entry in entries:
            self._spawn(entry)

    async def stop(self) -> None:
        """Cancel the background loops and wait for them; safe to call twice.

        Also stops the thread of `start_monitoring` when called from another loop.
        """
        with self._lock:
            thread, home = self._thread, self._loop
        if thread is not None and home is not asyncio.get_running_loop():
            # A thread of its own, not asyncio.to_thread: the loop's shared pool may be
            # full of hung user code at shutdown.
            await in_own_thread(self.stop_monitoring, name="health-stop")
            return
        with self._lock:
            loop, self._loop = self._loop, None
            tasks = [e.task for e in self._entries.values() if e.task is not None]
            for entry in self._entries.values():
                entry.task = None
        if loop is None:
            return
        for task in tasks:
            task.cancel()
        if loop is asyncio.get_running_loop():
            await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, entry: _Entry) -> None:
        loop = self._loop
        if loop is None or entry.task is not None or entry.name not in self._entries:
            return
        if entry.expected_since is None:
            entry.expected_since = self._clock.monotonic()
        entry.task = loop.create_task(self._loop_forever(entry), name=f"health:{entry.name}")

    @staticmethod
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

    async def _loop_forever(self, entry: _Entry) -> None:
        options = entry.options
        while True:
            if options.kind == CheckKind.STARTUP and entry.started:
                return
            try:
                await self._run(entry)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug here must not silently end the check's loop: its results would
                # stop coming and it would only be noticed when they went stale.
                logger.exception("health check %s: internal error", entry.name)
            if options.kind == CheckKind.STARTUP and entry.started:
                return
            spread = options.jitter * (2 * self._rng.random() - 1)
            await self._clock.asleep(options.interval * (1 + spread))

    # -- running one check -----------------------------------------------------------------

    async def _run(self, entry: _Entry) -> CheckResult:
        now = self._clock.monotonic()
        with self._lock:
            shared = entry.pending
            mine: concurrent.futures.Future[CheckResult] | None = None
            hung_for = None if entry.busy_since is None else now - entry.busy_since
            if shared is None and hung_for is None:
                mine = entry.pending = concurrent.futures.Future()
                entry.busy_since = now
        if shared is not None:
            # shield: a waiter that is cancelled must not cancel the run the others share.
            return await asyncio.shield(asyncio.wrap_future(shared))
        if mine is None:
            output = (
                f"previous run has not returned after {hung_for:.3g} s (hung); not started again"
            )
            return self._record(entry, Outcome(False, output, timed_out=True))
        try:
            outcome = await run_check(
                entry.check,
                name=entry.name,
                is_async=entry.is_async,
                timeout=entry.options.timeout,
                clock=self._clock,
                on_finish=lambda: self._finished(entry),
            )
            result = self._record(entry, outcome)
        except BaseException:
            with self._lock:
                entry.pending = None
            mine.cancel()
            raise
        with self._lock:
            entry.pending = None
        mine.set_result(result)
        return result

    def _finished(self, entry: _Entry) -> None:
        with self._lock:
            entry.busy_since = None

    def _record(self, entry: _Entry, outcome: Outcome) -> CheckResult:
        options = entry.options
        with self._lock:
            before = entry.status
            state = step(
                entry.threshold,
                outcome.ok,
                failure_threshold=options.failure_threshold,
                success_threshold=options.success_threshold,
            )
            status = effective_status(state.healthy, critical=options.critical, stale=False)
            result = CheckResult(
                name=entry.name,
                ok=outcome.ok,
                status=status,
                output=outcome.output,
                observed=outcome.observed,
                duration=outcome.duration,
                monotonic=self._clock.monotonic(),
                time=self._clock.time(),
                consecutive_failures=state.consecutive_failures,
                consecutive_successes=state.consecutive_successes,
                timed_out=outcome.timed_out,
            )
            entry.threshold, entry.status, entry.last = state, status, result
            self._generation += 1
            if outcome.ok and options.kind == CheckKind.STARTUP:
                entry.started = True
            observers = self._observers
        change = transition(before, status)
        if change is not None:
            self._announce(entry, change, result)
        for observer in observers:
            try:
                observer(result, before)
            except Exception:
                logger.exception("health observer %r failed", observer)
        return result

    def _announce(self, entry: _Entry, change: Transition, result: CheckResult) -> None:
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

    def _refresh_due(self, entries: list[_Entry]) -> None:
        """Run, without monitoring, the checks whose latest result is older than their interval."""
        if self._loop is not None:
            return
        now = self._clock.monotonic()
        due = [
            e
            for e in entries
            if not e.started and (e.last is None or now - e.last.monotonic >= e.options.interval)
        ]
        if not due:
            return

        async def run_all() -> None:
            await asyncio.gather(*(self._run(e) for e in due))

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

    # -- draining ------------------------------------------------------------------------

    def start_draining(self, seconds: float = 0.0) -> None:
        """Fail readiness from now on, so load balancers stop sending traffic before shutdown.

        Liveness is unaffected. `drained` turns true after `seconds`, the time the caller
        should keep serving before it shuts down.

        Args:
            seconds: The drain period.
        """
        seconds = max(0.0, float(seconds))
        with self._lock:
            if self._drain_started is None:
                self._drain_started = self._clock.monotonic()
                self._generation += 1
                self._drain_seconds = seconds
        logger.info("health: draining for %g s; readiness now fails", seconds)

    @property
    def draining(self) -> bool:
        """Return whether `start_draining` was called (readiness fails)."""
        return self._drain_started is not None

    @property
    def drained(self) -> bool:
        """Return whether the drain period has passed."""
        started = self._drain_started
        return started is not None and self._clock.monotonic() - started >= self._drain_seconds

    async def wait_drained(self) -> None:
        """Wait (on the monitor's clock) until the drain period has passed.

        Raises:
            RuntimeError: If draining was never started.
        """
        started = self._drain_started
        if started is None:
            raise RuntimeError("HealthMonitor.wait_drained: start_draining() was not called")
        remaining = started + self._drain_seconds - self._clock.monotonic()
        if remaining > 0:
            await self._clock.asleep(remaining)

    def install_signal_handlers(
        self,
        drain_seconds: float = 5.0,
        *,
        signals: Iterable[signal.Signals] = (signal.SIGTERM,),
    ) -> Callable[[], None]:
        """On SIGTERM, fail readiness for `drain_seconds`, then deliver the signal as before.

        The first signal starts draining and puts the previous handler back; after the drain
        period the signal is sent again, so the server's own shutdown (uvicorn's, gunicorn's,
        or the default termination) runs then. A second signal during the drain goes straight
        to the previous handler. Call it from the main thread, after the server installed its
        handlers (e.g. in the ASGI lifespan startup).

        Args:
            drain_seconds: How long readiness fails before the shutdown proceeds.
            signals: The signals to intercept.

        Returns:
            A function that puts the previous handlers back.

        Raises:
            RuntimeError: If called outside the main thread.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "HealthMonitor.install_signal_handlers: signal handlers can only be installed "
                "from the main thread"
            )
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            old = previous.get(signum, signal.SIG_DFL)
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
            self.start_draining(drain_seconds)

            def redeliver() -> None:
                self._clock.sleep(drain_seconds)
                os.kill(os.getpid(), signum)

            threading.Thread(target=redeliver, name="selfheal-drain", daemon=True).start()

        for sig in signals:
            previous[int(sig)] = signal.signal(sig, handler)

        def restore() -> None:
            for signum, old in previous.items():
                if signal.getsignal(signum) is handler:
                    signal.signal(signum, old if old is not None else signal.SIG_DFL)

        return restore


def _positive(where: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{where}: {name} must be a number of seconds > 0, got {value!r}")
    return float(value)
