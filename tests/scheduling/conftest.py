"""Fixtures of the scheduler tests: a scheduler on the fake clock, and what its observer saw."""

from __future__ import annotations

import random

import pytest

from selfheal.scheduling import JobResult, Scheduler
from selfheal.testing import FakeClock


@pytest.fixture
def seen() -> list[JobResult]:
    """Every result the `scheduler` fixture recorded, in order."""
    return []


@pytest.fixture
def scheduler(clock: FakeClock, seen: list[JobResult]) -> Scheduler:
    """A scheduler on the `clock` fixture, with seeded jitter, whose results land in `seen`."""
    scheduler = Scheduler(clock=clock, rng=random.Random(7), name="test")
    scheduler.add_observer(lambda result, previous: seen.append(result))
    return scheduler
