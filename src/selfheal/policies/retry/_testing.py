"""The process-wide retry switches: test mode, and retries on or off (stamina's names).

Users' own test suites run their retries at full speed (`set_testing`); an operator or a test
can also turn retrying off altogether (`set_active`): every call then makes one attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from selfheal.policies._checks import check_int

__all__ = [
    "Mode",
    "Restore",
    "current_mode",
    "is_active",
    "is_testing",
    "set_active",
    "set_testing",
]


@dataclass(frozen=True, slots=True)
class Mode:
    """The switches every retry decision reads.

    Attributes:
        enabled: Whether test mode is on: no waiting, and `attempts` rules.
        attempts: In test mode, the attempts per call: a cap on the policy's own (`cap`),
            or exactly this many.
        cap: Whether `attempts` caps the policy's attempts (True) or replaces them.
        active: Whether retrying happens at all (False: one attempt per call).
    """

    enabled: bool = False
    attempts: int = 1
    cap: bool = True
    active: bool = True


# Naughty but it is what users' test suites need: one switch for every retry in the process.
_mode = Mode()


class Restore:
    """What `set_testing` and `set_active` return: ``with`` it, the old switches come back."""

    def __init__(self, previous: Mode) -> None:
        self._previous = previous

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        global _mode  # noqa: PLW0603 - the documented process-wide switch
        _mode = self._previous


def set_testing(enabled: bool, *, attempts: int = 1, cap: bool = True) -> Restore:
    """Switch the process-wide retry test mode on or off.

    In test mode retries never sleep, and every call makes at most `attempts` attempts (its
    policy's own number if lower); with ``cap=False``, exactly `attempts`, whatever the
    policy says (stamina's default). Used in a ``with`` block, the mode in force before comes
    back at its end.

    Args:
        enabled: Whether test mode is on.
        attempts: The attempts per call while test mode is on (at least 1).
        cap: Whether `attempts` is a cap (True) or the number of attempts (False).

    Raises:
        ValueError: If `attempts` is less than 1.
    """
    global _mode  # noqa: PLW0603 - the documented process-wide switch
    check_int("set_testing", "attempts", attempts, 1)
    previous = _mode
    _mode = replace(_mode, enabled=bool(enabled), attempts=attempts, cap=bool(cap))
    return Restore(previous)


def is_testing() -> bool:
    """Return whether the retry test mode is on (see `set_testing`)."""
    return _mode.enabled


def set_active(active: bool) -> Restore:
    """Turn retrying on or off in the whole process (stamina's ``set_active``).

    Off, every call of a retrying function makes one attempt, and its failure ends it as an
    exhausted retry would. Used in a ``with`` block, the old setting comes back at its end.
    """
    global _mode  # noqa: PLW0603 - the documented process-wide switch
    previous = _mode
    _mode = replace(_mode, active=bool(active))
    return Restore(previous)


def is_active() -> bool:
    """Return whether retrying is on (see `set_active`)."""
    return _mode.active


def current_mode() -> Mode:
    """Return the switches in force now (read by every retry decision)."""
    return _mode
