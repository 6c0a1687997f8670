"""Health checks that never lie and never hang: a monitor, built-in checks, probe reports.

``from selfheal.health import HealthMonitor`` needs only the standard library; the HTTP
endpoints are in `selfheal.web` and the checks that talk to Redis, PostgreSQL or HTTP import
their client libraries when they are created.
"""

from selfheal.health._core import CheckKind, Transition
from selfheal.health._monitor import HealthMonitor
from selfheal.health._results import (
    AnyCheck,
    CheckOptions,
    CheckReport,
    CheckResult,
    Probe,
    ProbeReport,
    ResultObserver,
)
from selfheal.health.checks import Check, CheckError
from selfheal.interfaces import HealthSource, HealthStatus

__all__ = [
    "AnyCheck",
    "Check",
    "CheckError",
    "CheckKind",
    "CheckOptions",
    "CheckReport",
    "CheckResult",
    "HealthMonitor",
    "HealthSource",
    "HealthStatus",
    "Probe",
    "ProbeReport",
    "ResultObserver",
    "Transition",
]
