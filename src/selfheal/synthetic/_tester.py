"""`SyntheticTester`: the article's scenarios, run on the shared scheduler and recorded.

The article's tester looped every second over its scenarios, called each one with no timeout
and counted successes and failures. Here every scenario is a job of a
`selfheal.scheduling.Scheduler`: its own interval with jitter, a timeout around the whole run,
never two runs at once, failure and success thresholds, and results that go stale when they
stop coming. Each run is recorded (passed, passed after a retry, failed) in a bounded history,
announced on the event bus, and read back as a status, a suite result and a `HealthSource`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._observers import Observers
from selfheal._redact import redact
from selfheal.errors import CheckError
from selfheal.events import EventBus
from selfheal.interfaces import HealthStatus
from selfheal.scheduling import JobResult, Scheduler
from selfheal.synthetic._attempts import Attempts, ScenarioFunc
from selfheal.synthetic._http import HttpScenario
from selfheal.synthetic._options import NAME_RULE, name_ok, scenario_options, shown, url_problem
from selfheal.synthetic._recording import ScenarioState, announce
from selfheal.synthetic._records import (
    RunRecord,
    ScenarioOptions,
    ScenarioReport,
    SuiteReport,
    scenario_status,
    suite_report,
)

__all__ = ["SYNTHETIC_HEADER", "SyntheticTester"]

logger = logging.getLogger("selfheal.synthetic")

#: The request header that marks synthetic traffic (value ``1``), so the service can leave it
#: out of its business metrics, rate limits and analytics.
SYNTHETIC_HEADER = "X-Selfheal-Synthetic"


@checked_keywords
class SyntheticTester:
    """Scenarios that exercise a service like a user would, every `frequency` seconds.

    The article's API, with its call shapes: ``register_scenario(name, test_func,
    frequency=)`` where ``test_func(base_url)`` raises on failure, ``start()`` (a background
    thread), ``stop()``, ``get_status()``. A scenario may also be async, or a declarative
    `HttpScenario`. Async programs and the daemon use ``await astart()`` / ``await astop()``
    or `as_component`. It is a `selfheal.interfaces.HealthSource` (one check per scenario).

    Events (source ``synthetic``): ``synthetic.<name>.completed`` after every run (data
    ``result``: ``passed``, ``passed_after_retry`` or ``failed``); ``.passed_after_retry``
    after a run that needed a retry; ``.failed`` when the scenario turns failing (after
    ``failure_threshold`` failed runs in a row) and ``.recovered`` when it passes again.

    Args:
        base_url: The URL every scenario is given (unless registered with its own).
        clock: Drives intervals, timeouts, retries and ages; `FakeClock` in tests.
        bus: Where events go; a private `EventBus` if not given (see `bus`).
        rng: Source of the interval jitter (seed it for reproducible schedules).
        history: Runs kept per scenario (a ring: the oldest go first).
        synthetic_header: The ``(name, value)`` header sent with every request of a
            declarative scenario, marking it as synthetic; None sends none.

    Raises:
        ValueError: A base URL that is not http(s), or a history below 1.
    """

    def __init__(
        self,
        base_url: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
        rng: random.Random | None = None,
        history: int = 100,
        synthetic_header: tuple[str, str] | None = (SYNTHETIC_HEADER, "1"),
    ) -> None:
        problem = url_problem(base_url)
        if problem is not None:
            raise ValueError(f"SyntheticTester: base_url {problem}, got {shown(base_url)}")
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"SyntheticTester: history must be an integer >= 1, got {history!r}")
        self.base_url = base_url
        self.clock = clock
        self.bus = bus if bus is not None else EventBus(clock=clock)
        self._history = history
        self._headers: Mapping[str, str] = MappingProxyType(
            {} if synthetic_header is None else {synthetic_header[0]: synthetic_header[1]}
        )
        self._scheduler = Scheduler(clock=clock, rng=rng, name="synthetic")
        self._scheduler.add_observer(self._record)
        self._lock = threading.RLock()
        self._scenarios: dict[str, ScenarioState] = {}
        self._observers: Observers[[RunRecord]] = Observers(logger, "synthetic observer")

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"SyntheticTester({redact(self.base_url)!r}, scenarios={self.names()!r}, {state})"

    @property
    def app_url(self) -> str:
        """Return the base URL (the article's name for it)."""
        return self.base_url

    @property
    def headers(self) -> Mapping[str, str]:
        """Return the synthetic-traffic marker header, to add to requests a function sends."""
        return self._headers

    @property
    def running(self) -> bool:
        """Return whether the scenarios run in the background."""
        return self._scheduler.running

    # -- registration -------------------------------------------------------------------

    def register_scenario(
        self,
        name: str,
        test_func: ScenarioFunc | HttpScenario,
        frequency: float = 300,
        *,
        timeout: float | None = None,
        jitter: float = 0.1,
        retries: int = 0,
        retry_delay: float = 1.0,
        critical: bool = True,
        failure_threshold: int = 1,
        success_threshold: int = 1,
        max_age: float | None = None,
        base_url: str | None = None,
        suite: str | None = None,
    ) -> ScenarioOptions:
        """Register a scenario, run every `frequency` seconds once the tester runs.

        Args:
            name: Letters, digits, ``_`` and ``-`` (it appears in event types).
            test_func: ``test_func(base_url)``, sync or async, which fails by raising (or
                returning False); or an `HttpScenario`. Sync functions run in a thread of
                their own, async ones on the tester's loop.
            frequency: Seconds from the end of one run to the start of the next.
            timeout: Seconds a whole run may take, retries and cleanup included (default:
                the smaller of 30 s and `frequency`).
            jitter: Fraction (0 to 0.5) by which each wait is lengthened or shortened at
                random, so replicas do not test in step.
            retries: Attempts after a failed first one, within the same run; a run that
                passes after a retry is recorded as such, not as a failure.
            retry_delay: Seconds between attempts.
            critical: Whether a failing scenario makes the service not ready.
            failure_threshold: Failed runs in a row before the scenario is failing.
            success_threshold: Passed runs in a row before a failing scenario recovers.
            max_age: Seconds after which the latest result is too old to trust (default:
                two frequencies plus the timeout).
            base_url: Give this scenario another URL than the tester's.
            suite: A suite name to group scenarios in `suite_report`.

        Returns:
            The validated options.

        Raises:
            ValueError: A bad argument; the message names it and what is valid.
        """
        where = "SyntheticTester.register_scenario"
        if not name_ok(name):
            raise ValueError(f"{where}: name must be {NAME_RULE}, got {name!r}")
        if not callable(test_func):
            raise ValueError(f"{where}: test_func must be a callable, got {test_func!r}")
        options, timing = scenario_options(
            where,
            frequency=frequency,
            timeout=timeout,
            jitter=jitter,
            retries=retries,
            retry_delay=retry_delay,
            critical=critical,
            failure_threshold=failure_threshold,
            success_threshold=success_threshold,
            max_age=max_age,
            base_url=base_url or self.base_url,
            suite=suite,
        )
        attempts = Attempts(
            test_func,
            options.base_url,
            retries=retries,
            retry_delay=options.retry_delay,
            clock=self.clock,
            headers=self._headers,
        )
        with self._lock:
            if name in self._scenarios:
                raise ValueError(f"{where}: a scenario named {name!r} is already registered")
            self._scenarios[name] = ScenarioState(name, options, attempts, self._history)
            self._scheduler.add(name, attempts.job, timing)
        return options

    def unregister(self, name: str) -> None:
        """Remove scenario `name` and stop its background loop.

        Raises:
            KeyError: If no scenario has that name.
        """
        with self._lock:
            self._entry(name)
            del self._scenarios[name]
            self._scheduler.remove(name)

    def names(self) -> list[str]:
        """Return the scenario names, in registration order."""
        return list(self._scenarios)

    def options(self, name: str) -> ScenarioOptions:
        """Return the options scenario `name` was registered with.

        Raises:
            KeyError: If no scenario has that name.
        """
        return self._entry(name).options

    def add_observer(self, observer: Callable[[RunRecord], object]) -> Callable[[], None]:
        """Call ``observer(record)`` after every recorded run of any scenario.

        Observers run where the run ended (the tester's loop) and must be quick; their
        exceptions are logged.

        Returns:
            A function that removes the observer.
        """
        return self._observers.add(observer)

    def _entry(self, name: str) -> ScenarioState:
        try:
            return self._scenarios[name]
        except KeyError:
            known = ", ".join(self._scenarios) or "none"
            raise KeyError(f"no synthetic scenario named {name!r} (registered: {known})") from None

    # -- reading (never runs a scenario) --------------------------------------------------

    def report(self, name: str) -> ScenarioReport:
        """Return what scenario `name` looks like now.

        Raises:
            KeyError: If no scenario has that name.
        """
        entry = self._entry(name)
        now = self.clock.monotonic()
        job = self._scheduler.report(name)
        with self._lock:
            runs = list(entry.history)
            last, healthy = entry.last, entry.healthy
            counts = (entry.successes, entry.failures, entry.after_retry)
        failing = 0 if job.result is None else job.result.consecutive_failures
        return ScenarioReport(
            name=name,
            status=scenario_status(last, healthy=healthy, stale=job.stale),
            options=entry.options,
            last=last,
            age=job.age,
            stale=job.stale,
            running=job.running,
            next_run=job.next_run,
            next_run_in=None if job.next_run is None else max(0.0, job.next_run - now),
            successes=counts[0],
            failures=counts[1],
            passed_after_retry=counts[2],
            consecutive_failures=failing,
            success_ratio=sum(r.passed for r in runs) / len(runs) if runs else None,
            history=tuple(runs),
        )

    def reports(self) -> list[ScenarioReport]:
        """Return a report for every scenario, in registration order."""
        return [self.report(name) for name in self.names()]

    def history(self, name: str) -> list[RunRecord]:
        """Return the runs of scenario `name` still in its history ring, oldest first.

        Raises:
            KeyError: If no scenario has that name.
        """
        entry = self._entry(name)
        with self._lock:
            return list(entry.history)

    def suite_report(self, suite: str | None = None) -> SuiteReport:
        """Return the result of every scenario taken together, or of those of one suite.

        Args:
            suite: A suite name given at registration; None for every scenario.
        """
        reports = [r for r in self.reports() if suite is None or r.options.suite == suite]
        return suite_report(reports, suite)

    def get_status(self) -> dict[str, dict[str, Any]]:
        """Return the status of every scenario by name (the article's call).

        Each entry has the article's ``success_count``, ``failure_count`` and ``last_run``
        (wall-clock time the latest run ended, None before the first), plus ``status``
        (passing, degraded, failing, unknown), ``last_result``, ``last_error``,
        ``passed_after_retry_count``, ``success_ratio`` and more (`ScenarioReport.to_dict`).
        """
        return {report.name: report.to_dict() for report in self.reports()}

    # -- HealthSource and readiness ----------------------------------------------------------

    def status(self, name: str) -> HealthStatus:
        """Return scenario `name` as a health check (what readiness and recovery read).

        PASS when passing, WARN when degraded (or failing but not critical), FAIL when failing
        and critical (stale results count as failing), UNKNOWN before the first run.

        Raises:
            KeyError: If no scenario has that name.
        """
        return self.report(name).health

    async def check_now(self, name: str) -> HealthStatus:
        """Run scenario `name` now (sharing a run in flight) and return its new status.

        Raises:
            KeyError: If no scenario has that name.
        """
        await self.arun(name)
        return self.status(name)

    def ready(self) -> bool:
        """Return whether no critical scenario is failing (unknown ones do not count)."""
        return self.suite_report().ready

    def readiness_check(self) -> Callable[[], Any]:
        """Return a health check that fails while a critical scenario is failing.

        Register it with the health monitor, so a broken user journey takes the service out
        of rotation: ``monitor.register("synthetic", tester.readiness_check(), interval=5)``.
        It only reads the latest results, never runs a scenario.
        """

        async def synthetic_readiness() -> Mapping[str, Any]:
            suite = self.suite_report()
            failing = suite.failing(critical_only=True)
            if failing:
                raise CheckError(f"critical synthetic scenario(s) failing: {', '.join(failing)}")
            total = len(suite.scenarios)
            return {
                "componentType": "synthetic",
                "observedValue": total - len(suite.failing()),
                "observedUnit": f"of {total} scenarios not failing",
            }

        return synthetic_readiness

    # -- running ---------------------------------------------------------------------------

    async def arun(self, name: str) -> RunRecord:
        """Run scenario `name` now (sharing a run in flight) and return its record.

        Raises:
            KeyError: If no scenario has that name.
        """
        entry = self._entry(name)
        result = await self._scheduler.run_now(name)
        with self._lock:
            for record in reversed(entry.history):
                if record.number == result.number:
                    return record
        raise KeyError(f"scenario {name!r} was removed while it ran")

    def run_scenario(self, name: str) -> RunRecord:
        """Run scenario `name` now from sync code, bounded by its timeout; return its record.

        Raises:
            KeyError: If no scenario has that name.
            RuntimeError: If called from a running event loop (use ``await arun(name)``).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(name))
        raise RuntimeError(
            "SyntheticTester.run_scenario: called from async code; use await tester.arun(name)"
        )

    def start(self) -> None:
        """Start running the scenarios in a background thread (the article's call).

        Every scenario runs at once, then every `frequency` seconds. Returns once their loops
        are started; calling it again does nothing.
        """
        self._scheduler.start_in_thread()

    def stop(self) -> None:
        """Stop the background runs and wait for them (the article's call); safe twice.

        Raises:
            RuntimeError: If called on the tester's own event loop (use ``await astop()``).
        """
        self._scheduler.stop_thread()
        loop = self._scheduler.loop
        if loop is None:
            return
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            raise RuntimeError("SyntheticTester.stop: called on its own loop; use await astop()")
        # Started with astart() on a loop in another thread: stop it there.
        asyncio.run_coroutine_threadsafe(self._scheduler.stop(), loop).result()

    async def astart(self) -> None:
        """Start running the scenarios on the running event loop.

        Raises:
            RuntimeError: If the tester already runs on another loop.
        """
        await self._scheduler.start()

    async def astop(self) -> None:
        """Stop the background runs and wait for them; safe to call twice."""
        await self._scheduler.stop()

    def as_component(self) -> _TesterComponent:
        """Return a `Component` (``await start()`` / ``await stop()``) for the daemon."""
        return _TesterComponent(self)

    def resume_after_fork(self) -> None:
        """In a forked child of a process that ran `start`, start the background thread again."""
        self._scheduler.resume_after_fork()

    # -- recording -------------------------------------------------------------------------

    def _record(self, result: JobResult, previous: JobResult | None) -> None:
        """Turn a result the scheduler recorded into a run record, counts and events."""
        with self._lock:
            entry = self._scenarios.get(result.name)
            recorded = None if entry is None else entry.record(result)
        if entry is None or recorded is None:
            return  # unregistered meanwhile, or overtaken by a later result
        record, before = recorded
        announce(self.bus, entry.options, record, result, before)
        self._observers.notify(record)


class _TesterComponent:
    """The tester as the daemon's `Component`."""

    __slots__ = ("tester",)

    def __init__(self, tester: SyntheticTester) -> None:
        self.tester = tester

    async def start(self) -> None:
        """Start the scenarios on the running loop."""
        await self.tester.astart()

    async def stop(self) -> None:
        """Stop them."""
        await self.tester.astop()
