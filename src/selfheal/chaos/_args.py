"""Argument checks shared by the chaos tools, with messages that name the bad argument."""

from __future__ import annotations

import math

__all__ = ["check_name", "positive_seconds"]


def positive_seconds(field: str, value: object) -> float:
    """Return `value` as float if it is a positive, finite number of seconds.

    Finite on purpose: every fault has a time limit, and an infinite mean gap is no schedule.

    Raises:
        ValueError: Naming `field` and what is valid.
    """
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not (ok and 0 < value < math.inf):  # type: ignore[operator]
        raise ValueError(f"{field}: must be a positive, finite number of seconds, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_name(kind: str, name: object) -> str:
    """Return `name` if it can be the middle of an event type: dotted, non-empty, no ``*``.

    Raises:
        ValueError: Naming `kind` and showing valid names.
    """
    if not isinstance(name, str) or not name or any(not p or "*" in p for p in name.split(".")):
        raise ValueError(
            f"{kind} {name!r}: use dotted non-empty segments without '*', e.g. 'database' "
            "or 'db.query'"
        )
    return name
