"""What the health monitor records and reports: options, results, per-check and probe reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from selfheal.health._core import CheckKind
from selfheal.interfaces import HealthStatus

__all__ = [
    "PROBE_KINDS",
    "AnyCheck",
    "Check",
    "CheckOptions",
    "CheckReport",
    "CheckResult",
    "Probe",
    "ProbeReport",
    "ResultObserver",
]

#: A health check: a zero-argument function or coroutine function that raises (or returns
#: False) when unhealthy and may return a mapping of observed values.
AnyCheck: TypeAlias = Callable[[], Any]

#: What every built-in check is (`selfheal.health.checks`): an async callable of no arguments
#: that raises when unhealthy and may return observed values.
Check: TypeAlias = Callable[[], Awaitable[Mapping[str, Any] | None]]


class Probe(StrEnum):
    """The three endpoints and which checks each one asks.

    ``LIVEZ`` asks liveness checks only (a failing database must not restart every pod);
    ``READYZ`` asks liveness, readiness and startup checks and fails while draining;
    ``HEALTHZ`` is the same set as ``READYZ``, for clients that know one URL only.
    """

    LIVEZ = "livez"
    READYZ = "readyz"
    HEALTHZ = "healthz"


PROBE_KINDS: dict[Probe, frozenset[CheckKind]] = {
    Probe.LIVEZ: frozenset({CheckKind.LIVENESS}),
    Probe.READYZ: frozenset(CheckKind),
    Probe.HEALTHZ: frozenset(CheckKind),
}


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """How one check is run and judged (see `HealthMonitor.register` for each field)."""

    interval: float
    timeout: float
    critical: bool
    kind: CheckKind
    failure_threshold: int
    success_threshold: int
    jitter: float
    max_age: float


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One finished run of a check, as recorded; `output` and `observed` are already redacted.

    Attributes:
        name: The check.
        ok: Whether this run succeeded.
        status: The check's status after this run, thresholds and criticality applied.
        output: Why it failed (empty on success).
        observed: What the check returned (a mapping), redacted.
        duration: Seconds the run took (the timeout, if it timed out).
        monotonic: `clock.monotonic()` when the run finished; the result's age is measured
            from it.
        time: Wall-clock seconds since the epoch when the run finished.
        consecutive_failures: Failed runs in a row, this one included.
        consecutive_successes: Successful runs in a row, this one included.
        timed_out: Whether the run was abandoned at its timeout.
    """

    name: str
    ok: bool
    status: HealthStatus
    output: str
    observed: Mapping[str, Any]
    duration: float
    monotonic: float
    time: float
    consecutive_failures: int
    consecutive_successes: int
    timed_out: bool = False


@dataclass(frozen=True, slots=True)
class CheckReport:
    """What a reader sees of one check right now.

    Attributes:
        name: The check.
        kind: Liveness, readiness or startup.
        critical: Whether a failure fails the service (else it degrades it).
        status: The status now: the latest result's status, or a failure if it is stale.
        result: The latest result, or None before the first one.
        age: Seconds since the latest result (None before the first one).
        stale: Whether the latest result is older than the check's ``max_age``.
    """

    name: str
    kind: CheckKind
    critical: bool
    status: HealthStatus
    result: CheckResult | None
    age: float | None
    stale: bool


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """The answer to one probe (``/livez``, ``/readyz``, ``/healthz``).

    Attributes:
        probe: Which probe.
        status: PASS, WARN or FAIL for the whole group (never UNKNOWN).
        checks: The reports of the checks that were asked, in registration order.
        excluded: Names that were asked to be excluded and were.
        draining: Whether the monitor is draining (which fails readiness).
        generation: The monitor's `generation` the report was made from.
        valid_until: The monotonic time until which the same report stays true if no new
            result arrives (the first moment a result in it goes stale); -inf if a result
            in it is already stale (its age changes every moment).
        counted: What each of `checks` counts as in this probe, in the same order (an
            UNKNOWN decided: PASS in ``livez``, else FAIL or WARN; an unstarted startup
            check FAIL).
    """

    probe: Probe
    status: HealthStatus
    checks: tuple[CheckReport, ...]
    excluded: tuple[str, ...] = ()
    draining: bool = False
    generation: int = 0
    valid_until: float = float("inf")
    counted: tuple[HealthStatus, ...] = ()


#: Called with every recorded result and the check's status before it (metrics use this).
ResultObserver: TypeAlias = Callable[[CheckResult, HealthStatus], object]
