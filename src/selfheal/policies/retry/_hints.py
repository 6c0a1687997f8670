"""Delay hints: a server's "retry after N seconds", read from the exception it caused."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import TypeAlias

__all__ = ["HintExtractor", "retry_after_hint"]

HintExtractor: TypeAlias = Callable[[BaseException], float | None]


def retry_after_hint(exc: BaseException) -> float | None:
    """Read a server's Retry-After from an exception, the default `hint` of `retry`.

    Looks at the exception's ``retry_after`` attribute: seconds as a number, a numeric
    string (as in the HTTP header) or a `datetime.timedelta`.

    Args:
        exc: The exception the last attempt raised.

    Returns:
        Seconds to wait, or None when the exception carries no usable hint.
    """
    value = getattr(exc, "retry_after", None)
    if isinstance(value, timedelta):
        return max(0.0, value.total_seconds())
    if isinstance(value, int | float) and not isinstance(value, bool):
        return max(0.0, float(value)) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            return None  # an HTTP date: not ours to parse without a wall clock contract
        return max(0.0, seconds) if math.isfinite(seconds) else None
    return None
