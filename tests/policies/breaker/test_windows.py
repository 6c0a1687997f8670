"""Tripping on rates: count and time windows, min_calls, slow calls."""

from __future__ import annotations

from collections.abc import Callable

from policy_helpers import CLOSED, OPEN, fail, ok
from selfheal import (
    CircuitBreaker,
    FailureRateWindow,
    SlowCallRule,
)
from selfheal.testing import FakeClock


def test_count_window_trips_on_rate_after_min_calls(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=None,
        window=FailureRateWindow(size=10, min_calls=4, threshold=0.5),
        clock=clock,
    )
    fail(breaker, 3)  # 3 of 3 failed, but fewer than min_calls
    assert breaker.state is CLOSED
    breaker.execute(ok)  # 3 of 4: 75 %
    assert breaker.state is OPEN


def test_a_count_window_smaller_than_min_calls_judges_when_full(clock: FakeClock) -> None:
    # Five calls can never make ten: as in resilience4j, the minimum comes down to the size.
    window = FailureRateWindow(size=5, min_calls=10, threshold=0.5)
    assert window.min_calls == 5
    breaker = CircuitBreaker(failure_threshold=None, window=window, clock=clock)
    fail(breaker, 4)
    assert breaker.state is CLOSED
    fail(breaker)  # 5 of 5
    assert breaker.state is OPEN


def test_a_time_window_keeps_its_min_calls(clock: FakeClock) -> None:
    # A time window holds any number of calls, so its minimum is never lowered.
    window = FailureRateWindow(size=5, kind="time", min_calls=10)
    assert window.min_calls == 10
    breaker = CircuitBreaker(failure_threshold=None, window=window, clock=clock)
    fail(breaker, 9)
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN


def test_count_window_slides(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=None,
        window=FailureRateWindow(size=4, min_calls=4, threshold=0.75),
        clock=clock,
    )
    # Pattern F S F S ...: the rate over the last four is always 50 %.
    for _ in range(10):
        fail(breaker)
        breaker.execute(ok)
    assert breaker.state is CLOSED
    fail(breaker)  # last four: S F S F... then F F after the next
    assert breaker.state is CLOSED
    fail(breaker)  # last four: F S F F = 75 %
    assert breaker.state is OPEN


def test_window_and_consecutive_threshold_both_apply(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=2,
        window=FailureRateWindow(size=100, min_calls=50, threshold=0.9),
        clock=clock,
    )
    fail(breaker, 2)
    assert breaker.state is OPEN


def test_time_window_forgets_old_calls(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=None,
        window=FailureRateWindow(size=10, kind="time", min_calls=3, threshold=0.5),
        clock=clock,
    )
    fail(breaker, 2)
    clock.advance(11)  # those two age out
    breaker.execute(ok)
    breaker.execute(ok)
    fail(breaker)  # 1 of 3
    assert breaker.state is CLOSED
    fail(breaker)  # 2 of 4
    assert breaker.state is OPEN


def test_time_window_counts_calls_within_the_window(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=None,
        window=FailureRateWindow(size=10, kind="time", min_calls=4, threshold=0.5),
        clock=clock,
    )
    for _ in range(2):
        fail(breaker)
        clock.advance(3)
    breaker.execute(ok)
    assert breaker.state is CLOSED  # three calls in the window
    breaker.execute(ok)  # four calls within 9 s, two failed
    assert breaker.state is OPEN


def test_window_restarts_when_the_breaker_closes(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=None,
        recovery_timeout=1,
        window=FailureRateWindow(size=10, min_calls=2, threshold=0.5),
        clock=clock,
    )
    fail(breaker, 2)
    assert breaker.state is OPEN
    clock.advance(1)
    breaker.execute(ok)
    assert breaker.state is CLOSED
    breaker.execute(ok)
    fail(breaker)  # 1 of 2 after closing (2 of 4 if the old window were kept)
    assert breaker.state is OPEN  # 50 % is the threshold
    clock.advance(1)
    breaker.execute(ok)
    breaker.execute(ok)
    breaker.execute(ok)
    fail(breaker)
    assert breaker.state is CLOSED


def slow(clock: FakeClock, seconds: float) -> Callable[[], str]:
    def call() -> str:
        clock.advance(seconds)
        return "slow"

    return call


def test_slow_call_rate_trips(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        window=FailureRateWindow(size=10, min_calls=4, threshold=0.9),
        slow_call=SlowCallRule(duration=1.0, rate_threshold=0.5),
        clock=clock,
    )
    protected = breaker(slow(clock, 1.5))
    fast = breaker(slow(clock, 0.1))
    fast()
    fast()
    protected()
    assert breaker.state is CLOSED
    protected()  # 2 of 4 slow
    assert breaker.state is OPEN


def test_slow_trial_counts_as_failed(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1,
        recovery_timeout=5,
        window=FailureRateWindow(size=10, min_calls=10),
        slow_call=SlowCallRule(duration=1.0),
        clock=clock,
    )
    fail(breaker)
    clock.advance(5)
    assert breaker.execute(slow(clock, 2.0)) == "slow"
    assert breaker.state is OPEN
    clock.advance(5)
    breaker.execute(slow(clock, 0.5))
    assert breaker.state is CLOSED
