"""What the supervisor tells operators: one log line per state change, in supervisord's words.

``spawned: 'web' with pid 123``, ``success: web entered RUNNING state (readiness probe
passed)``, ``exited: web (exit status 1; not expected)``, ``gave up: web entered FATAL state,
more than 10 restarts in 60 s``. Each line is logged at the level of the event it reports
(`selfheal.events.log_level`), with the event's data attached for structured (JSON) logs.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["describe_exit", "log_lines", "narrate", "seconds"]

_SIGNALS = {int(s): s.name for s in signal.Signals}
_logger = logging.getLogger("selfheal.supervisor")


def log_lines(lines: list[tuple[int, str, dict[str, Any]]]) -> None:
    """Log each ``(level, line, extra)`` to the supervisor's logger."""
    for level, line, extra in lines:
        _logger.log(level, line, extra=extra)


def seconds(value: float) -> str:
    """Return a duration for people: ``250 ms``, ``1.5 s``, ``2m05s``, ``1h02m``."""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.3g} s"
    whole = int(value)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def describe_exit(code: int | None) -> str:
    """Return how a process ended: ``exit status 1`` or ``terminated by SIGKILL``."""
    if code is None:
        return "never started"
    if code < 0:
        return f"terminated by {_SIGNALS.get(-code, f'signal {-code}')}"
    return f"exit status {code}"


def narrate(kind: str, instance: str, data: Mapping[str, Any], *, note: str = "") -> str:
    """Return the log line for a ``process.<program>.<kind>`` event of `instance`.

    Args:
        kind: The last segment of the event's type (``started``, ``ready``, ``exited``...),
            as the driver that emits it knows it.
        instance: The process (``web``, ``worker:1``).
        data: The event's data.
        note: What the event does not carry: why it became ready, whether an exit was
            a success.

    Returns:
        One line, values formatted for people.
    """
    words = _LINES.get(kind)
    return words(instance, data, note) if words is not None else f"{kind}: {instance}"


def _started(instance: str, data: Mapping[str, Any], note: str) -> str:
    attempt = data.get("attempt") or 0
    again = f" (restart {attempt} in a row)" if attempt > 1 else ""
    return f"spawned: '{instance}' with pid {data.get('pid')}{again}"


def _ready(instance: str, data: Mapping[str, Any], note: str) -> str:
    return f"success: {instance} entered RUNNING state" + (f" ({note})" if note else "")


def _exited(instance: str, data: Mapping[str, Any], note: str) -> str:
    if data.get("error"):
        return f"spawnerr: {instance}: {data['error']}"
    how = describe_exit(data.get("exit_code"))
    uptime = data.get("uptime")
    ran = f", after {seconds(uptime)}" if isinstance(uptime, int | float) else ""
    if data.get("expected"):
        return f"stopped: {instance} ({how}{ran})"
    return f"exited: {instance} ({how}; {note or 'not expected'}{ran})"


def _backoff(instance: str, data: Mapping[str, Any], note: str) -> str:
    delay = float(data.get("delay") or 0.0)
    when = "at once" if delay <= 0 else f"in {seconds(delay)}"
    return (
        f"backoff: {instance} will be restarted {when} ({data.get('reason') or 'exited'}; "
        f"{data.get('restarts')} restart(s) in the window)"
    )


def _fatal(instance: str, data: Mapping[str, Any], note: str) -> str:
    return f"gave up: {instance} entered FATAL state, {data.get('reason')}"


def _unhealthy(instance: str, data: Mapping[str, Any], note: str) -> str:
    return f"unhealthy: {instance} ({data.get('probe')}: {data.get('reason')}); restarting"


_LINES: dict[str, Callable[[str, Mapping[str, Any], str], str]] = {
    "started": _started,
    "ready": _ready,
    "exited": _exited,
    "backoff": _backoff,
    "fatal": _fatal,
    "unhealthy": _unhealthy,
}
