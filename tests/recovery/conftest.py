"""Fixtures of the recovery tests: a bus on an autojumping fake clock, and one on real time."""

from __future__ import annotations

import pytest

from selfheal import Event, EventBus
from selfheal.testing import FakeClock


@pytest.fixture
def fclock() -> FakeClock:
    return FakeClock(autojump=True)


@pytest.fixture
def bus(fclock: FakeClock) -> EventBus:
    return EventBus(clock=fclock)


@pytest.fixture
def seen(bus: EventBus) -> list[Event]:
    """The engine's reports (``recovery.*``) on `bus`, in order."""
    out: list[Event] = []
    bus.subscribe("recovery.*", out.append)
    return out


@pytest.fixture
def real_bus() -> EventBus:
    """A bus on the system clock, for actions that run threads or processes fake time must not
    race (a sync function in a thread, a command with a deadline)."""
    return EventBus()


@pytest.fixture
def real_seen(real_bus: EventBus) -> list[Event]:
    """The engine's reports on `real_bus`, in order."""
    out: list[Event] = []
    real_bus.subscribe("recovery.*", out.append)
    return out
