"""Time windows: when chaos may start, like Netflix Chaos Monkey's business hours.

A window is a set of weekdays and a time of day range on the wall clock (the injected
`Clock.time`, read in local time unless a time zone is given). ``mon-fri 09:00-17:00`` holds
from 09:00 to 17:00 on weekdays; ``22:00-06:00`` holds overnight, every day, and belongs to
the day it starts on.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

__all__ = ["TimeWindow"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ALL_DAYS = frozenset(range(7))
_DAY_NAMES = {
    **{name: i for i, name in enumerate(_DAYS)},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_EXAMPLE = "write e.g. 'mon-fri 09:00-17:00', 'sat,sun 10:00-12:00' or '22:00-06:00'"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Weekdays and a time-of-day range during which chaos may start.

    Args:
        days: Weekdays, 0 = Monday ... 6 = Sunday (the day a window starts on).
        start: Start time of day (inclusive).
        end: End time of day (exclusive); at or before `start` means the next day.
        tz: Time zone of `start`/`end`; None for the machine's local time.
    """

    days: frozenset[int] = _ALL_DAYS
    start: dt.time = dt.time(0, 0)
    end: dt.time = dt.time(0, 0)
    tz: dt.tzinfo | None = None

    def __post_init__(self) -> None:
        if not self.days or not self.days <= _ALL_DAYS:
            raise ValueError(f"days: must be weekdays 0 (Monday) to 6, got {sorted(self.days)}")

    @classmethod
    def parse(cls, text: str, tz: dt.tzinfo | None = None) -> TimeWindow:
        """Return the window `text` describes: ``[DAYS] [HH:MM-HH:MM]``.

        DAYS is a comma list of days or day ranges (``mon-fri``, ``sat,sun``, ``fri-mon``);
        without it every day; without times the whole day.

        Args:
            text: The window.
            tz: Time zone of the times; None for local time.

        Raises:
            ValueError: Naming the part that cannot be read and showing valid windows.
        """
        parts = text.strip().lower().split()
        if not parts or len(parts) > 2:
            raise ValueError(f"time window {text!r}: {_EXAMPLE}")
        days, start, end = _ALL_DAYS, dt.time(0, 0), dt.time(0, 0)
        if len(parts) == 2 or parts[0][:1].isdigit():
            start, end = _parse_times(parts.pop(), text)
        if parts:
            days = _parse_days(parts[0], text)
        return cls(days=days, start=start, end=end, tz=tz)

    def __str__(self) -> str:
        days = ",".join(_DAYS[d] for d in sorted(self.days))
        return f"{days} {self.start:%H:%M}-{self.end:%H:%M}"

    def remaining(self, wall: float) -> float:
        """Return the seconds from wall time `wall` to the end of this window, 0.0 outside it.

        Args:
            wall: Seconds since the epoch (`Clock.time`).
        """
        now = dt.datetime.fromtimestamp(wall, self.tz)
        overnight = self.end <= self.start
        today = now.date()
        clock = now.time().replace(tzinfo=None)
        if not overnight:
            if now.weekday() in self.days and self.start <= clock < self.end:
                return _until(now, today, self.end)
            return 0.0
        # Overnight (or whole-day) windows: the part after `start` belongs to today, the part
        # before `end` to yesterday's window.
        if now.weekday() in self.days and clock >= self.start:
            return _until(now, today + dt.timedelta(days=1), self.end)
        if (now.weekday() - 1) % 7 in self.days and clock < self.end:
            return _until(now, today, self.end)
        return 0.0

    def contains(self, wall: float) -> bool:
        """Return whether wall time `wall` (seconds since the epoch) is inside the window."""
        return self.remaining(wall) > 0.0


def _until(now: dt.datetime, day: dt.date, end: dt.time) -> float:
    # Through timestamps, so a DST change inside the window is counted right.
    target = dt.datetime.combine(day, end, tzinfo=now.tzinfo)
    return max(0.0, target.timestamp() - now.timestamp())


def _parse_times(text: str, whole: str) -> tuple[dt.time, dt.time]:
    bounds = text.split("-")
    if len(bounds) != 2:
        raise ValueError(f"time window {whole!r}: {text!r} is not HH:MM-HH:MM; {_EXAMPLE}")
    out = []
    for bound in bounds:
        match = _TIME.match(bound)
        hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
        if match and (hour, minute) == (24, 0):
            hour, minute = 0, 0
        if not (0 <= hour < 24 and 0 <= minute < 60):
            raise ValueError(f"time window {whole!r}: {bound!r} is not a time HH:MM; {_EXAMPLE}")
        out.append(dt.time(hour, minute))
    return out[0], out[1]


def _parse_days(text: str, whole: str) -> frozenset[int]:
    days: set[int] = set()
    for item in text.split(","):
        ends = [_DAY_NAMES.get(end) for end in item.split("-")]
        if len(ends) > 2 or None in ends:
            raise ValueError(
                f"time window {whole!r}: {item!r} is not a day or day range "
                f"({', '.join(_DAYS)}); {_EXAMPLE}"
            )
        first, last = ends[0] or 0, ends[-1] or 0
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    return frozenset(days)
