"""Helpers of the policy tests: a call that fails on cue, and a breaker's failing calls."""

from __future__ import annotations

from typing import Any

import pytest

from selfheal import BreakerState, CircuitBreaker, Event, EventBus

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Flaky:
    """Fails `failures` times with `exc`, then returns `value`."""

    def __init__(self, failures: int, exc: BaseException | None = None, value: Any = "ok") -> None:
        self.failures = failures
        self.exc = exc or ConnectionError("down")
        self.value = value
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        self.args = (args, kwargs)
        if self.calls <= self.failures:
            raise self.exc
        return self.value


class Boom(Exception):
    """The dependency's failure: counts against a breaker."""


class BadRequest(Exception):
    """The caller's mistake: a breaker told to ignore it does not count it."""


def ok() -> str:
    return "ok"


def boom() -> str:
    raise Boom("down")


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    """Make `times` calls through `breaker` that fail with `Boom`."""
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.execute(boom)


def transitions(bus: EventBus, *patterns: str) -> list[Event]:
    """Collect the events matching `patterns` (by default a breaker's three state changes)."""
    seen: list[Event] = []
    for pattern in patterns or ("breaker.*.opened", "breaker.*.half_opened", "breaker.*.closed"):
        bus.subscribe(pattern, seen.append)
    return seen
