"""What readers see: a check's report and a probe's answer, from the recorded state alone.

The monitor records results into a `CheckState` per check; everything here only reads those
states (with no I/O and no lock), so answering a probe never runs a check, and a result
recorded meanwhile on another thread makes an answer look older than it is, never mixed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from selfheal.health._core import CheckKind, aggregate, counted_status, effective_status
from selfheal.health._results import (
    PROBE_KINDS,
    CheckOptions,
    CheckReport,
    CheckResult,
    Probe,
    ProbeReport,
)
from selfheal.interfaces import HealthStatus
from selfheal.scheduling import Job, freshness

__all__ = ["CheckState", "check_report", "probe_report"]


@dataclass(slots=True, eq=False)
class CheckState:
    """A check: its scheduled job, and the status the monitor judged from its results.

    Attributes:
        name: The check's name.
        options: Its options.
        job: The scheduler's job that runs it (whose `since` says when a first result is due).
        status: The status after the latest result (thresholds and criticality applied).
        last: The latest result.
        number: The scheduler's number of the latest result (later ones win).
        started: Whether a startup check passed: it is not run again and never goes stale.
    """

    name: str
    options: CheckOptions
    job: Job
    status: HealthStatus = HealthStatus.UNKNOWN
    last: CheckResult | None = None
    number: int = 0
    started: bool = False


def check_report(state: CheckState, now: float) -> tuple[CheckReport, float]:
    """Return what a check looks like at monotonic time `now`.

    Args:
        state: The check's recorded state.
        now: The current monotonic time.

    Returns:
        The report, and the time until which it stays true without a new result (see
        `ProbeReport.valid_until`).
    """
    # One read of each attribute: a result recorded meanwhile on another thread cannot mix
    # with the previous one.
    last, status, started, options = state.last, state.status, state.started, state.options
    fresh = freshness(
        None if last is None else last.monotonic,
        since=state.job.since,
        finished=started,
        max_age=options.max_age,
        now=now,
    )
    if fresh.stale:
        healthy = None if last is None else False
        status = effective_status(healthy, critical=options.critical, stale=True)
    report = CheckReport(
        state.name, options.kind, options.critical, status, last, fresh.age, fresh.stale
    )
    return report, fresh.valid_until


def probe_report(
    states: Sequence[CheckState],
    probe: Probe,
    *,
    exclude: Iterable[str],
    only: str | None,
    draining: bool,
    generation: int,
    now: float,
) -> ProbeReport:
    """Return the answer to a probe (see `HealthMonitor.probe`).

    Args:
        states: Every check's state, in registration order.
        probe: The probe.
        exclude: Names of checks to leave out.
        only: Ask this one check only; draining is left out.
        draining: Whether the service drains (which fails readiness).
        generation: The monitor's generation the states were read at.
        now: The current monotonic time.

    Returns:
        The report.

    Raises:
        KeyError: If `only` names no check of this probe.
    """
    kinds = PROBE_KINDS[probe]
    asked = [s for s in states if s.options.kind in kinds]
    if only is not None:
        asked = [s for s in asked if s.name == only]
        if not asked:
            raise KeyError(f"no {probe.value} check named {only!r}")
    # Asking for one check by name and excluding it would answer "pass" about nothing.
    skip = set(exclude) if only is None else set()
    excluded = tuple(s.name for s in asked if s.name in skip)
    judged = [check_report(s, now) for s in asked if s.name not in skip]
    reports = tuple(report for report, _ in judged)
    liveness = probe == Probe.LIVEZ
    counted = tuple(
        counted_status(
            r.status, critical=r.critical, liveness=liveness, startup=r.kind == CheckKind.STARTUP
        )
        for r in reports
    )
    # Draining is the service's state, not a check's: a one-check probe leaves it out.
    draining = draining and probe != Probe.LIVEZ and only is None
    status = aggregate(
        [*counted, HealthStatus.FAIL] if draining else counted, unknown=HealthStatus.FAIL
    )
    valid_until = min((until for _, until in judged), default=math.inf)
    return ProbeReport(probe, status, reports, excluded, draining, generation, valid_until, counted)
