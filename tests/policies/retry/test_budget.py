"""The retry budget: retries stay within a share of the calls, across threads and time."""

from __future__ import annotations

import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import selfheal
from policy_helpers import Flaky
from selfheal import (
    EventBus,
    RetryBudget,
    RetryError,
)
from selfheal.testing import EventRecorder, FakeClock


def test_budget_caps_retries_at_a_ratio_of_calls(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.2, min_per_second=0, window=10, clock=clock)
    bus = EventBus(clock=clock)
    exhausted = EventRecorder(bus, "retry.*.budget_exhausted").events
    ok = selfheal.retry(on=ConnectionError, budget=budget, clock=clock)(lambda: "ok")
    for _ in range(10):
        ok()
    assert budget.balance == pytest.approx(2.0)
    failing = selfheal.retry(
        on=ConnectionError, attempts=10, backoff=0, budget=budget, clock=clock, bus=bus, name="db"
    )(Flaky(1000))
    with pytest.raises(RetryError) as info:
        failing()
    # 11 calls deposit 2.2 tokens: two retries, then the budget refuses.
    assert info.value.reason == "budget"
    assert info.value.attempts == 3
    assert [e.type for e in exhausted] == ["retry.db.budget_exhausted"]


def test_budget_window_slides_and_reserve_refills(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.0, min_per_second=0.5, window=4, clock=clock)
    assert budget.try_withdraw()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    clock.advance(2.0)
    assert not budget.try_withdraw()  # both retries are still inside the window
    clock.advance(2.1)
    assert budget.try_withdraw()
    assert budget.try_withdraw()
    assert not budget.try_withdraw()
    clock.advance(100)
    assert budget.balance == pytest.approx(2.0)


def test_budget_holds_under_64_threads(clock: FakeClock) -> None:
    budget = RetryBudget(ratio=0.1, min_per_second=1, window=10, clock=clock)
    calls = 0
    lock = threading.Lock()

    def flaky() -> None:
        nonlocal calls
        with lock:
            calls += 1
        raise ConnectionError

    fn = selfheal.retry(on=ConnectionError, attempts=5, backoff=0, budget=budget, clock=clock)(
        flaky
    )
    start = threading.Barrier(64)

    def worker() -> None:
        start.wait()
        for _ in range(20):
            with pytest.raises(RetryError):
                fn()

    threads = [threading.Thread(target=worker) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    first_attempts = 64 * 20
    retries = calls - first_attempts
    assert retries <= 0.1 * first_attempts + 1 * 10
    assert retries >= 0.1 * first_attempts  # the budget is used, not just refused


@settings(deadline=None)  # properties of values, not of speed: no per-example time limit
@given(
    ratio=st.sampled_from([0.0, 0.1, 0.2, 0.5, 1.0]),
    reserve=st.sampled_from([0.0, 0.5, 1.0]),
    ops=st.lists(
        st.one_of(st.just("call"), st.just("retry"), st.floats(0.01, 4.0, allow_nan=False)),
        max_size=200,
    ),
)
def test_budget_never_grants_more_than_its_ratio_over_the_window(
    ratio: float, reserve: float, ops: list[object]
) -> None:
    clock = FakeClock()
    window = 10.0
    budget = RetryBudget(ratio=ratio, min_per_second=reserve, window=window, clock=clock)
    calls: list[float] = []
    granted: list[float] = []
    for op in ops:
        now = clock.monotonic()
        if op == "call":
            budget.deposit()
            calls.append(now)
        elif op == "retry":
            if budget.try_withdraw():
                granted.append(now)
                # The window is 10 buckets: retries of at least its last 90% are still counted,
                # calls older than the whole window no longer are.
                recent = sum(1 for t in granted if t >= now - 0.9 * window)
                counted_calls = sum(1 for t in calls if t >= now - window)
                assert recent <= ratio * counted_calls + reserve * window + 1e-9
        else:
            clock.advance(float(op))  # type: ignore[arg-type]
