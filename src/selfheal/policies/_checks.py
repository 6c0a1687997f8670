"""How every policy checks a numeric option, so that bad ones fail alike when a policy is built.

The messages name the owner, the option and what is valid (``Bulkhead: max_waiting must be
an int >= 0, got -1``). Booleans are refused although they are ints: ``attempts=True`` is a
mistake, not 1.
"""

from __future__ import annotations

import math


def check_int(
    owner: str, field: str, value: object, minimum: int, *, none_ok: bool = False
) -> None:
    """Refuse `value` unless it is an int >= `minimum` (or None, when `none_ok`).

    Raises:
        ValueError: Naming `owner`, `field` and the valid range.
    """
    if none_ok and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        alternative = " or None" if none_ok else ""
        raise ValueError(
            f"{owner}: {field} must be an int >= {minimum}{alternative}, got {value!r}"
        )


def check_number(
    owner: str,
    field: str,
    value: object,
    *,
    positive: bool = False,
    unit: str = "a number",
    none_ok: bool = False,
) -> None:
    """Refuse `value` unless it is a number >= 0 (> 0 when `positive`; or None when `none_ok`).

    Args:
        owner: The policy, as the message starts.
        field: The option.
        value: What was given.
        positive: Whether 0 is refused too.
        unit: How the message calls a valid value ("a number", "seconds").
        none_ok: Whether None is valid.

    Raises:
        ValueError: Naming `owner`, `field` and the valid range; NaN is refused.
    """
    if none_ok and value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or math.isnan(value)
        or value < 0
        or (positive and value == 0)
    ):
        bound = "> 0" if positive else ">= 0"
        alternative = " or None" if none_ok else ""
        raise ValueError(f"{owner}: {field} must be {unit} {bound}{alternative}, got {value!r}")
