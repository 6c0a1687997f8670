"""A server's Retry-After, read from the exception, replaces the backoff's wait."""

from __future__ import annotations

from datetime import timedelta

import pytest

import selfheal
from policy_helpers import Flaky
from selfheal.testing import FakeClock


class Throttled(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__("429")
        self.retry_after = retry_after


@pytest.mark.parametrize(
    ("hint", "expected"), [(7, 7.0), ("2.5", 2.5), (timedelta(seconds=3), 3.0), ("soon", 0.1)]
)
def test_retry_after_hint_replaces_the_backoff(
    clock: FakeClock, hint: object, expected: float
) -> None:
    fn = selfheal.retry(on=Throttled, attempts=2, backoff=0.1, clock=clock)(
        Flaky(1, Throttled(hint))
    )
    assert fn() == "ok"
    assert clock.sleeps == [expected]


def test_custom_hint_extractor_and_disabled_hints(clock: FakeClock) -> None:
    fn = selfheal.retry(on=ValueError, attempts=2, backoff=0.1, hint=lambda e: 9.0, clock=clock)(
        Flaky(1, ValueError())
    )
    fn()
    assert clock.sleeps == [9.0]
    clock.sleeps.clear()
    fn = selfheal.retry(on=Throttled, attempts=2, backoff=0.1, hint=None, clock=clock)(
        Flaky(1, Throttled(50))
    )
    fn()
    assert clock.sleeps == [0.1]


@pytest.mark.parametrize(
    ("verdict", "expected"), [(True, [0.1]), (2.5, [2.5]), (0, []), (timedelta(seconds=4), [4.0])]
)
def test_a_predicate_may_return_the_wait_as_stamina_backoff_hooks_do(
    clock: FakeClock, verdict: object, expected: list[float]
) -> None:
    # stamina's backoff hook: True retries with the backoff, a number or timedelta is the wait
    # (0: retry at once, with no sleep).
    fn = selfheal.retry(on=lambda exc: verdict, attempts=2, backoff=0.1, clock=clock)(
        Flaky(1, ValueError())
    )
    assert fn() == "ok"
    assert clock.sleeps == expected


@pytest.mark.parametrize("verdict", [False, None])
def test_a_predicate_that_returns_false_or_none_does_not_retry(
    clock: FakeClock, verdict: object
) -> None:
    fn = selfheal.retry(on=lambda exc: verdict, attempts=3, backoff=0.1, clock=clock)(
        Flaky(1, ValueError("no"))
    )
    with pytest.raises(ValueError, match="no"):
        fn()
    assert clock.sleeps == []


def test_the_predicates_wait_still_counts_against_the_deadline(clock: FakeClock) -> None:
    fn = selfheal.retry(on=lambda exc: 60.0, deadline=10, clock=clock)(Flaky(1, ValueError()))
    with pytest.raises(selfheal.RetryError, match="deadline"):
        fn()
    assert clock.sleeps == []


@pytest.mark.anyio
async def test_the_async_front_end_takes_the_predicates_wait_too() -> None:
    clock = FakeClock(autojump=True)
    calls = 0

    @selfheal.retry(on=lambda exc: 1.5, attempts=2, clock=clock)
    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError
        return "ok"

    assert await flaky() == "ok"
    assert clock.sleeps == [1.5]
