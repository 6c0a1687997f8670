"""What other components (recovery verification, the supervisor) may ask of health checks."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol, runtime_checkable

__all__ = ["HealthSource", "HealthStatus"]


class HealthStatus(StrEnum):
    """The IETF health-check draft's statuses, plus `UNKNOWN` before the first result."""

    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"


@runtime_checkable
class HealthSource(Protocol):
    """Named health checks whose latest status can be read, or refreshed on demand."""

    def status(self, name: str) -> HealthStatus:
        """Return the latest status of check `name` (a stale result counts as FAIL)."""
        ...

    async def check_now(self, name: str) -> HealthStatus:
        """Run check `name` now (bounded by its timeout) and return the new status."""
        ...
