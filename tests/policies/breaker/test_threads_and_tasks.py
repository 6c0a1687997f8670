"""The breaker under 64 threads and 64 tasks: bounded half-open, no serialisation when closed.

Every assertion is about what was observed inside the protected call; nothing here measures
time. Calls block on events and barriers, so a breaker that admitted too many trials or
serialised calls shows up as a wrong count or a broken barrier, never as a slow test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from policy_helpers import Boom, boom
from selfheal import BreakerState, CircuitBreaker, CircuitBreakerError, FailureRateWindow
from selfheal.testing import FakeClock

WAIT = 10.0  # seconds; a generous bound for threads to get scheduled, never reached normally

CONFIGS: dict[str, Callable[[FakeClock, int], CircuitBreaker]] = {
    "consecutive": lambda clock, n: CircuitBreaker(
        failure_threshold=1, recovery_timeout=5, half_open_max_calls=n, clock=clock
    ),
    "windowed": lambda clock, n: CircuitBreaker(
        failure_threshold=1,
        recovery_timeout=5,
        half_open_max_calls=n,
        window=FailureRateWindow(size=10, min_calls=5),
        clock=clock,
    ),
}


def half_open(clock: FakeClock, config: str, n: int) -> CircuitBreaker:
    breaker = CONFIGS[config](clock, n)

    def boom() -> None:
        raise Boom

    with pytest.raises(Boom):
        breaker.execute(boom)
    clock.advance(5)
    return breaker


class Tally:
    """Counts admitted and rejected calls; waits until a total is reached."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.inside = 0
        self.peak = 0
        self.admitted = 0
        self.rejected = 0

    def enter(self) -> None:
        with self.cond:
            self.admitted += 1
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            self.cond.notify_all()

    def leave(self) -> None:
        with self.cond:
            self.inside -= 1

    def reject(self) -> None:
        with self.cond:
            self.rejected += 1
            self.cond.notify_all()

    def wait_total(self, total: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.admitted + self.rejected >= total, WAIT), (
                f"only {self.admitted} admitted + {self.rejected} rejected of {total}"
            )


def run_threads(count: int, target: Callable[[], None]) -> list[threading.Thread]:
    threads = [threading.Thread(target=target, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()


@pytest.mark.parametrize(("config", "n"), [("consecutive", 1), ("consecutive", 3), ("windowed", 2)])
def test_64_threads_on_a_half_open_breaker_admit_exactly_n_trials(
    clock: FakeClock, config: str, n: int
) -> None:
    breaker = half_open(clock, config, n)
    tally = Tally()
    start = threading.Barrier(64)
    release = threading.Event()

    @breaker
    def trial() -> None:
        tally.enter()
        try:
            assert release.wait(WAIT)
        finally:
            tally.leave()

    def worker() -> None:
        start.wait(WAIT)
        try:
            trial()
        except CircuitBreakerError:
            tally.reject()

    threads = run_threads(64, worker)
    tally.wait_total(64)
    assert tally.admitted == n
    assert tally.peak == n
    assert tally.rejected == 64 - n
    assert breaker.trials_in_flight == n
    release.set()
    join(threads)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("config", ["consecutive", "windowed"])
def test_interrupted_thread_trials_give_permits_back(clock: FakeClock, config: str) -> None:
    breaker = half_open(clock, config, 2)
    tally = Tally()
    start = threading.Barrier(64)
    release = threading.Event()

    def trial() -> None:
        tally.enter()
        try:
            assert release.wait(WAIT)
        finally:
            tally.leave()
        raise KeyboardInterrupt  # interrupted: neither success nor failure

    def worker() -> None:
        start.wait(WAIT)
        try:
            breaker.execute(trial)
        except CircuitBreakerError:
            tally.reject()
        except KeyboardInterrupt:
            pass

    threads = run_threads(64, worker)
    tally.wait_total(64)
    assert tally.admitted == 2
    release.set()
    join(threads)
    assert breaker.trials_in_flight == 0
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.execute(lambda: None)
    breaker.execute(lambda: None)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.anyio
@pytest.mark.parametrize(("config", "n"), [("consecutive", 1), ("consecutive", 3), ("windowed", 2)])
async def test_64_tasks_on_a_half_open_breaker_admit_exactly_n_and_cancel_gives_back(
    clock: FakeClock, config: str, n: int
) -> None:
    breaker = half_open(clock, config, n)
    release = asyncio.Event()
    counts = {"inside": 0, "admitted": 0, "rejected": 0}

    @breaker
    async def trial() -> None:
        counts["admitted"] += 1
        counts["inside"] += 1
        try:
            await release.wait()
        finally:
            counts["inside"] -= 1

    async def worker() -> None:
        try:
            await trial()
        except CircuitBreakerError:
            counts["rejected"] += 1

    async def wave() -> list[asyncio.Task[None]]:
        for key in counts:
            counts[key] = 0
        tasks = [asyncio.create_task(worker()) for _ in range(64)]
        for _ in range(1000):
            if counts["admitted"] + counts["rejected"] == 64:
                break
            await asyncio.sleep(0)
        assert counts == {"inside": n, "admitted": n, "rejected": 64 - n}
        assert breaker.trials_in_flight == n
        return tasks

    # First wave: the trials are cancelled, which must hand every permit back.
    tasks = await wave()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert breaker.trials_in_flight == 0
    assert breaker.state is BreakerState.HALF_OPEN

    # Second wave: exactly n again, and their success closes the breaker.
    tasks = await wave()
    release.set()
    await asyncio.gather(*tasks)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize("config", ["consecutive", "windowed"])
def test_closed_breaker_does_not_serialise_threads(clock: FakeClock, config: str) -> None:
    breaker = CONFIGS[config](clock, 1)
    threads_n = 32
    tally = Tally()
    # Every call waits inside the breaker until all the others are inside too: a breaker
    # that held a lock around the call would break this barrier instead of passing it.
    inside_together = threading.Barrier(threads_n)

    @breaker
    def call() -> None:
        tally.enter()
        try:
            inside_together.wait(WAIT)
        finally:
            tally.leave()

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            call()
        except BaseException as exc:
            errors.append(exc)

    join(run_threads(threads_n, worker))
    assert errors == []
    assert tally.peak == threads_n
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.anyio
@pytest.mark.parametrize("config", ["consecutive", "windowed"])
async def test_closed_breaker_does_not_serialise_tasks(clock: FakeClock, config: str) -> None:
    breaker = CONFIGS[config](clock, 1)
    state: dict[str, Any] = {"inside": 0, "peak": 0}
    everyone_in = asyncio.Event()

    @breaker
    async def call() -> None:
        state["inside"] += 1
        state["peak"] = max(state["peak"], state["inside"])
        if state["inside"] == 64:
            everyone_in.set()
        await asyncio.wait_for(everyone_in.wait(), WAIT)
        state["inside"] -= 1

    await asyncio.gather(*(call() for _ in range(64)))
    assert state["peak"] == 64


def test_64_threads_hammering_closed_breaker_with_failures_keep_it_consistent(
    clock: FakeClock,
) -> None:
    # Failures and successes race; whatever the order, the breaker ends in a legal state
    # and its bookkeeping (trial permits) never goes negative.
    breaker = CircuitBreaker(
        failure_threshold=3, recovery_timeout=0, half_open_max_calls=2, clock=clock
    )
    start = threading.Barrier(64)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        start.wait(WAIT)
        for j in range(200):
            try:
                if (i + j) % 3 == 0:
                    breaker.execute(boom)
                else:
                    breaker.execute(int)
            except (Boom, CircuitBreakerError):
                pass
            except BaseException as exc:
                errors.append(exc)
            if not 0 <= breaker.trials_in_flight <= 2:
                errors.append(AssertionError(breaker.trials_in_flight))

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(64)]
    for thread in threads:
        thread.start()
    join(threads)
    assert errors == []
    assert breaker.trials_in_flight == 0
    assert breaker.state in set(BreakerState)
