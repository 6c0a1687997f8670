"""The daemon's health checks from its plan: the ``[health]`` section, without pydantic.

`selfheal.runtime.health_config` validates the section and compiles each check into plain
data (its kind, the arguments of the `selfheal.health.checks` factory of that kind, the
monitor's options); this module makes the checks and registers them on a `HealthMonitor`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import EventBus
from selfheal.health import HealthMonitor
from selfheal.health.checks import (
    Check,
    command_check,
    disk_space_check,
    http_check,
    memory_check,
    postgres_check,
    process_check,
    redis_check,
    sqlite_check,
    tcp_check,
)

__all__ = ["KINDS", "build_check", "health_monitor_from_plan", "register_checks"]

#: The factory of each kind of check a config can name.
_FACTORIES: dict[str, Callable[..., Check]] = {
    "http": http_check,
    "tcp": tcp_check,
    "redis": redis_check,
    "postgres": postgres_check,
    "sqlite": sqlite_check,
    "command": command_check,
    "disk": disk_space_check,
    "memory": memory_check,
    "process": process_check,
}

#: The kinds of check a ``[health.checks.NAME]`` table can be, in the order docs list them.
KINDS: tuple[str, ...] = tuple(_FACTORIES)


def build_check(kind: str, args: Mapping[str, Any], *, clock: Clock = SYSTEM_CLOCK) -> Check:
    """Return the check of `kind` made by its factory with `args`.

    Args:
        kind: One of `KINDS`.
        args: The factory's keyword arguments (as `HealthCheckConfig.to_plan` compiles them).
        clock: Given to the checks that time something (``http``).

    Raises:
        KeyError: For an unknown kind.
        ValueError: What the factory refuses.
        ImportError: The factory's extra is not installed.
    """
    factory = _FACTORIES[kind]
    extra = {"clock": clock} if kind == "http" else {}
    return factory(**args, **extra)


def register_checks(
    monitor: HealthMonitor, checks: Sequence[Mapping[str, Any]], *, clock: Clock = SYSTEM_CLOCK
) -> None:
    """Register the compiled `checks` (``extra["health"]["checks"]`` of a plan) on `monitor`."""
    for spec in checks:
        check = build_check(spec["kind"], spec["args"], clock=clock)
        monitor.register(spec["name"], check, **spec["options"])


def health_monitor_from_plan(
    section: Mapping[str, Any] | None, *, clock: Clock = SYSTEM_CLOCK, bus: EventBus | None = None
) -> HealthMonitor:
    """Return a `HealthMonitor` with the checks of a plan's ``[health]`` section.

    Args:
        section: ``plan.extra.get("health")``; None or empty gives a monitor with no checks.
        clock: The monitor's (and the checks') clock.
        bus: Where ``health.<name>.failed|degraded|recovered`` go.
    """
    monitor = HealthMonitor(clock=clock, bus=bus)
    register_checks(monitor, list((section or {}).get("checks", [])), clock=clock)
    return monitor
