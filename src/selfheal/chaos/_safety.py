"""The guards every chaos tool passes first: off unless enabled, never in production by accident.

Shared by `ChaosMonkey`, the in-process `Injector`, the experiment runner and the fault proxy,
so that "is chaos allowed here, now?" has one answer:

- **Enabled**: chaos is off unless the caller enables it. ``enabled=None`` defers to the
  ``ENABLE_CHAOS`` environment variable (``true``/``1``/``yes``/``on``); an explicit
  ``True``/``False`` ignores it, so the article's
  ``ChaosMonkey(enabled=os.environ.get("ENABLE_CHAOS", "False").lower() == "true")`` and
  ``ChaosMonkey(enabled=None)`` behave alike.
- **Not in production**: where ``SELFHEAL_ENV=production``, chaos refuses to start unless
  ``allow_production=True`` (``--allow-production``) says it is meant.
- **Time windows**, **a kill switch** and **a cap on simultaneous faults**: see `Safeguards`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from selfheal.chaos._killswitch import KillSwitch, kill_switch_reason
from selfheal.chaos._windows import TimeWindow
from selfheal.errors import SelfhealError

__all__ = [
    "ENABLE_VARIABLE",
    "ENVIRONMENT_VARIABLE",
    "ChaosRefusedError",
    "Safeguards",
    "chaos_enabled",
    "refuse_in_production",
]

#: The variable naming the environment a process runs in (``production``, ``staging``...).
ENVIRONMENT_VARIABLE = "SELFHEAL_ENV"
#: The variable that enables chaos when the caller passes ``enabled=None``.
ENABLE_VARIABLE = "ENABLE_CHAOS"

_TRUE = frozenset({"1", "true", "yes", "on"})


class ChaosRefusedError(SelfhealError):
    """Chaos was refused here or now (production, kill switch engaged, bad safeguard)."""


def chaos_enabled(enabled: bool | None, environ: Mapping[str, str] | None = None) -> bool:
    """Return whether chaos is enabled: `enabled` itself, or ``ENABLE_CHAOS`` when it is None.

    Args:
        enabled: The caller's choice; None defers to the environment.
        environ: The environment to read (default: `os.environ`).
    """
    if enabled is not None:
        return bool(enabled)
    env = os.environ if environ is None else environ
    return env.get(ENABLE_VARIABLE, "").strip().lower() in _TRUE


def refuse_in_production(*, allow: bool, environ: Mapping[str, str] | None = None) -> None:
    """Raise unless this is not production, or production was explicitly allowed.

    Args:
        allow: The caller's explicit permission (``allow_production=True``).
        environ: The environment to read (default: `os.environ`).

    Raises:
        ChaosRefusedError: If ``SELFHEAL_ENV`` is ``production`` and `allow` is false.
    """
    env = os.environ if environ is None else environ
    if env.get(ENVIRONMENT_VARIABLE, "").strip().lower() == "production" and not allow:
        raise ChaosRefusedError(
            f"refusing to run chaos where {ENVIRONMENT_VARIABLE}=production; "
            "pass allow_production=True (--allow-production) if this is intended"
        )


@dataclass(frozen=True, slots=True)
class Safeguards:
    """What must hold before and while chaos runs.

    Args:
        allow_production: Run even where ``SELFHEAL_ENV=production``.
        windows: When faults may start, on the clock's wall time, e.g.
            ``("mon-fri 09:00-17:00",)`` (Netflix Chaos Monkey's business hours); strings are
            parsed with `TimeWindow.parse`. A fault never outlives the window it started in.
            Empty: any time.
        kill_switch: A file flag (`KillSwitch`) in a state directory; while it is engaged
            nothing starts, and a running monkey rolls everything back. The in-process
            `kill_switch()` is always honoured as well.
        max_active: At most this many faults at once (None: no cap).
        poll_interval: Seconds between looks at the `kill_switch` file while running.

    Raises:
        ValueError: For a window that cannot be parsed, a `max_active` below 1 or a
            `poll_interval` that is not a positive number.
    """

    allow_production: bool = False
    windows: tuple[TimeWindow | str, ...] = field(default=())
    kill_switch: KillSwitch | None = None
    max_active: int | None = None
    poll_interval: float = 1.0

    def __post_init__(self) -> None:
        windows = tuple(
            w if isinstance(w, TimeWindow) else TimeWindow.parse(str(w)) for w in self.windows
        )
        object.__setattr__(self, "windows", windows)
        if self.max_active is not None and self.max_active < 1:
            raise ValueError(f"max_active: must be at least 1 or None, got {self.max_active!r}")
        if not (math.isfinite(self.poll_interval) and self.poll_interval > 0):
            raise ValueError(
                f"poll_interval: must be a positive number of seconds, got {self.poll_interval!r}"
            )

    def check_start(self, environ: Mapping[str, str] | None = None) -> None:
        """Raise if chaos may not start: production not allowed, or a kill switch engaged.

        Raises:
            ChaosRefusedError: Saying which guard refused and how to lift it.
        """
        refuse_in_production(allow=self.allow_production, environ=environ)
        reason = self.stop_reason()
        if reason is not None:
            raise ChaosRefusedError(f"refusing to start chaos: {reason}")

    def stop_reason(self) -> str | None:
        """Return why chaos must stop now (a kill switch is engaged), or None."""
        reason = kill_switch_reason()
        if reason is not None:
            return (
                f"the in-process kill switch is engaged ({reason}); release_kill_switch() lifts it"
            )
        if self.kill_switch is not None and self.kill_switch.engaged():
            return (
                f"the kill switch {self.kill_switch.path} is engaged; "
                "'selfheal chaos resume' (or deleting the file) lifts it"
            )
        return None

    def window_left(self, wall: float) -> float:
        """Return how many seconds a fault starting at wall time `wall` may last.

        Returns:
            ``inf`` without windows, 0.0 outside every window, else the time to the end of
            the window (the longest, if several contain `wall`).
        """
        if not self.windows:
            return math.inf
        # __post_init__ parsed every string, so each window is a TimeWindow here.
        return max(w.remaining(wall) for w in self.windows if isinstance(w, TimeWindow))
