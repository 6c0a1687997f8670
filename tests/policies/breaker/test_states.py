"""The circuit breaker on a fake clock: trip modes, half-open trials, errors, events, store."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import Callable
from typing import Any

import pytest

from selfheal import (
    BreakerRecord,
    BreakerState,
    BreakerStore,
    CircuitBreaker,
    CircuitBreakerError,
    Event,
    EventBus,
    FailureRateWindow,
    MemoryBreakerStore,
    SlowCallRule,
)
from selfheal.policies.breaker._machine import (
    BreakerMachine,
    IllegalTransitionError,
    Signal,
    transition,
)
from selfheal.testing import FakeClock

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Boom(Exception):
    pass


class BadRequest(Exception):
    pass


def ok() -> str:
    return "ok"


def boom() -> str:
    raise Boom("down")


def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            breaker.execute(boom)


def events_of(bus: EventBus, *patterns: str) -> list[Event]:
    """Collect the events matching `patterns` (by default the three transition events)."""
    seen: list[Event] = []
    for pattern in patterns or ("breaker.*.opened", "breaker.*.half_opened", "breaker.*.closed"):
        bus.subscribe(pattern, seen.append)
    return seen


# -- the state diagram ---------------------------------------------------------------------


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


# -- consecutive failures ------------------------------------------------------------------


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


# -- open, half-open -----------------------------------------------------------------------


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


# -- failure-rate windows ------------------------------------------------------------------


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


# -- slow calls ----------------------------------------------------------------------------


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


# -- ignored exceptions and interruptions --------------------------------------------------


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


# -- the ways to call ----------------------------------------------------------------------


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


# -- manual controls -----------------------------------------------------------------------


def test_manual_open_close_reset(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    seen = events_of(bus)
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


# -- events --------------------------------------------------------------------------------


def test_transitions_publish_events(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    seen = events_of(bus)
    breaker = CircuitBreaker(
        failure_threshold=2, recovery_timeout=10, name="db", clock=clock, bus=bus
    )
    fail(breaker, 2)
    with pytest.raises(CircuitBreakerError):
        breaker.execute(ok)
    clock.advance(10)
    fail(breaker)
    clock.advance(10)
    breaker.execute(ok)
    assert [(e.type, e.data["old"], e.data["reason"]) for e in seen] == [
        ("breaker.db.opened", "closed", "consecutive_failures"),
        ("breaker.db.half_opened", "open", "recovery_due"),
        ("breaker.db.opened", "half_open", "trial_failed"),
        ("breaker.db.half_opened", "open", "recovery_due"),
        ("breaker.db.closed", "half_open", "trials_passed"),
    ]
    opened = seen[0]
    assert opened.source == "db"
    assert opened.severity == "error"
    assert opened.data["recovery_timeout"] == 10.0
    assert opened.timestamp == clock.time() - 20


def test_rejected_event_only_when_subscribed(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    emitted: list[str] = []
    real_emit = bus.emit

    def spy(type: str, *args: Any, **kwargs: Any) -> Event | None:
        emitted.append(type)
        return real_emit(type, *args, **kwargs)

    bus.emit = spy  # type: ignore[method-assign]
    breaker = CircuitBreaker(failure_threshold=1, name="db", clock=clock, bus=bus)
    fail(breaker)
    with pytest.raises(CircuitBreakerError):
        breaker.execute(ok)
    assert "breaker.db.rejected" not in emitted  # nobody listens: not even built
    rejected = events_of(bus, "breaker.*.rejected")
    clock.advance(7)
    with pytest.raises(CircuitBreakerError):
        breaker.execute(ok)
    assert [e.type for e in rejected] == ["breaker.db.rejected"]
    assert rejected[0].data == {"state": "open", "remaining": 23.0}
    assert rejected[0].severity == "warning"


# -- the store -----------------------------------------------------------------------------


def test_memory_store_holds_state_and_opened_at(clock: FakeClock) -> None:
    store = MemoryBreakerStore()
    assert isinstance(store, BreakerStore)
    breaker = CircuitBreaker(failure_threshold=1, name="db", store=store, clock=clock)
    assert store.load("db") is None  # the CLOSED hot path never wrote anything
    clock.advance(3)
    fail(breaker)
    assert store.load("db") == BreakerRecord(OPEN, clock.time())
    assert "db" in repr(store)


def test_a_new_breaker_resumes_from_the_store(clock: FakeClock) -> None:
    store = MemoryBreakerStore()
    first = CircuitBreaker(
        failure_threshold=1, recovery_timeout=30, name="db", store=store, clock=clock
    )
    fail(first)
    clock.advance(10)
    second = CircuitBreaker(
        failure_threshold=1, recovery_timeout=30, name="db", store=store, clock=clock
    )
    assert second.state is OPEN
    assert second.remaining == pytest.approx(20.0)
    clock.advance(20)
    assert second.execute(ok) == "ok"
    assert store.load("db") is not None
    assert store.load("db").state is CLOSED  # type: ignore[union-attr]


def test_breakers_sharing_a_store_follow_each_other_after_recovery(clock: FakeClock) -> None:
    store = MemoryBreakerStore()
    bus = EventBus(clock=clock)
    seen = events_of(bus)
    a = CircuitBreaker(
        failure_threshold=1, recovery_timeout=10, name="db", store=store, clock=clock
    )
    b = CircuitBreaker(
        failure_threshold=1, recovery_timeout=10, name="db", store=store, clock=clock, bus=bus
    )
    fail(a)
    fail(b)
    clock.advance(5)
    a.close()  # a recovered by hand...
    clock.advance(5)
    assert b.execute(ok) == "ok"  # ...so b follows the store instead of probing
    assert b.state is CLOSED
    assert [(e.type, e.data["reason"]) for e in seen] == [
        ("breaker.db.opened", "consecutive_failures"),
        ("breaker.db.closed", "store"),
    ]
    fail(a)  # a opens again at t=10
    fail(b)  # b opens too
    clock.advance(5)
    a.open()  # re-opened at t=15 by an operator
    clock.advance(5)
    with pytest.raises(CircuitBreakerError) as info:
        b.execute(ok)  # b's own timeout is over, but the store says open since t=15
    assert info.value.remaining == pytest.approx(5.0)


def test_reading_state_after_recovery_also_follows_the_store(clock: FakeClock) -> None:
    store = MemoryBreakerStore()
    a = CircuitBreaker(
        failure_threshold=1, recovery_timeout=10, name="db", store=store, clock=clock
    )
    b = CircuitBreaker(
        failure_threshold=1, recovery_timeout=10, name="db", store=store, clock=clock
    )
    fail(a)
    fail(b)
    clock.advance(4)
    a.open()  # re-opened at t=4 by an operator
    clock.advance(6)
    assert b.state is OPEN  # not HALF_OPEN: the store says open until t=14
    assert b.remaining == pytest.approx(4.0)
    clock.advance(4)
    assert b.state is HALF_OPEN


def test_refresh_adopts_the_store(clock: FakeClock) -> None:
    store = MemoryBreakerStore()
    a = CircuitBreaker(failure_threshold=1, name="db", store=store, clock=clock)
    b = CircuitBreaker(failure_threshold=1, name="db", store=store, clock=clock)
    fail(a)
    assert b.state is CLOSED  # CLOSED never polls the store
    b.refresh()
    assert b.state is OPEN
    store.save("db", BreakerRecord(CLOSED, clock.time()))
    b.refresh()
    assert b.state is CLOSED
    CircuitBreaker(failure_threshold=1, name="other", clock=clock).refresh()  # no store


def test_store_half_open_record_means_open_since_then(clock: FakeClock) -> None:
    store = MemoryBreakerStore()
    store.save("db", BreakerRecord(HALF_OPEN, clock.time() - 8))
    breaker = CircuitBreaker(recovery_timeout=10, name="db", store=store, clock=clock)
    assert breaker.state is OPEN
    assert breaker.remaining == pytest.approx(2.0)


# -- errors and repr -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"failure_threshold": 1.5}, "failure_threshold"),
        ({"recovery_timeout": -1}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"name": ""}, "name"),
        ({"name": "a.b"}, "name"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"window": 10}, "window"),
        ({"slow_call": 1.0, "window": FailureRateWindow()}, "slow_call"),
        ({"slow_call": SlowCallRule(1.0)}, "slow_call needs window"),
        ({"failure_threshold": None}, "failure_threshold=None needs window"),
        ({"ignore": "ValueError"}, "ignore"),
        ({"ignore": (ValueError, 3)}, "ignore"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CircuitBreaker(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": 2.5}, "size"),
        ({"size": 0, "kind": "time"}, "size"),
        ({"kind": "calls"}, "kind"),
        ({"min_calls": 0}, "min_calls"),
        ({"min_calls": 1.0}, "min_calls"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_bad_window_options_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FailureRateWindow(**kwargs)


def test_bad_slow_call_options_name_the_field() -> None:
    with pytest.raises(ValueError, match="duration"):
        SlowCallRule(0)
    with pytest.raises(ValueError, match="rate_threshold"):
        SlowCallRule(1.0, rate_threshold=2)


def test_error_pickles_and_repr_reads_well(clock: FakeClock) -> None:
    err = CircuitBreakerError("db", OPEN, 1.5)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.name, copy.state, copy.remaining) == ("db", OPEN, 1.5)
    assert str(copy) == str(err)
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=60, name="db", clock=clock)
    assert repr(breaker) == (
        "CircuitBreaker(name='db', state=closed, failure_threshold=3, "
        "recovery_timeout=60.0, half_open_max_calls=1)"
    )
    assert FailureRateWindow() == FailureRateWindow(100, "count", 10, 0.5)


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
