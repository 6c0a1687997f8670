"""Retry statistics: our counters and tenacity's figures, per decorated function (policy)."""

from __future__ import annotations

import threading

import pytest

import selfheal
from policy_helpers import Flaky
from selfheal import RetryError, RetryStatistics
from selfheal.testing import FakeClock

TENACITY_KEYS = {"attempt_number", "start_time", "delay_since_first_attempt", "idle_for"}


def test_counters_and_the_last_retried_call(clock: FakeClock) -> None:
    outcomes: list[BaseException | str] = []

    def fetch() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    fn = selfheal.retry(on=ConnectionError, attempts=3, backoff=1, clock=clock)(fetch)
    stats = fn.statistics  # type: ignore[attr-defined]
    assert isinstance(stats, RetryStatistics)
    assert dict(stats) == {
        "calls": 0,
        "successes": 0,
        "failures": 0,
        "gave_up": 0,
        "retries": 0,
        "attempt_number": 0,
        "start_time": None,
        "delay_since_first_attempt": 0.0,
        "idle_for": 0.0,
    }

    outcomes[:] = ["a"]  # at once
    assert fn() == "a"
    outcomes[:] = [ConnectionError(), ConnectionError(), "b"]  # on the third attempt
    assert fn() == "b"
    assert stats["attempt_number"] == 3
    assert stats.idle_for == 2.0

    clock.advance(98)
    outcomes[:] = [ConnectionError()] * 3  # gives up
    with pytest.raises(RetryError):
        fn()
    outcomes[:] = [KeyError("not retried")]
    with pytest.raises(KeyError):
        fn()
    outcomes[:] = ["c"]
    assert fn() == "c"

    assert (stats.calls, stats.successes, stats.failures, stats.gave_up) == (5, 3, 2, 1)
    assert stats.retries == 4
    # tenacity's figures describe the last call that needed the retry's decision: the third.
    assert stats.attempt_number == 3
    assert stats.start_time == 100.0
    assert stats.delay_since_first_attempt == 2.0
    assert stats.idle_for == 2.0
    assert set(stats) == TENACITY_KEYS | {"calls", "successes", "failures", "gave_up", "retries"}
    assert "calls=5" in repr(stats)
    with pytest.raises(KeyError):
        stats["nope"]


@pytest.mark.anyio
async def test_async_functions_count_alike() -> None:
    clock = FakeClock(autojump=True)
    flaky = Flaky(1)

    @selfheal.retry(on=ConnectionError, backoff=0.5, clock=clock)
    async def fetch() -> str:
        return str(flaky())

    assert await fetch() == "ok"
    assert await fetch() == "ok"
    stats = fetch.statistics  # type: ignore[attr-defined]
    assert (stats.calls, stats.successes, stats.retries, stats.attempt_number) == (2, 2, 1, 2)
    assert stats.idle_for == 0.5

    @selfheal.retry(on=ConnectionError, backoff=0, clock=clock)
    async def down() -> None:
        raise KeyError("x")

    with pytest.raises(KeyError):
        await down()
    assert down.statistics.failures == 1  # type: ignore[attr-defined]
    assert down.statistics.attempt_number == 0  # type: ignore[attr-defined]


def test_each_decorated_function_counts_for_itself(clock: FakeClock) -> None:
    first = selfheal.retry(on=ConnectionError, clock=clock)(Flaky(0))
    second = selfheal.retry(on=ConnectionError, clock=clock)(Flaky(0))
    first()
    first()
    second()
    assert first.statistics.calls == 2  # type: ignore[attr-defined]
    assert second.statistics.calls == 1  # type: ignore[attr-defined]

    shared = selfheal.retry(on=ConnectionError, clock=clock)
    one, two = shared(Flaky(0)), shared(Flaky(0))
    one()
    two()
    assert shared.statistics.calls == 2
    assert one.statistics is shared.statistics  # type: ignore[attr-defined]


def test_nested_retries_each_show_their_own(clock: FakeClock) -> None:
    inner = selfheal.retry(on=KeyError, backoff=0, clock=clock)(Flaky(1, KeyError()))
    outer = selfheal.retry(on=ValueError, backoff=0, clock=clock)(inner)
    assert outer() == "ok"
    assert outer.statistics is not inner.statistics  # type: ignore[attr-defined]
    assert inner.statistics.retries == 1  # type: ignore[attr-defined]
    assert outer.statistics.retries == 0  # type: ignore[attr-defined]


def test_bound_methods_reach_the_statistics() -> None:
    selfheal.set_testing(True, attempts=5)

    class Client:
        @selfheal.retry
        def get(self) -> str:
            return "ok"

    Client().get()
    assert Client.get.statistics.successes == 1  # type: ignore[attr-defined]
    assert Client().get.statistics.successes == 1  # type: ignore[attr-defined]


def test_loops_and_pipelines_count_on_the_policy(clock: FakeClock) -> None:
    policy = selfheal.retry(on=ConnectionError, backoff=1, clock=clock)
    flaky = Flaky(2)
    for attempt in policy.retrying():
        with attempt:
            flaky()
    stats = policy.statistics
    assert (stats.calls, stats.successes, stats.retries, stats.attempt_number) == (1, 1, 2, 3)
    assert stats.idle_for == 2.0

    def down() -> None:
        for attempt in policy.retrying():
            with attempt:
                raise ConnectionError

    with pytest.raises(RetryError):
        down()
    assert (stats.calls, stats.failures, stats.gave_up) == (2, 1, 1)

    guarded = selfheal.pipeline(selfheal.fallback("cached"), policy)(Flaky(100))
    assert guarded() == "cached"
    assert stats.gave_up == 2


def test_counts_stay_exact_across_threads(clock: FakeClock) -> None:
    fn = selfheal.retry(on=ConnectionError, backoff=0, clock=clock)(_fail_once_when)

    def work() -> None:
        for i in range(2000):
            fn(i % 10 == 0, [0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = fn.statistics
    assert (stats.calls, stats.successes, stats.failures, stats.retries) == (8000, 8000, 0, 800)


def _fail_once_when(fail: bool, box: list[int]) -> int:
    box[0] += 1
    if fail and box[0] == 1:
        raise ConnectionError
    return box[0]
