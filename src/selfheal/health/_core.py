"""The decisions of the health monitor, with no I/O: thresholds, statuses, transitions.

Everything here is a pure function of its arguments, so the rules ("two failures in a row make
a check fail", "a stale result counts as a failure", "a failing non-critical check only
degrades") are tested without running a single check.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from selfheal.interfaces import HealthStatus

__all__ = [
    "CheckKind",
    "ThresholdState",
    "Transition",
    "aggregate",
    "counted_status",
    "effective_status",
    "step",
    "transition",
]


class CheckKind(StrEnum):
    """Which probe a check answers for.

    ``LIVENESS`` checks decide whether the process must be restarted: keep them about the
    process itself (event-loop lag, memory), never about shared dependencies, or one database
    outage restarts every pod. ``READINESS`` checks (the default) decide whether traffic is
    sent. ``STARTUP`` checks run until they pass once and gate readiness until then.
    """

    LIVENESS = "liveness"
    READINESS = "readiness"
    STARTUP = "startup"


class Transition(StrEnum):
    """What changed, named as the event published for it (``health.<name>.<transition>``)."""

    FAILED = "failed"
    DEGRADED = "degraded"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class ThresholdState:
    """What the thresholds have decided about one check so far.

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
    """Return the state after one more run of a check.

    Kubernetes' rules: a healthy (or undecided) check turns unhealthy after
    `failure_threshold` failures in a row; an unhealthy check turns healthy again after
    `success_threshold` successes in a row. The first success of an undecided check makes it
    healthy at once (nothing is known to distrust it).

    Args:
        state: The state before the run.
        ok: Whether the run succeeded.
        failure_threshold: Failures in a row that make a check unhealthy (>= 1).
        success_threshold: Successes in a row that make an unhealthy check healthy (>= 1).

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


def effective_status(healthy: bool | None, *, critical: bool, stale: bool) -> HealthStatus:
    """Return what a check reports: its decided health, its criticality and its freshness.

    Args:
        healthy: The thresholds' decision (None: undecided).
        critical: Whether a failure fails the whole service (else it only degrades it).
        stale: Whether the latest result is too old to be believed.

    Returns:
        PASS, WARN (a failing non-critical check), FAIL (a failing critical check) or
        UNKNOWN (no decision yet). A stale result counts as a failure.
    """
    if stale:
        healthy = False
    if healthy is None:
        return HealthStatus.UNKNOWN
    if healthy:
        return HealthStatus.PASS
    return HealthStatus.FAIL if critical else HealthStatus.WARN


def transition(before: HealthStatus, after: HealthStatus) -> Transition | None:
    """Return the transition between two statuses of a check, if it is one worth an event.

    Args:
        before: The previous status.
        after: The new status.

    Returns:
        FAILED (now FAIL), DEGRADED (now WARN), RECOVERED (from FAIL or WARN back to PASS),
        or None (no change, or a first PASS after UNKNOWN, which is no recovery).
    """
    if before == after:
        return None
    if after == HealthStatus.FAIL:
        return Transition.FAILED
    if after == HealthStatus.WARN:
        return Transition.DEGRADED
    if after == HealthStatus.PASS and before in (HealthStatus.FAIL, HealthStatus.WARN):
        return Transition.RECOVERED
    return None


def aggregate(statuses: Iterable[HealthStatus], *, unknown: HealthStatus) -> HealthStatus:
    """Return the status of a group of checks: the worst of them.

    Args:
        statuses: The statuses of the checks in the group (an empty group passes).
        unknown: What an UNKNOWN status counts as (FAIL for readiness: not known to be ready;
            PASS for liveness: a process that has not finished its first check is not dead).

    Returns:
        FAIL if any counts as FAIL, else WARN if any is WARN, else PASS.
    """
    worst = HealthStatus.PASS
    for status in statuses:
        counted = unknown if status == HealthStatus.UNKNOWN else status
        if counted == HealthStatus.FAIL:
            return HealthStatus.FAIL
        if counted == HealthStatus.WARN:
            worst = HealthStatus.WARN
    return worst


def counted_status(
    status: HealthStatus, *, critical: bool, liveness: bool, startup: bool = False
) -> HealthStatus:
    """Return what a check's status counts as in a probe, where UNKNOWN has to be decided.

    Args:
        status: The check's status.
        critical: Whether the check is critical.
        liveness: Whether the probe is the liveness probe.
        startup: Whether it is a startup check: until it passes (once, for good) it gates
            readiness, critical or not.

    Returns:
        The status itself, or for UNKNOWN: PASS in liveness (a process that has not finished
        its first check is not dead), else FAIL (critical) or WARN: nothing is ready until
        it has been seen to be. FAIL for a startup check that has not passed.
    """
    if startup and status != HealthStatus.PASS:
        return HealthStatus.FAIL
    if status != HealthStatus.UNKNOWN:
        return status
    if liveness:
        return HealthStatus.PASS
    return HealthStatus.FAIL if critical else HealthStatus.WARN
