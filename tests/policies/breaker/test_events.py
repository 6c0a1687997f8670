"""What a breaker publishes on its bus, and when."""

from __future__ import annotations

from typing import Any

import pytest

from policy_helpers import fail, ok, transitions
from selfheal import (
    CircuitBreaker,
    CircuitBreakerError,
    Event,
    EventBus,
)
from selfheal.testing import FakeClock


def test_transitions_publish_events(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    seen = transitions(bus)
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
    rejected = transitions(bus, "breaker.*.rejected")
    clock.advance(7)
    with pytest.raises(CircuitBreakerError):
        breaker.execute(ok)
    assert [e.type for e in rejected] == ["breaker.db.rejected"]
    assert rejected[0].data == {"state": "open", "remaining": 23.0}
    assert rejected[0].severity == "warning"
