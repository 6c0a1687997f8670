"""Backoffs: the exact waits a retry sleeps, how backoffs add up, and their bounds."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

import selfheal
from policy_helpers import Flaky
from selfheal import (
    ConstantBackoff,
    DecorrelatedJitter,
    ExponentialBackoff,
    LinearBackoff,
    RandomJitter,
)
from selfheal.testing import FakeClock


def test_exponential_schedule_is_exact(clock: FakeClock) -> None:
    policy = selfheal.retry(
        on=ConnectionError,
        attempts=5,
        backoff=ExponentialBackoff(initial=0.5, multiplier=2, max=3.0),
        clock=clock,
    )
    flaky = Flaky(4)
    assert policy(flaky)() == "ok"
    assert flaky.calls == 5
    assert clock.sleeps == [0.5, 1.0, 2.0, 3.0]
    assert clock.monotonic() == 6.5


def test_constant_and_linear_schedules(clock: FakeClock) -> None:
    fn = selfheal.retry(on=ValueError, attempts=4, backoff=0.25, clock=clock)(
        Flaky(3, ValueError())
    )
    fn()
    assert clock.sleeps == [0.25, 0.25, 0.25]
    clock.sleeps.clear()
    linear = LinearBackoff(initial=1, increment=2, max=4)
    fn = selfheal.retry(on=ValueError, attempts=4, backoff=linear, clock=clock)(
        Flaky(3, ValueError())
    )
    fn()
    assert clock.sleeps == [1, 3, 4]


def test_backoffs_compose_and_read_well() -> None:
    combined = ConstantBackoff(1) + RandomJitter(0, 0.5, rng=random.Random(1))
    assert repr(combined) == "ConstantBackoff(1) + RandomJitter(low=0, high=0.5)"
    assert 1 <= combined.delay(1, 0) <= 1.5
    assert (0.5 + ConstantBackoff(1)).delay(3, 0) == 1.5
    assert (
        repr(ExponentialBackoff())
        == "ExponentialBackoff(initial=0.1, multiplier=2.0, max=5.0, jitter=0.0)"
    )
    assert ExponentialBackoff(initial=1, max=1e300).delay(5000, 0) == 1e300


@settings(deadline=None)  # properties of values, not of speed: no per-example time limit
@given(
    initial=st.floats(0, 10),
    multiplier=st.floats(1, 10),
    cap=st.floats(0, 100),
    jitter=st.floats(0, 5),
    attempt=st.integers(1, 10_000),
    seed=st.integers(0, 2**32),
)
def test_exponential_delay_is_within_bounds(
    initial: float, multiplier: float, cap: float, jitter: float, attempt: int, seed: int
) -> None:
    backoff = ExponentialBackoff(initial, multiplier, cap, jitter, rng=random.Random(seed))
    delay = backoff.delay(attempt, 0.0)
    assert 0.0 <= delay <= cap
    if jitter == 0:
        assert delay <= ExponentialBackoff(initial, multiplier, cap).delay(attempt + 1, 0)


@settings(deadline=None)  # properties of values, not of speed: no per-example time limit
@given(
    initial=st.floats(0, 10),
    extra=st.floats(0, 100),
    previous=st.floats(0, 1000),
    seed=st.integers(0, 2**32),
)
def test_decorrelated_jitter_is_within_bounds(
    initial: float, extra: float, previous: float, seed: int
) -> None:
    backoff = DecorrelatedJitter(initial, initial + extra, rng=random.Random(seed))
    delay = backoff.delay(3, previous)
    assert initial <= delay <= initial + extra
    assert delay <= max(initial, previous * 3) or math.isclose(delay, initial)


@settings(deadline=None)  # properties of values, not of speed: no per-example time limit
@given(
    initial=st.floats(0, 10),
    increment=st.floats(0, 10),
    cap=st.floats(0, 50),
    n=st.integers(1, 100),
)
def test_linear_delay_is_within_bounds(
    initial: float, increment: float, cap: float, n: int
) -> None:
    delay = LinearBackoff(initial, increment, cap).delay(n, 0)
    assert 0 <= delay <= cap
    assert delay <= LinearBackoff(initial, increment, cap).delay(n + 1, 0)
