"""From a result the scheduler recorded to a run record, its counts and its events.

The scheduler knows whether a run passed, how long it took and whether it timed out; the run's
`Progress` knows how many attempts it made and what each said. `ScenarioState.record` puts
the two together; `announce` publishes what happened on the bus.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from selfheal.events import EventBus, Severity
from selfheal.scheduling import JobResult
from selfheal.synthetic._attempts import Attempts
from selfheal.synthetic._records import RunOutcome, RunRecord, ScenarioOptions

__all__ = ["SOURCE", "ScenarioState", "announce"]

logger = logging.getLogger("selfheal.synthetic")

#: The source of every event the tester publishes.
SOURCE = "synthetic"


class ScenarioState:
    """One registered scenario: its settings, its runner and what its runs left behind.

    Written only by `record`, under the tester's lock; read under it.
    """

    __slots__ = (
        "after_retry",
        "attempts",
        "failures",
        "healthy",
        "history",
        "last",
        "name",
        "number",
        "options",
        "successes",
    )

    def __init__(
        self, name: str, options: ScenarioOptions, attempts: Attempts, history: int
    ) -> None:
        self.name = name
        self.options = options
        self.attempts = attempts
        self.history: deque[RunRecord] = deque(maxlen=history)
        self.last: RunRecord | None = None
        self.healthy: bool | None = None
        self.number = 0
        self.successes = 0
        self.failures = 0
        self.after_retry = 0

    def record(self, result: JobResult) -> tuple[RunRecord, bool | None] | None:
        """Record a result of the scheduler's; return the run and the health before it.

        Returns:
            None for a result older than the latest recorded one.
        """
        if self.number >= result.number:
            return None
        progress = self.attempts.progress
        if progress is not None and progress.recorded:
            progress = None  # this result never started a run: the previous one still hung
        if progress is not None:
            progress.recorded = True
        attempts = 0 if progress is None else progress.attempts
        if not result.ok:
            outcome, error = RunOutcome.FAILED, result.output
        elif attempts > 1 and progress is not None:
            outcome = RunOutcome.PASSED_AFTER_RETRY
            error = progress.errors[-1] if progress.errors else ""
        else:
            outcome, error = RunOutcome.PASSED, ""
        record = RunRecord(
            scenario=self.name,
            outcome=outcome,
            attempts=attempts,
            error=error,
            duration=result.duration,
            time=result.time,
            monotonic=result.monotonic,
            timed_out=result.timed_out,
            number=result.number,
            steps=() if progress is None else tuple(progress.steps),
        )
        before, self.healthy = self.healthy, result.healthy
        self.last, self.number = record, result.number
        self.history.append(record)
        if record.passed:
            self.successes += 1
            self.after_retry += outcome is RunOutcome.PASSED_AFTER_RETRY
        else:
            self.failures += 1
        return record, before


def announce(
    bus: EventBus,
    options: ScenarioOptions,
    record: RunRecord,
    result: JobResult,
    before: bool | None,
) -> None:
    """Publish a run: ``.completed`` always, ``.passed_after_retry``, ``.failed``/``.recovered``.

    ``.failed`` and ``.recovered`` follow the thresholds' decision (`JobResult.healthy`) as it
    changes, so a recovery rule acts once per outage, not once per failed run.
    """
    name = record.scenario
    down = Severity.ERROR if options.critical else Severity.WARNING
    data: dict[str, Any] = {
        "scenario": name,
        "result": record.outcome.value,
        "attempts": record.attempts,
        "duration": record.duration,
        "error": record.error,
        "step": next((s.name for s in record.steps if not s.ok and not s.skipped), None),
        "critical": options.critical,
        "suite": options.suite,
        "consecutive_failures": result.consecutive_failures,
    }
    severity = {
        RunOutcome.PASSED: Severity.INFO,
        RunOutcome.PASSED_AFTER_RETRY: Severity.WARNING,
        RunOutcome.FAILED: down,
    }[record.outcome]
    logger.debug("synthetic scenario %s: %s", name, record.outcome.value)
    bus.emit(f"synthetic.{name}.completed", SOURCE, severity, **data)
    if record.outcome is RunOutcome.PASSED_AFTER_RETRY:
        logger.info("synthetic scenario %s passed after a retry: %s", name, record.error)
        bus.emit(f"synthetic.{name}.passed_after_retry", SOURCE, severity, **data)
    if result.healthy is False and before is not False:
        logger.warning("synthetic scenario %s failed: %s", name, record.error)
        bus.emit(f"synthetic.{name}.failed", SOURCE, down, **data)
    elif result.healthy is True and before is False:
        logger.info("synthetic scenario %s recovered", name)
        bus.emit(f"synthetic.{name}.recovered", SOURCE, Severity.INFO, **data)
