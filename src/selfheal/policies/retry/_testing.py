"""The process-wide retry test mode: users' own test suites run their retries at full speed."""

from __future__ import annotations

from dataclasses import dataclass

from selfheal.policies._checks import check_int

__all__ = ["Mode", "current_mode", "is_testing", "set_testing"]


@dataclass(frozen=True, slots=True)
class Mode:
    """Whether test mode is on, and its cap on attempts per call."""

    enabled: bool = False
    attempts: int = 1


# Naughty but it is what users' test suites need: one switch for every retry in the process.
_mode = Mode()


def set_testing(enabled: bool, *, attempts: int = 1) -> None:
    """Switch the process-wide retry test mode on or off.

    In test mode retries never sleep and every retry makes at most `attempts` attempts, so a
    test of code that retries runs at full speed.

    Args:
        enabled: Whether test mode is on.
        attempts: The cap on attempts per call while test mode is on (at least 1).

    Raises:
        ValueError: If `attempts` is less than 1.
    """
    global _mode  # noqa: PLW0603 - the documented process-wide switch
    check_int("set_testing", "attempts", attempts, 1)
    _mode = Mode(bool(enabled), attempts)


def is_testing() -> bool:
    """Return whether the retry test mode is on (see `set_testing`)."""
    return _mode.enabled


def current_mode() -> Mode:
    """Return the test mode in force now (read by every retry decision)."""
    return _mode
