"""When a retry stops: stop conditions, its own deadline and an enclosing one."""

from __future__ import annotations

import pytest

import selfheal
from policy_helpers import Flaky
from selfheal import (
    RetryError,
    StopAfterAttempts,
    StopAfterDelay,
    StopAtDeadline,
)
from selfheal.testing import FakeClock


def test_stop_conditions_compose(clock: FakeClock) -> None:
    either = StopAfterAttempts(5) | StopAfterDelay(2)
    both = StopAfterAttempts(5) & StopAfterDelay(2)
    assert either(1, 2.0, 0)
    assert either(5, 0, 0)
    assert not either(1, 1.0, 0)
    assert both(5, 2.0, 0)
    assert not both(5, 1.0, 0)
    assert not both(1, 3.0, 0)
    assert StopAtDeadline(3)(1, 2.0, 1.0)
    assert not StopAtDeadline(3)(1, 1.0, 1.0)
    assert repr(either) == "(StopAfterAttempts(attempts=5) | StopAfterDelay(seconds=2))"

    flaky = Flaky(100)
    fn = selfheal.retry(
        on=ConnectionError, attempts=10, backoff=1, stop=StopAfterDelay(2.5), clock=clock
    )(flaky)
    with pytest.raises(RetryError) as info:
        fn()
    assert info.value.reason == "stop"
    assert flaky.calls == 4


def test_deadline_never_sleeps_past_it(clock: FakeClock) -> None:
    flaky = Flaky(100)
    fn = selfheal.retry(on=ConnectionError, attempts=None, backoff=1.0, deadline=3.5, clock=clock)(
        flaky
    )
    with pytest.raises(RetryError) as info:
        fn()
    assert info.value.reason == "deadline"
    assert clock.sleeps == [1.0, 1.0, 1.0]
    assert flaky.calls == 4


def test_deadline_is_visible_inside_the_call(clock: FakeClock) -> None:
    seen: list[float | None] = []

    def call() -> str:
        seen.append(selfheal.remaining())
        clock.advance(0.5)
        if len(seen) < 3:
            raise ConnectionError
        return "ok"

    fn = selfheal.retry(on=ConnectionError, attempts=5, backoff=1.0, deadline=10, clock=clock)(call)
    assert fn() == "ok"
    assert seen == [10.0, 8.5, 7.0]
    assert selfheal.remaining() is None
    assert selfheal.current_deadline() is None


def test_an_enclosing_deadline_stops_the_retry_too(clock: FakeClock) -> None:
    # A sync Timeout only publishes its deadline: a retry inside it used to go on sleeping
    # and retrying long past it (18 s here, under a 5 s timeout).
    calls: list[float] = []

    def down() -> None:
        calls.append(clock.monotonic())
        raise ValueError("down")

    inner = selfheal.retry(on=ValueError, attempts=10, backoff=2, clock=clock)(down)
    with pytest.raises(RetryError) as info:
        selfheal.Timeout(5, clock=clock)(inner)()
    assert info.value.reason == "deadline"
    assert calls == [0.0, 2.0, 4.0]
    assert clock.monotonic() == 4.0


@pytest.mark.anyio
async def test_an_enclosing_async_deadline_stops_the_retry_before_it_fires() -> None:
    clock = FakeClock(autojump=True)
    calls: list[float] = []

    async def down() -> None:
        calls.append(clock.monotonic())
        raise ValueError("down")

    inner = selfheal.retry(on=ValueError, attempts=10, backoff=2, clock=clock)(down)
    with pytest.raises(RetryError) as info:
        await selfheal.Timeout(5, clock=clock)(inner)()
    assert info.value.reason == "deadline"
    assert calls == [0.0, 2.0, 4.0]
