"""``for attempt in selfheal.retrying(...): with attempt:``, sync and async (tenacity's style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import selfheal
from policy_helpers import Flaky
from selfheal import EventBus, ExponentialBackoff, RetryBudget, RetryError
from selfheal.policies import RetryLoop
from selfheal.testing import EventRecorder, FakeClock


def run(loop: RetryLoop, work: Callable[[], Any]) -> list[int]:
    """Run `work` in the loop as users write it; return the attempts' numbers."""
    numbers = []
    for attempt in loop:
        with attempt:
            numbers.append(attempt.number)
            work()
    return numbers


async def arun(loop: RetryLoop, work: Callable[[], Any]) -> list[int]:
    numbers = []
    async for attempt in loop:
        with attempt:
            numbers.append(attempt.number)
            work()
    return numbers


def test_a_block_succeeds_on_its_third_attempt(clock: FakeClock) -> None:
    flaky = Flaky(2)
    numbers: list[int] = []
    for attempt in selfheal.retrying(
        on=ConnectionError, attempts=5, backoff=ExponentialBackoff(initial=1), clock=clock
    ):
        with attempt:
            numbers.append(attempt.number)
            value = flaky()
    assert value == "ok"
    assert numbers == [1, 2, 3]
    assert clock.sleeps == [1.0, 2.0]  # the decorator's schedule, from the same core


def test_exhaustion_reraises_the_original_error_by_default(clock: FakeClock) -> None:
    last = KeyError("gone")
    flaky = Flaky(100, last)
    with pytest.raises(KeyError) as info:
        run(selfheal.retrying(clock=clock), flaky)
    assert info.value is last
    assert flaky.calls == 3
    assert info.value.__context__ is None  # not chained onto the earlier attempts


def test_exhaustion_with_on_gives_retry_error_like_the_decorator(clock: FakeClock) -> None:
    flaky = Flaky(100, ConnectionError("down"))
    loop = selfheal.retrying(on=ConnectionError, attempts=2, backoff=0, clock=clock)
    with pytest.raises(RetryError) as info:
        run(loop, flaky)
    assert info.value.attempts == 2
    assert info.value.reason == "attempts"
    assert info.value.__cause__ is flaky.exc


def test_errors_on_does_not_match_leave_at_once(clock: FakeClock) -> None:
    flaky = Flaky(100, KeyError("bad request"))
    with pytest.raises(KeyError):
        run(selfheal.retrying(on=ConnectionError, clock=clock), flaky)
    assert flaky.calls == 1
    assert clock.sleeps == []


def test_a_predicate_decides_as_for_the_decorator(clock: FakeClock) -> None:
    flaky = Flaky(100, OSError("404"))
    loop = selfheal.retrying(on=lambda exc: "503" in str(exc), backoff=0, clock=clock)
    with pytest.raises(OSError, match="404"):
        run(loop, flaky)
    assert flaky.calls == 1
    assert run(loop, Flaky(2, OSError("503"))) == [1, 2, 3]


def test_the_deadline_is_published_inside_the_block_and_bounds_it(clock: FakeClock) -> None:
    seen: list[float | None] = []

    def slow() -> None:
        seen.append(selfheal.remaining())
        clock.advance(3)
        raise TimeoutError

    loop = selfheal.retrying(on=TimeoutError, attempts=None, deadline=10, backoff=1, clock=clock)
    with pytest.raises(RetryError) as info:
        run(loop, slow)
    assert seen == [10.0, 6.0, 2.0]
    assert info.value.reason == "deadline"
    assert selfheal.remaining() is None  # unpublished after each attempt


def test_budget_and_events_work_as_for_the_decorator(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0, min_per_second=0.1, window=10, clock=clock)
    bus = EventBus(clock=clock)
    seen = EventRecorder(bus).events
    loop = selfheal.retrying(
        on=ConnectionError, attempts=5, backoff=0, budget=budget, bus=bus, clock=clock
    )
    with pytest.raises(RetryError) as info:
        run(loop, Flaky(100))
    assert info.value.reason == "budget"
    assert info.value.attempts == 2
    assert [e.type for e in seen] == [
        "retry.block.retrying",
        "retry.block.budget_exhausted",
        "retry.block.gave_up",
    ]


def test_test_mode_applies(clock: FakeClock) -> None:
    selfheal.set_testing(True, attempts=2)
    flaky = Flaky(100, ConnectionError())
    with pytest.raises(ConnectionError):
        run(selfheal.retrying(attempts=10, backoff=30, clock=clock), flaky)
    assert flaky.calls == 2
    assert clock.sleeps == []


def test_a_loop_object_runs_afresh_each_time(clock: FakeClock) -> None:
    loop = selfheal.retrying(on=ConnectionError, backoff=0, clock=clock)
    assert run(loop, Flaky(1)) == [1, 2]
    assert run(loop, Flaky(1)) == [1, 2]


def test_leaving_the_loop_early_is_allowed(clock: FakeClock) -> None:
    for attempt in selfheal.retrying(on=ConnectionError, clock=clock):
        with attempt:
            pass
        break
    assert clock.sleeps == []


def test_an_attempt_not_used_with_with_is_a_clear_error(clock: FakeClock) -> None:
    def forgot() -> None:
        for _attempt in selfheal.retrying(clock=clock):
            pass

    with pytest.raises(RuntimeError, match=r"inside 'with attempt:'"):
        forgot()


def test_an_attempt_cannot_be_entered_twice(clock: FakeClock) -> None:
    def twice() -> None:
        for attempt in selfheal.retrying(clock=clock):
            with attempt:
                pass
            with attempt:
                pass

    with pytest.raises(RuntimeError, match=r"attempt 1 was already used"):
        twice()


@pytest.mark.anyio
async def test_async_for_succeeds_on_the_third_attempt() -> None:
    clock = FakeClock(autojump=True)
    loop = selfheal.retrying(on=ConnectionError, backoff=ExponentialBackoff(initial=1), clock=clock)
    assert await arun(loop, Flaky(2)) == [1, 2, 3]
    assert clock.sleeps == [1.0, 2.0]
    assert clock.monotonic() == 3.0


@pytest.mark.anyio
async def test_async_for_exhaustion_reraises_the_original_error() -> None:
    clock = FakeClock(autojump=True)
    flaky = Flaky(100, OSError("refused"))
    with pytest.raises(OSError, match="refused") as info:
        await arun(selfheal.retrying(attempts=4, backoff=0.5, clock=clock), flaky)
    assert info.value is flaky.exc
    assert flaky.calls == 4
    assert clock.sleeps == [0.5, 0.5, 0.5]


@pytest.mark.anyio
async def test_async_for_gives_retry_error_with_on() -> None:
    clock = FakeClock(autojump=True)
    loop = selfheal.retrying(on=OSError, attempts=2, backoff=1, clock=clock)
    with pytest.raises(RetryError) as info:
        await arun(loop, Flaky(100, OSError("refused")))
    assert info.value.attempts == 2


def test_a_policy_runs_a_block_too(clock: FakeClock) -> None:
    policy = selfheal.retry(on=ConnectionError, backoff=0, clock=clock, name="users")
    flaky = Flaky(1)
    assert run(policy.retrying(), flaky) == [1, 2]
    assert policy.statistics.retries == 1
    assert policy.retrying().name == "users"
    assert "RetryLoop(Retry(on=<class 'ConnectionError'>" in repr(policy.retrying())
