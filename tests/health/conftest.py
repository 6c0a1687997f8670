"""Fixtures of the health tests: a monitor on the fake clock, and the events it publishes."""

from __future__ import annotations

import pytest

from selfheal.events import Event, EventBus
from selfheal.health import HealthMonitor
from selfheal.testing import FakeClock


@pytest.fixture
def events() -> list[Event]:
    """What the `monitor` fixture publishes, in order."""
    return []


@pytest.fixture
def monitor(clock: FakeClock, events: list[Event]) -> HealthMonitor:
    """A monitor on the `clock` fixture whose ``health.*`` events land in `events`."""
    bus = EventBus(clock=clock)
    bus.subscribe("health.*", events.append)
    return HealthMonitor(clock=clock, bus=bus)
