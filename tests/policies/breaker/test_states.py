"""The state diagram: tripping on consecutive failures, OPEN, HALF_OPEN trials, manual control."""

from __future__ import annotations

import pytest

from policy_helpers import CLOSED, HALF_OPEN, OPEN, Boom, fail, ok, transitions
from selfheal import (
    BreakerState,
    CircuitBreaker,
    CircuitBreakerError,
    EventBus,
)
from selfheal.policies.breaker._machine import (
    BreakerMachine,
    IllegalTransitionError,
    Signal,
    transition,
)
from selfheal.testing import FakeClock


def test_transition_table_has_exactly_the_documented_edges() -> None:
    assert transition(CLOSED, Signal.TRIPPED) is OPEN
    assert transition(OPEN, Signal.RECOVERY_DUE) is HALF_OPEN
    assert transition(HALF_OPEN, Signal.TRIAL_FAILED) is OPEN
    assert transition(HALF_OPEN, Signal.TRIALS_PASSED) is CLOSED
    for state in BreakerState:
        assert transition(state, Signal.FORCE_OPEN) is OPEN
        assert transition(state, Signal.FORCE_CLOSE) is CLOSED
    illegal = [
        (CLOSED, Signal.RECOVERY_DUE),
        (CLOSED, Signal.TRIAL_FAILED),
        (CLOSED, Signal.TRIALS_PASSED),
        (OPEN, Signal.TRIPPED),
        (OPEN, Signal.TRIAL_FAILED),
        (OPEN, Signal.TRIALS_PASSED),
        (HALF_OPEN, Signal.TRIPPED),
        (HALF_OPEN, Signal.RECOVERY_DUE),
    ]
    for state, signal in illegal:
        with pytest.raises(IllegalTransitionError, match=signal.value):
            transition(state, signal)


def test_machine_cannot_be_forced_half_open() -> None:
    machine = BreakerMachine(
        failure_threshold=1,
        recovery_timeout=1,
        half_open_max_calls=1,
        window=None,
        slow_call=None,
        now=0.0,
    )
    with pytest.raises(ValueError, match="HALF_OPEN"):
        machine.force(HALF_OPEN, 0.0)


def test_trips_after_failure_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10, clock=clock)
    assert breaker.state is CLOSED
    fail(breaker, 2)
    assert breaker.failure_count == 2
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.failure_count == 0
    calls = []
    with pytest.raises(CircuitBreakerError):
        breaker.execute(calls.append, 1)
    assert calls == []


def test_a_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=3, clock=clock)
    for _ in range(5):
        fail(breaker, 2)
        assert breaker.execute(ok) == "ok"
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0


def test_defaults_are_the_articles(clock: FakeClock) -> None:
    breaker = CircuitBreaker(clock=clock)
    fail(breaker, 4)
    assert breaker.state is CLOSED
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.remaining == 30.0
    assert CircuitBreaker.OPEN is OPEN
    assert CircuitBreaker.HALF_OPEN is HALF_OPEN
    assert CircuitBreaker.CLOSED is CLOSED


def test_open_rejects_until_recovery_timeout_with_remaining_time(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=60, name="db", clock=clock)
    fail(breaker)
    clock.advance(15)
    with pytest.raises(CircuitBreakerError) as info:
        breaker.execute(ok)
    err = info.value
    assert err.name == "db"
    assert err.state is OPEN
    assert err.remaining == pytest.approx(45.0)
    assert err.retry_after == err.remaining
    assert "'db'" in str(err)
    assert "45.000 s" in str(err)
    clock.advance(44.999)
    with pytest.raises(CircuitBreakerError):
        breaker.execute(ok)
    clock.advance(0.001)
    assert breaker.state is HALF_OPEN
    assert breaker.execute(ok) == "ok"
    assert breaker.state is CLOSED


def test_failed_trial_reopens_with_a_fresh_timeout(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=2, recovery_timeout=10, clock=clock)
    fail(breaker, 2)
    clock.advance(10)
    fail(breaker)
    assert breaker.state is OPEN
    assert breaker.remaining == 10.0
    clock.advance(9)
    with pytest.raises(CircuitBreakerError):
        breaker.execute(ok)


def test_half_open_admits_exactly_n_trials_and_closes_after_n_successes(
    clock: FakeClock,
) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, half_open_max_calls=3, clock=clock
    )
    fail(breaker)
    clock.advance(5)
    admitted: list[int] = []
    rejected: list[CircuitBreakerError] = []

    def nested(depth: int) -> None:
        # Each level holds its trial permit while the next one asks for one.
        if depth == 5:
            return
        try:
            with breaker:
                admitted.append(depth)
                assert breaker.trials_in_flight == len(admitted)
                nested(depth + 1)
        except CircuitBreakerError as exc:
            rejected.append(exc)
            nested(depth + 1)

    nested(0)
    assert admitted == [0, 1, 2]
    assert len(rejected) == 2
    assert all(e.state is HALF_OPEN and e.remaining == 0.0 for e in rejected)
    assert "half-open" in str(rejected[0])
    assert breaker.state is CLOSED


def test_half_open_needs_n_successes_to_close(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, half_open_max_calls=2, clock=clock
    )
    fail(breaker)
    clock.advance(5)
    breaker.execute(ok)
    assert breaker.state is HALF_OPEN
    assert breaker.trials_in_flight == 0
    breaker.execute(ok)
    assert breaker.state is CLOSED


def test_one_failed_trial_reopens_even_after_successes(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, half_open_max_calls=3, clock=clock
    )
    fail(breaker)
    clock.advance(5)
    breaker.execute(ok)
    breaker.execute(ok)
    fail(breaker)
    assert breaker.state is OPEN


def test_stale_closed_call_does_not_count_after_the_breaker_moved(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=5, clock=clock)

    def slow_failure() -> None:
        # Admitted while CLOSED; the breaker trips and recovers before this call fails.
        fail(breaker)
        clock.advance(5)
        assert breaker.execute(ok) == "ok"
        assert breaker.state is CLOSED
        raise Boom

    with pytest.raises(Boom):
        breaker.execute(slow_failure)
    assert breaker.state is CLOSED
    assert breaker.failure_count == 0


def test_a_trial_from_an_earlier_half_open_period_keeps_its_permit(clock: FakeClock) -> None:
    breaker = CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, half_open_max_calls=2, clock=clock
    )
    fail(breaker)
    clock.advance(5)
    with breaker:  # a slow trial of the first half-open period
        fail(breaker)  # the other trial fails: OPEN again
        clock.advance(5)
        assert breaker.state is HALF_OPEN
        # One new permit only: the slow trial still holds the other.
        with breaker, pytest.raises(CircuitBreakerError):
            breaker.execute(ok)
        assert breaker.state is HALF_OPEN
    # The old trial's success belongs to the old period: it frees a permit, nothing more.
    assert breaker.trials_in_flight == 0
    assert breaker.state is HALF_OPEN
    breaker.execute(ok)
    assert breaker.state is CLOSED


def test_a_stale_trial_success_does_not_close_a_later_period(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, recovery_timeout=1, clock=clock)
    breaker.open()
    clock.advance(1)
    with breaker:
        breaker.open()  # the trial's period ends while it runs
        clock.advance(1)
        assert breaker.state is HALF_OPEN
    assert breaker.state is HALF_OPEN  # its success belonged to the earlier period
    breaker.execute(ok)
    assert breaker.state is CLOSED


def test_manual_open_close_reset(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    seen = transitions(bus)
    breaker = CircuitBreaker(recovery_timeout=10, name="pay", clock=clock, bus=bus)
    breaker.open()
    assert breaker.state is OPEN
    assert breaker.remaining == 10.0
    with pytest.raises(CircuitBreakerError):
        breaker.execute(ok)
    breaker.close()
    assert breaker.state is CLOSED
    fail(breaker, 4)
    breaker.reset()
    assert breaker.failure_count == 0
    fail(breaker, 4)
    assert breaker.state is CLOSED
    breaker.open()
    clock.advance(10)
    assert breaker.state is HALF_OPEN
    breaker.reset()
    assert breaker.state is CLOSED
    assert [e.type for e in seen] == [
        "breaker.pay.opened",
        "breaker.pay.closed",
        "breaker.pay.opened",
        "breaker.pay.half_opened",
        "breaker.pay.closed",
    ]
    assert [e.data["reason"] for e in seen] == [
        "manual",
        "manual",
        "manual",
        "recovery_due",
        "manual",
    ]
