"""The decisions of the health monitor, with no I/O: statuses, transitions, probe verdicts.

Everything here is a pure function of its arguments, so the rules ("a stale result counts as a
failure", "a failing non-critical check only degrades", "no result yet is alive but not
ready") are tested without running a single check. The thresholds that decide whether a check
is healthy at all are the scheduler's (`selfheal.scheduling.step`).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from selfheal.interfaces import HealthStatus

__all__ = [
    "CheckKind",
    "Transition",
    "aggregate",
    "counted_status",
    "effective_status",
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
