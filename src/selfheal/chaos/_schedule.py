"""When the chaos monkey strikes: a pure, seeded schedule with no I/O and no clock.

Each target has its own random stream, seeded with ``f"{seed}:{name}"``, and disruptions
arrive as a Poisson process: the gaps are exponential with mean ``frequency`` seconds, drawn
from the scheduled time of the previous arrival (not from when the driver got round to it),
so the same seed gives the same schedule however slow the disrupt functions are, and adding
a target does not change the others' schedules.

An arrival becomes a fault unless the target is still disrupted, it falls outside every time
window, or ``max_active`` faults are already running; then it is skipped (and says why).
Every fault gets a time limit: its duration, cut at the end of its time window. The driver
(`ChaosMonkey`) asks `next_due`, sleeps until then on its clock and calls `pop` to learn what
to do.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum

from selfheal.chaos._safety import Safeguards

__all__ = ["Action", "ChaosSchedule", "Step"]


class Action(StrEnum):
    """What a `Step` asks the driver to do."""

    INJECT = "inject"
    ROLLBACK = "rollback"
    SKIP = "skip"


@dataclass(frozen=True, slots=True)
class Step:
    """One decision of the schedule.

    Attributes:
        at: When it was due (monotonic seconds of the driver's clock).
        action: Inject, roll back, or skip an arrival.
        target: The target's name.
        limit: For INJECT, the fault's time limit in seconds; else 0.0.
        reason: For SKIP, why (``disrupted``, ``window``, ``max_active``); for ROLLBACK,
            ``duration`` (its time limit was reached).
    """

    at: float
    action: Action
    target: str
    limit: float = 0.0
    reason: str = ""


@dataclass(slots=True)
class _Slot:
    name: str
    frequency: float
    duration: float
    rng: random.Random
    next_at: float = math.inf
    until: float | None = None  # when its fault's time limit ends; None while not disrupted


class ChaosSchedule:
    """The monkey's decisions, as a function of the seed, the targets and the time.

    Args:
        seed: Seeds every target's stream.
        safeguards: Windows and ``max_active``.
        wall_offset: Wall time minus monotonic time of the driver's clock, to read windows.
    """

    __slots__ = ("_offset", "_safeguards", "_seed", "_slots")

    def __init__(self, seed: int | str, safeguards: Safeguards, wall_offset: float) -> None:
        self._seed = seed
        self._safeguards = safeguards
        self._offset = wall_offset
        self._slots: dict[str, _Slot] = {}

    def add(self, name: str, frequency: float, duration: float) -> None:
        """Add (or replace) target `name`; it gets arrivals once `start` is called."""
        # Not for secrets: a seeded stream is the point, so a run can be repeated.
        rng = random.Random(f"{self._seed}:{name}")  # noqa: S311
        self._slots[name] = _Slot(name, frequency, duration, rng)

    def start(self, now: float) -> None:
        """Draw each target's first arrival after `now`."""
        for slot in self._slots.values():
            slot.next_at = now + slot.rng.expovariate(1.0 / slot.frequency)

    def next_due(self) -> float:
        """Return when the next step is due (``inf`` when nothing is scheduled)."""
        return min(
            (t for s in self._slots.values() for t in (s.next_at, s.until) if t is not None),
            default=math.inf,
        )

    def active(self) -> list[str]:
        """Return the targets whose fault is running, in registration order."""
        return [s.name for s in self._slots.values() if s.until is not None]

    def until(self, name: str) -> float | None:
        """Return when target `name`'s fault reaches its limit, None if not disrupted."""
        return self._slots[name].until

    def pop(self, now: float) -> Step | None:
        """Return the earliest step due at or before `now`, and apply it; None if none is due.

        Ties go to rollbacks first, then to targets in registration order.
        """
        best: tuple[float, int, int, _Slot] | None = None
        for order, slot in enumerate(self._slots.values()):
            for kind, when in ((0, slot.until), (1, slot.next_at)):
                if when is not None and when <= now and (best is None or (when, kind) < best[:2]):
                    best = (when, kind, order, slot)
        if best is None:
            return None
        when, kind, _, slot = best
        if kind == 0:
            slot.until = None
            return Step(when, Action.ROLLBACK, slot.name, reason="duration")
        slot.next_at = when + slot.rng.expovariate(1.0 / slot.frequency)
        return self._arrive(when, slot)

    def _arrive(self, when: float, slot: _Slot) -> Step:
        if slot.until is not None:
            return Step(when, Action.SKIP, slot.name, reason="disrupted")
        cap = self._safeguards.max_active
        if cap is not None and len(self.active()) >= cap:
            return Step(when, Action.SKIP, slot.name, reason="max_active")
        limit = min(slot.duration, self._safeguards.window_left(when + self._offset))
        if limit <= 0.0:
            return Step(when, Action.SKIP, slot.name, reason="window")
        slot.until = when + limit
        return Step(when, Action.INJECT, slot.name, limit=limit)

    def hold(self, name: str, until: float) -> None:
        """Mark target `name` as disrupted until `until` (to retry a failed rollback then)."""
        self._slots[name].until = until

    def release(self, name: str) -> None:
        """Mark target `name` as no longer disrupted (its fault was rolled back or failed)."""
        self._slots[name].until = None
