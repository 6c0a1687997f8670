"""What a synthetic run leaves behind, and the rules that read a status out of it (no I/O).

A run is PASSED, PASSED_AFTER_RETRY or FAILED. A scenario's status keeps "degraded" apart
from "down": DEGRADED means the latest run passed only after a retry (or failed below the
failure threshold), FAILING that the thresholds say it is down (or its results went stale).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Literal

from selfheal.interfaces import HealthStatus

__all__ = [
    "RunOutcome",
    "RunRecord",
    "ScenarioOptions",
    "ScenarioReport",
    "ScenarioStatus",
    "StepRecord",
    "SuiteReport",
    "health_status",
    "scenario_status",
    "suite_report",
]


class RunOutcome(StrEnum):
    """How one run of a scenario ended."""

    PASSED = "passed"
    PASSED_AFTER_RETRY = "passed_after_retry"
    FAILED = "failed"


class ScenarioStatus(StrEnum):
    """What a scenario looks like now, from its latest results.

    PASSING: the latest run passed at its first attempt. DEGRADED: it passed only after a
    retry, or failed fewer times in a row than the failure threshold; not down, but shown.
    FAILING: down by the thresholds, or its latest result is too old to trust. UNKNOWN: no
    run yet.
    """

    PASSING = "passing"
    DEGRADED = "degraded"
    FAILING = "failing"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One step of a declarative HTTP scenario, as its last attempt ran it.

    Attributes:
        name: The step's name.
        phase: ``"step"`` or ``"cleanup"``.
        ok: Whether it passed (False for a skipped one).
        status: The response's HTTP status, None if no response came.
        elapsed: Seconds the response took, None if none came.
        error: Why it failed or was skipped (redacted), "" if it passed.
        skipped: A cleanup step skipped because a value it needs was never captured.
    """

    name: str
    phase: Literal["step", "cleanup"]
    ok: bool
    status: int | None = None
    elapsed: float | None = None
    error: str = ""
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run of a scenario (all its attempts), as recorded.

    Attributes:
        scenario: The scenario's name.
        outcome: Passed, passed after a retry, or failed.
        attempts: Attempts made (0 when the run never started: the previous one still hung).
        error: Why it failed; for a pass after a retry, why the attempt before failed
            (redacted). "" for a first-attempt pass.
        duration: Seconds the run took, retries included (the timeout if it timed out).
        time: Wall-clock seconds since the epoch when it ended (the clock's `time`).
        monotonic: The clock's monotonic reading when it ended.
        timed_out: Whether the run was abandoned at the scenario's timeout.
        number: The scenario's result count, this one included (1 for its first).
        steps: The steps of its last attempt (declarative HTTP scenarios only).
    """

    scenario: str
    outcome: RunOutcome
    attempts: int
    error: str
    duration: float
    time: float
    monotonic: float
    timed_out: bool = False
    number: int = 1
    steps: tuple[StepRecord, ...] = ()

    @property
    def passed(self) -> bool:
        """Return whether the run passed (at once or after a retry)."""
        return self.outcome is not RunOutcome.FAILED

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out = asdict(self)
        out["outcome"] = self.outcome.value
        out["steps"] = [s.to_dict() for s in self.steps]
        return out


@dataclass(frozen=True, slots=True)
class ScenarioOptions:
    """How a scenario is run and judged, as `SyntheticTester.register_scenario` validated it.

    Attributes:
        frequency: Seconds from the end of one run to the start of the next (jittered).
        timeout: Seconds a whole run (every attempt, cleanups included) may take.
        jitter: Fraction (0 to 0.5) by which each wait is stretched or shortened at random.
        retries: Attempts after the first one within a run.
        retry_delay: Seconds between attempts.
        critical: Whether a failing scenario fails readiness (else it only degrades it).
        failure_threshold: Failed runs in a row before the scenario is FAILING.
        success_threshold: Passed runs in a row before a failing scenario recovers.
        max_age: Seconds after which the latest result is too old to trust.
        base_url: The URL its function is given.
        suite: The suite it belongs to, if any (`SyntheticTester.suite_report`).
    """

    frequency: float
    timeout: float
    jitter: float
    retries: int
    retry_delay: float
    critical: bool
    failure_threshold: int
    success_threshold: int
    max_age: float
    base_url: str
    suite: str | None = None


@dataclass(frozen=True, slots=True)
class ScenarioReport:
    """What a reader sees of one scenario right now.

    Attributes:
        name: The scenario.
        status: Passing, degraded, failing or unknown.
        options: Its options.
        last: The latest run, None before the first.
        age: Seconds since the latest run ended (None before the first).
        stale: Whether the latest result is too old to trust.
        running: Whether a run is in flight.
        next_run: The clock's monotonic time the next run is due, while the scenario's loop
            waits for it (None while a run is in flight or the tester is stopped).
        next_run_in: Seconds from the report to `next_run` (None when that is None).
        successes: Runs passed (at once or after a retry), since registration.
        failures: Runs failed, since registration.
        passed_after_retry: Runs that passed only after a retry, since registration.
        consecutive_failures: Failed runs in a row up to the latest.
        success_ratio: Passed runs over the runs in the history ring (None if empty).
        history: The runs in the history ring, oldest first.
    """

    name: str
    status: ScenarioStatus
    options: ScenarioOptions
    last: RunRecord | None
    age: float | None
    stale: bool
    running: bool
    next_run: float | None
    next_run_in: float | None
    successes: int
    failures: int
    passed_after_retry: int
    consecutive_failures: int
    success_ratio: float | None
    history: tuple[RunRecord, ...] = ()

    @property
    def health(self) -> HealthStatus:
        """Return the status as a health check's (see `health_status`)."""
        return health_status(self.status, critical=self.options.critical)

    def to_dict(self) -> dict[str, Any]:
        """Return the article's ``get_status`` entry, plus what selfheal keeps.

        ``success_count``, ``failure_count`` and ``last_run`` (wall-clock end of the latest
        run, None before the first) are the article's keys. ``history`` lists the runs in the
        ring, oldest first, as ``{"outcome", "at", "duration", "attempts"}`` (``at``: wall
        clock), for a status page's strip of recent runs.
        """
        last = self.last
        return {
            "success_count": self.successes,
            "failure_count": self.failures,
            "last_run": None if last is None else last.time,
            "status": self.status.value,
            "last_result": None if last is None else last.outcome.value,
            "last_error": "" if last is None else last.error,
            "last_duration": None if last is None else last.duration,
            "last_attempts": None if last is None else last.attempts,
            "passed_after_retry_count": self.passed_after_retry,
            "consecutive_failures": self.consecutive_failures,
            "success_ratio": self.success_ratio,
            "age": self.age,
            "stale": self.stale,
            "running": self.running,
            "next_run_in": self.next_run_in,
            "critical": self.options.critical,
            "suite": self.options.suite,
            "frequency": self.options.frequency,
            "history": [
                {
                    "outcome": r.outcome.value,
                    "at": r.time,
                    "duration": r.duration,
                    "attempts": r.attempts,
                }
                for r in self.history
            ],
        }


@dataclass(frozen=True, slots=True)
class SuiteReport:
    """The result of a suite of scenarios taken together (all of a tester's, or one suite's).

    Attributes:
        suite: The suite's name, None for every scenario of the tester.
        status: FAILING if any scenario fails, else DEGRADED if any is degraded, else
            UNKNOWN if any has no result yet, else PASSING (UNKNOWN for an empty suite).
        ready: No critical scenario is FAILING (unknown ones do not hold readiness back).
        counts: How many scenarios have each status (every status present, maybe 0).
        scenarios: The reports it was computed from, in registration order.
    """

    suite: str | None
    status: ScenarioStatus
    ready: bool
    counts: Mapping[ScenarioStatus, int]
    scenarios: tuple[ScenarioReport, ...]

    def failing(self, *, critical_only: bool = False) -> list[str]:
        """Return the names of the FAILING scenarios (only critical ones if asked)."""
        return [
            r.name
            for r in self.scenarios
            if r.status is ScenarioStatus.FAILING and (r.options.critical or not critical_only)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "suite": self.suite,
            "status": self.status.value,
            "ready": self.ready,
            "counts": {status.value: n for status, n in self.counts.items()},
            "scenarios": {r.name: r.to_dict() for r in self.scenarios},
        }


def scenario_status(last: RunRecord | None, *, healthy: bool | None, stale: bool) -> ScenarioStatus:
    """Return a scenario's status from its latest run and the thresholds' decision.

    Args:
        last: The latest run, None before the first.
        healthy: The thresholds' decision after it (None: undecided).
        stale: Whether the latest result (or the first one, overdue) is too old to trust.

    Returns:
        FAILING when down or stale; PASSING when the latest run passed at once; DEGRADED
        when it passed after a retry or failed below the threshold; UNKNOWN before any run.
    """
    if stale or healthy is False:
        return ScenarioStatus.FAILING
    if last is None:
        return ScenarioStatus.UNKNOWN
    if last.outcome is RunOutcome.PASSED:
        return ScenarioStatus.PASSING
    return ScenarioStatus.DEGRADED


def health_status(status: ScenarioStatus, *, critical: bool) -> HealthStatus:
    """Return a scenario status as a health check's: what readiness and recovery read.

    PASSING is PASS, DEGRADED is WARN, FAILING is FAIL for a critical scenario and WARN for
    another, UNKNOWN stays UNKNOWN.
    """
    if status is ScenarioStatus.PASSING:
        return HealthStatus.PASS
    if status is ScenarioStatus.DEGRADED:
        return HealthStatus.WARN
    if status is ScenarioStatus.FAILING:
        return HealthStatus.FAIL if critical else HealthStatus.WARN
    return HealthStatus.UNKNOWN


def suite_report(reports: Iterable[ScenarioReport], suite: str | None = None) -> SuiteReport:
    """Return the suite-level result of some scenario reports.

    Args:
        reports: The scenarios' reports.
        suite: The suite's name (None: all of a tester's scenarios).

    Returns:
        The suite's report.
    """
    scenarios = tuple(reports)
    counts = dict.fromkeys(ScenarioStatus, 0)
    for report in scenarios:
        counts[report.status] += 1
    status = ScenarioStatus.UNKNOWN
    for worst in (ScenarioStatus.FAILING, ScenarioStatus.DEGRADED, ScenarioStatus.UNKNOWN):
        if counts[worst]:
            status = worst
            break
    else:
        if scenarios:
            status = ScenarioStatus.PASSING
    ready = not any(r.status is ScenarioStatus.FAILING and r.options.critical for r in scenarios)
    return SuiteReport(suite, status, ready, counts, scenarios)
