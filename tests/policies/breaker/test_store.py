"""Breakers keep their state in a store, survive a restart and follow each other."""

from __future__ import annotations

import pytest

from policy_helpers import CLOSED, HALF_OPEN, OPEN, fail, ok, transitions
from selfheal import (
    BreakerRecord,
    BreakerStore,
    CircuitBreaker,
    CircuitBreakerError,
    EventBus,
    MemoryBreakerStore,
)
from selfheal.testing import FakeClock


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
    seen = transitions(bus)
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
