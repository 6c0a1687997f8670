"""Every way to call a breaker, and the outcomes that count as nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from policy_helpers import CLOSED, HALF_OPEN, OPEN, BadRequest, Boom, boom, fail, ok
from selfheal import (
    CircuitBreaker,
    CircuitBreakerError,
    FailureRateWindow,
    SlowCallRule,
)
from selfheal.testing import FakeClock


def test_decorator_keeps_the_signature_and_name(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, clock=clock)

    @breaker
    def add(a: int, b: int = 0) -> int:
        """Add."""
        if a < 0:
            raise Boom
        return a + b

    assert add(1, b=2) == 3
    assert add.__name__ == "add"
    assert add.__doc__ == "Add."
    for _ in range(2):
        with pytest.raises(Boom):
            add(-1)
    with pytest.raises(CircuitBreakerError):
        add(1)


def test_call_and_execute_and_with(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    assert breaker.call(divmod, 7, 2) == (3, 1)
    assert breaker.execute(dict, a=1) == {"a": 1}
    with pytest.raises(Boom), breaker:
        raise Boom
    with pytest.raises(Boom), breaker, breaker:
        raise Boom
    # The nested block failed through both levels: failures two and three.
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerError), breaker:
        pytest.fail("an open breaker must not run the block")


@pytest.mark.anyio
async def test_async_decorator_aexecute_and_async_with(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=5, clock=clock)

    @breaker
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise Boom
        return 2 * x

    assert await double(4) == 8
    assert await breaker.aexecute(double, 5) == 10
    assert await breaker.acall(double, 6) == 12
    with pytest.raises(Boom):
        await double(-1)
    with pytest.raises(Boom):
        async with breaker:
            raise Boom
    with pytest.raises(Boom):
        await breaker.aexecute(double, -1)
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerError):
        await double(1)
    clock.advance(5)
    async with breaker:
        assert breaker.trials_in_flight == 1
    assert breaker.state is CLOSED


@pytest.mark.anyio
async def test_async_windowed_and_slow_breaker(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=None,
        recovery_timeout=5,
        window=FailureRateWindow(size=4, min_calls=4, threshold=0.5),
        slow_call=SlowCallRule(duration=1.0, rate_threshold=1.0),
        clock=clock,
    )

    @breaker
    async def work(fail_it: bool) -> str:
        if fail_it:
            raise Boom
        return "done"

    assert await work(False) == "done"
    assert await work(False) == "done"
    with pytest.raises(Boom):
        await work(True)
    assert breaker.state is CLOSED
    with pytest.raises(Boom):
        await work(True)
    assert breaker.state is OPEN
    with pytest.raises(CircuitBreakerError):
        await work(False)
    clock.advance(5)
    assert await work(False) == "done"
    assert breaker.state is CLOSED


def test_sync_windowed_wrapper_half_open_path(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1,
        recovery_timeout=2,
        window=FailureRateWindow(size=4, min_calls=4),
        clock=clock,
    )
    protected = breaker(ok)
    failing = breaker(boom)
    with pytest.raises(Boom):
        failing()
    with pytest.raises(CircuitBreakerError):
        protected()
    clock.advance(2)
    assert protected() == "ok"
    assert breaker.state is CLOSED


def test_execute_refuses_a_coroutine_function_and_keeps_its_permit(clock: FakeClock) -> None:
    # `await breaker.execute(async_fn)` used to "succeed" before the coroutine even ran, so
    # its failures never counted and a half-open breaker closed on an untried call.
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5, clock=clock)

    async def down() -> None:
        raise Boom("down")

    with pytest.raises(TypeError, match=r"aexecute"):
        breaker.execute(down)
    fail(breaker)
    clock.advance(5)
    with pytest.raises(TypeError, match=r"aexecute"):
        breaker.execute(down)
    assert breaker.state is HALF_OPEN
    assert breaker.trials_in_flight == 0
    breaker.execute(ok)
    assert breaker.state is CLOSED


@pytest.mark.parametrize(
    "ignore",
    [BadRequest, (KeyError, BadRequest), lambda exc: isinstance(exc, BadRequest)],
    ids=["type", "tuple", "predicate"],
)
def test_ignored_errors_pass_through_and_count_as_nothing(clock: FakeClock, ignore: Any) -> None:
    breaker = CircuitBreaker(failure_threshold=2, ignore=ignore, clock=clock)

    def bad() -> None:
        raise BadRequest("your fault")

    fail(breaker)
    for _ in range(5):
        with pytest.raises(BadRequest):
            breaker.execute(bad)
    assert breaker.failure_count == 1  # not a failure, and not a success either
    fail(breaker)
    assert breaker.state is OPEN


def test_ignored_error_in_a_trial_gives_the_permit_back(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, ignore=BadRequest, clock=clock
    )
    fail(breaker)
    clock.advance(5)

    def bad_request() -> None:
        assert breaker.trials_in_flight == 1
        raise BadRequest

    with pytest.raises(BadRequest):
        breaker.execute(bad_request)
    assert breaker.trials_in_flight == 0
    assert breaker.state is HALF_OPEN
    breaker.execute(ok)
    assert breaker.state is CLOSED


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, asyncio.CancelledError, SystemExit])
def test_interrupted_trial_gives_the_permit_back(
    clock: FakeClock, exc_type: type[BaseException]
) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5, clock=clock)
    fail(breaker)
    clock.advance(5)

    def interrupted() -> None:
        raise exc_type

    with pytest.raises(exc_type):
        breaker.execute(interrupted)
    assert breaker.state is HALF_OPEN
    assert breaker.trials_in_flight == 0
    breaker.execute(ok)
    assert breaker.state is CLOSED


def test_interruptions_in_closed_state_count_as_nothing(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, clock=clock)

    def interrupted() -> None:
        raise KeyboardInterrupt

    for _ in range(3):
        with pytest.raises(KeyboardInterrupt):
            breaker.execute(interrupted)
    assert breaker.state is CLOSED


@pytest.mark.anyio
async def test_cancelled_async_trial_gives_the_permit_back(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5, clock=clock)
    fail(breaker)
    clock.advance(5)
    started = asyncio.Event()

    @breaker
    async def trial() -> str:
        started.set()
        await asyncio.Event().wait()
        return "never"

    task = asyncio.create_task(trial())
    await started.wait()
    assert breaker.trials_in_flight == 1
    with pytest.raises(CircuitBreakerError):
        await breaker.acall(asyncio.sleep, 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert breaker.trials_in_flight == 0
    await breaker.acall(asyncio.sleep, 0)
    assert breaker.state is CLOSED
