"""What the daemon runs and what recovery may ask of programs, health and features."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    pass

__all__ = ["Component", "Degradable", "HealthSource", "HealthStatus", "ProgramControl"]


# --------------------------------------------------------------------------- lifecycle


@runtime_checkable
class Component(Protocol):
    """Something the daemon starts and stops: a supervisor, a health monitor, a journal...

    `start` returns once the component is running (it may start background tasks on the
    running loop); `stop` returns once they are finished and everything is flushed.
    """

    async def start(self) -> None:
        """Start background work on the running event loop."""
        ...

    async def stop(self) -> None:
        """Stop background work, flush, release resources; safe to call twice."""
        ...


# --------------------------------------------------------------------------- supervisor


@runtime_checkable
class ProgramControl(Protocol):
    """Start, stop and restart supervised programs by name.

    Each method returns once the action is done (the program started, or stopped and reaped)
    and raises `KeyError` for an unknown name.
    """

    def program_names(self) -> list[str]:
        """Return the names of the configured programs."""
        ...

    async def start_program(self, name: str) -> None:
        """Start `name` if it is not running."""
        ...

    async def stop_program(self, name: str) -> None:
        """Stop `name` (stop signal, grace period, then SIGKILL to its process group)."""
        ...

    async def restart_program(self, name: str) -> None:
        """Stop `name` if running, then start it."""
        ...


# --------------------------------------------------------------------------- health and features


class HealthStatus(StrEnum):
    """The IETF health-check draft's statuses, plus `UNKNOWN` before the first result.

    A status also equals the article's words, so checks written from it keep working:
    ``PASS == "HEALTHY"``, ``FAIL == "UNHEALTHY"``, ``WARN == "UNHEALTHY"`` (a failing
    non-critical check: the service behind it is not healthy) and ``"DEGRADED"``,
    ``UNKNOWN == "UNKNOWN"``. Its string value stays the draft's (``"pass"``...).
    """

    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str) and other in _ARTICLE_WORDS[self.value]:
            return True
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    # Hash as the draft's string, so statuses stay usable as keys of JSON-ready dicts.
    __hash__ = str.__hash__


_ARTICLE_WORDS: dict[str, frozenset[str]] = {
    "pass": frozenset({"HEALTHY"}),
    "warn": frozenset({"UNHEALTHY", "DEGRADED"}),
    "fail": frozenset({"UNHEALTHY"}),
    "unknown": frozenset({"UNKNOWN"}),
}


@runtime_checkable
class HealthSource(Protocol):
    """Named health checks whose latest status can be read, or refreshed on demand."""

    def status(self, name: str) -> HealthStatus:
        """Return the latest status of check `name` (a stale result counts as FAIL)."""
        ...

    async def check_now(self, name: str) -> HealthStatus:
        """Run check `name` now (bounded by its timeout) and return the new status."""
        ...


@runtime_checkable
class Degradable(Protocol):
    """Anything that can switch a feature to its fallback (the `FeatureManager`, for one)."""

    def degrade(self, name: str) -> object:
        """Switch feature `name` to its fallback; may return an awaitable."""
        ...
