"""What a retry retries, how it gives up, its events, test mode and its front ends."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import selfheal
from policy_helpers import Flaky
from selfheal import (
    ConstantBackoff,
    DecorrelatedJitter,
    EventBus,
    ExponentialBackoff,
    RandomJitter,
    RetryBudget,
    RetryError,
    StopAfterAttempts,
    StopAfterDelay,
)
from selfheal.testing import EventRecorder, FakeClock


def test_success_needs_no_sleep_and_passes_arguments(clock: FakeClock) -> None:
    flaky = Flaky(0)
    fn = selfheal.retry(on=ConnectionError, clock=clock)(flaky)
    assert fn(1, key=2) == "ok"
    assert flaky.args == ((1,), {"key": 2})
    assert clock.sleeps == []


def test_gives_up_with_retry_error_carrying_the_last_exception(clock: FakeClock) -> None:
    last = ConnectionError("still down")
    flaky = Flaky(10, last)
    fn = selfheal.retry(on=ConnectionError, attempts=3, backoff=0.1, clock=clock)(flaky)
    with pytest.raises(RetryError) as info:
        fn()
    assert info.value.attempts == 3
    assert info.value.reason == "attempts"
    assert info.value.last_exception is last
    assert info.value.__cause__ is last
    assert flaky.calls == 3
    assert clock.sleeps == [0.1, 0.1]
    assert "gave up after 3 attempt(s)" in str(info.value)


def test_reraise_gives_up_with_the_last_exception_itself(clock: FakeClock) -> None:
    last = ConnectionError("x")
    fn = selfheal.retry(on=ConnectionError, attempts=2, backoff=0, reraise=True, clock=clock)(
        Flaky(5, last)
    )
    with pytest.raises(ConnectionError) as info:
        fn()
    assert info.value is last


def test_other_exceptions_propagate_at_once(clock: FakeClock) -> None:
    flaky = Flaky(1, KeyError("bad request"))
    fn = selfheal.retry(on=(ConnectionError, TimeoutError), clock=clock)(flaky)
    with pytest.raises(KeyError):
        fn()
    assert flaky.calls == 1
    assert clock.sleeps == []


def test_predicate_decides_what_is_retried(clock: FakeClock) -> None:
    def transient(exc: BaseException) -> bool:
        return "503" in str(exc)

    fn = selfheal.retry(on=transient, attempts=3, backoff=0, clock=clock)(Flaky(1, OSError("503")))
    assert fn() == "ok"
    flaky = Flaky(1, OSError("404"))
    fn = selfheal.retry(on=transient, attempts=3, backoff=0, clock=clock)(flaky)
    with pytest.raises(OSError, match="404"):
        fn()
    assert flaky.calls == 1


def test_retry_on_result(clock: FakeClock) -> None:
    results = iter([None, None, 42])
    fn = selfheal.retry(
        on=ConnectionError, attempts=5, backoff=1, retry_on_result=lambda r: r is None, clock=clock
    )(lambda: next(results))
    assert fn() == 42
    assert clock.sleeps == [1, 1]

    fn = selfheal.retry(
        on=ConnectionError, attempts=2, backoff=1, retry_on_result=lambda r: r is None, clock=clock
    )(lambda: None)
    with pytest.raises(RetryError) as info:
        fn()
    assert info.value.last_exception is None
    assert info.value.last_result is None
    assert info.value.attempts == 2


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ConstantBackoff(-1), "seconds must be a number >= 0"),
        (lambda: ExponentialBackoff(multiplier=0.5), "multiplier must be a number >= 1"),
        (lambda: DecorrelatedJitter(initial=2, max=1), "max"),
        (lambda: RandomJitter(2, 1), "high"),
        (lambda: StopAfterAttempts(0), "attempts must be an int >= 1"),
        (lambda: selfheal.retry(on=ValueError, attempts=0), "attempts must be an int >= 1"),
        (lambda: selfheal.retry(on=ValueError, attempts=None), "at least one of"),
        (lambda: selfheal.retry(on=ValueError, deadline=-1), "deadline"),
        (lambda: RetryBudget(window=0), "window must be a number > 0"),
    ],
)
def test_bad_options_say_which_and_what_is_valid(build: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_bad_on_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="on must be an exception type"):
        selfheal.retry(on=(ValueError, 3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="on must be"):
        selfheal.retry(on=int)  # type: ignore[arg-type]


def test_events_retrying_and_gave_up(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    seen = EventRecorder(bus).events
    fn = selfheal.retry(
        on=ConnectionError, attempts=3, backoff=0.5, clock=clock, bus=bus, name="users"
    )(Flaky(5))
    with pytest.raises(RetryError):
        fn()
    assert [e.type for e in seen] == [
        "retry.users.retrying",
        "retry.users.retrying",
        "retry.users.gave_up",
    ]
    assert seen[0].data["attempt"] == 1
    assert seen[0].data["delay"] == 0.5
    assert seen[-1].data["attempts"] == 3
    assert seen[-1].data["reason"] == "attempts"


def test_retrying_event_is_not_built_without_subscribers(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    gave_up = EventRecorder(bus, "retry.*.gave_up").events

    def fetch() -> None:
        raise ConnectionError

    fn = selfheal.retry(on=ConnectionError, attempts=2, backoff=0, clock=clock, bus=bus)(fetch)
    with pytest.raises(RetryError):
        fn()
    assert [e.type for e in gave_up] == ["retry.fetch.gave_up"]
    assert bus.has_subscribers("retry.fetch.retrying") is False


def test_test_mode_caps_attempts_and_never_sleeps(clock: FakeClock) -> None:
    selfheal.set_testing(True, attempts=2)
    assert selfheal.is_testing()
    flaky = Flaky(5)
    fn = selfheal.retry(on=ConnectionError, attempts=10, backoff=30, clock=clock)(flaky)
    with pytest.raises(RetryError):
        fn()
    assert flaky.calls == 2
    assert clock.sleeps == []
    selfheal.set_testing(False)
    assert not selfheal.is_testing()
    with pytest.raises(ValueError, match="attempts must be an int >= 1"):
        selfheal.set_testing(True, attempts=0)


def test_decorator_keeps_the_name_and_call_form_works(clock: FakeClock) -> None:
    policy = selfheal.retry(on=ConnectionError, backoff=0, clock=clock)

    @policy
    def fetch_user(user_id: int) -> dict[str, int]:
        return {"id": user_id}

    assert fetch_user.__name__ == "fetch_user"
    assert fetch_user(3) == {"id": 3}
    assert policy.call(Flaky(1), 1) == "ok"
    assert "Retry(on=<class 'ConnectionError'>" in repr(policy)


@pytest.mark.anyio
async def test_async_retry_schedule_and_give_up() -> None:
    clock = FakeClock(autojump=True)
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError
        return "ok"

    fn = selfheal.retry(
        on=ConnectionError, attempts=3, backoff=ExponentialBackoff(initial=1), clock=clock
    )(fetch)
    assert await fn() == "ok"
    assert clock.sleeps == [1.0, 2.0]

    async def down() -> None:
        raise ConnectionError("down")

    policy = selfheal.retry(on=ConnectionError, attempts=2, backoff=0, clock=clock)
    with pytest.raises(RetryError) as info:
        await policy.acall(down)
    assert info.value.attempts == 2


@pytest.mark.anyio
async def test_async_retry_with_deadline_budget_and_result(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0, min_per_second=0.1, window=10, clock=clock)
    results = iter([None, 5])
    seen: list[float | None] = []

    async def fetch() -> int | None:
        seen.append(selfheal.remaining())
        return next(results)

    fn = selfheal.retry(
        on=ConnectionError,
        backoff=0,
        deadline=2,
        budget=budget,
        retry_on_result=lambda r: r is None,
        clock=clock,
    )(fetch)
    assert await fn() == 5
    assert seen == [2.0, 2.0]
    assert budget.balance == pytest.approx(0.0)


def test_retry_error_pickles_for_process_pools() -> None:
    # concurrent.futures.ProcessPoolExecutor pickles a worker's exception to the parent.
    err = RetryError("fetch", 3, "attempts", ValueError("down"), None)
    copy = pickle.loads(pickle.dumps(err))
    assert str(copy) == str(err)
    assert (copy.name, copy.attempts, copy.reason) == ("fetch", 3, "attempts")
    assert repr(copy.last_exception) == "ValueError('down')"


@pytest.mark.parametrize("mode", ["lean", "full"])
def test_attempts_do_not_chain_onto_the_first_failure(mode: str) -> None:
    # Later attempts used to run inside the `except` of the first one, so the re-raised last
    # error showed "During handling of the above exception, another exception occurred"
    # with attempt 1's error, as if the retry itself had crashed.
    extra: dict[str, Any] = {"retry_on_result": lambda r: False} if mode == "full" else {}
    errors = [ValueError("1"), ValueError("2"), ValueError("3")]

    def down() -> None:
        raise errors.pop(0)

    reraising = selfheal.retry(on=ValueError, backoff=0, reraise=True, **extra)(down)
    with pytest.raises(ValueError, match="3") as info:
        reraising()
    assert info.value.__context__ is None
    assert info.value.__cause__ is None

    errors[:] = [ValueError("1"), KeyError("not retryable")]
    with pytest.raises(KeyError) as key_info:
        reraising()
    assert key_info.value.__context__ is None

    errors[:] = [ValueError("1"), ValueError("2"), ValueError("last")]
    with pytest.raises(RetryError) as retry_info:
        selfheal.retry(on=ValueError, backoff=0, **extra)(down)()
    cause = retry_info.value.__cause__
    assert isinstance(cause, ValueError)
    assert str(cause) == "last"
    assert cause.__context__ is None
    assert cause.__traceback__ is not None
    frames = []
    tb = cause.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    assert frames[-1] == "down"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["lean", "full"])
async def test_async_attempts_do_not_chain_onto_the_first_failure(mode: str) -> None:
    extra: dict[str, Any] = {"retry_on_result": lambda r: False} if mode == "full" else {}
    errors = [ValueError("1"), ValueError("2"), ValueError("3")]

    async def down() -> None:
        raise errors.pop(0)

    with pytest.raises(ValueError, match="3") as info:
        await selfheal.retry(on=ValueError, backoff=0, reraise=True, **extra)(down)()
    assert info.value.__context__ is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"attempts": True}, ValueError, r"attempts must be an int >= 1 or None, got True"),
        ({"deadline": -1}, ValueError, r"deadline must be a number > 0, got -1"),
        ({"deadline": 0}, ValueError, r"deadline must be a number > 0, got 0"),
        ({"retry_on_result": 3}, TypeError, r"retry_on_result must be a callable"),
        ({"hint": "Retry-After"}, TypeError, r"hint must be a callable .* or None"),
        ({"name": "payments.api"}, ValueError, r"name must be .* without '\.' or '\*'"),
        ({"name": "*"}, ValueError, r"name must be"),
    ],
)
def test_bad_arguments_fail_when_built_not_at_the_first_failure(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    # A non-callable retry_on_result or hint used to be accepted and to blow up only once a
    # call failed; a dotted name made event types that `retry.*.gave_up` cannot match.
    with pytest.raises(error, match=message):
        selfheal.retry(on=ValueError, **kwargs)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ConstantBackoff(True), "ConstantBackoff: seconds must be a number >= 0, got True"),
        (lambda: StopAfterAttempts(True), "StopAfterAttempts: attempts must be an int >= 1"),
        (lambda: StopAfterDelay(False), "StopAfterDelay: seconds must be a number >= 0"),
        (lambda: RetryBudget(ratio=True), "RetryBudget: ratio must be a number >= 0"),
        (lambda: selfheal.retry(on=ValueError, deadline=True), "deadline must be a number > 0"),
        (lambda: selfheal.set_testing(True, attempts=True), "attempts must be an int >= 1"),
    ],
)
def test_booleans_are_not_numbers(build: Any, message: str) -> None:
    # bool is an int subclass: True would silently mean 1 (and Timeout/Bulkhead refuse it).
    with pytest.raises(ValueError, match=message):
        build()
