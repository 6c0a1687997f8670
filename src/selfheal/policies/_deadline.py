"""The overall deadline of the current call, visible to the code inside it.

A `Timeout` (and a `retry` given a ``deadline``) publish their deadline in a context variable,
so the code they protect can ask how much time is left (`remaining`) and pass it on, e.g. as
the timeout of an HTTP request. Nested deadlines keep the tightest one.
"""

from __future__ import annotations

from contextvars import ContextVar

from selfheal._clock import Clock

__all__ = ["current_deadline", "remaining"]


class _Scope:
    """One deadline: when (on `clock`'s monotonic time), and whether its timer fired."""

    __slots__ = ("clock", "deadline", "expired")

    def __init__(self, deadline: float, clock: Clock) -> None:
        self.deadline = deadline
        self.clock = clock
        self.expired = False


DEADLINE: ContextVar[_Scope | None] = ContextVar("selfheal_deadline", default=None)


def current_deadline() -> float | None:
    """Return the current call's deadline, on the monotonic time of its policy's clock.

    Returns:
        The absolute deadline (comparable with ``clock.monotonic()``), or None outside any
        `Timeout` or retry deadline.
    """
    scope = DEADLINE.get()
    return None if scope is None else scope.deadline


def remaining() -> float | None:
    """Return the seconds left before the current call's deadline.

    Meant for code inside a `Timeout` or a retry with a ``deadline``, to bound what it does
    next (``httpx.get(url, timeout=selfheal.remaining())``).

    Returns:
        Seconds left (0.0 once the deadline has passed), or None when no deadline is set.
    """
    scope = DEADLINE.get()
    if scope is None:
        return None
    return max(0.0, scope.deadline - scope.clock.monotonic())


def tighter(deadline: float, clock: Clock) -> _Scope:
    """Return a scope for `deadline`, or for the enclosing one if that is earlier."""
    outer = DEADLINE.get()
    if outer is not None and outer.deadline < deadline and outer.clock is clock:
        deadline = outer.deadline
    return _Scope(deadline, clock)
