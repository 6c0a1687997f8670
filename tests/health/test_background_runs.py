"""Checks run in the background: every interval with jitter, under a timeout, one at a time."""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import threading

import pytest

from health_helpers import BlockingCheck, CountingCheck, event_types, ran, until, wait_until
from selfheal.events import Event
from selfheal.health import HealthMonitor, HealthStatus
from selfheal.testing import FakeClock

PASS, FAIL, UNKNOWN = HealthStatus.PASS, HealthStatus.FAIL, HealthStatus.UNKNOWN


@pytest.mark.anyio
async def test_checks_run_at_start_and_then_every_interval(
    clock: FakeClock, monitor: HealthMonitor
) -> None:
    check = CountingCheck()
    monitor.register("db", check, interval=30, jitter=0)
    await monitor.start()
    try:
        await ran(check, monitor, "db", 1)
        assert monitor.status("db") == PASS
        clock.advance(29.9)
        await clock.wait_for_sleepers(1)
        assert check.calls == 1
        clock.advance(0.1)
        await ran(check, monitor, "db", 2)
        clock.advance(30)
        await ran(check, monitor, "db", 3)
        assert check.calls == 3
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_jitter_spreads_intervals_within_bounds(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock, rng=random.Random(7))
    check = CountingCheck()
    monitor.register("db", check, interval=10, jitter=0.2, timeout=1)
    await monitor.start()
    try:
        for n in range(1, 8):
            await ran(check, monitor, "db", n)
            await clock.wait_for_sleepers(1)
            clock.advance(12)  # beyond the longest jittered interval
    finally:
        await monitor.stop()
    waits = [s for s in clock.sleeps if s != 1]  # 1 s sleeps are the run timeouts
    assert len(waits) >= 6
    assert all(8 <= w <= 12 for w in waits)
    assert len(set(waits)) > 1


@pytest.mark.anyio
async def test_async_check_that_hangs_fails_at_its_timeout_without_blocking_others(
    clock: FakeClock,
    monitor: HealthMonitor,
    events: list[Event],
) -> None:
    hung, other = CountingCheck(), CountingCheck()
    hung.hang = True
    monitor.register("payments", hung, interval=10, timeout=2, jitter=0)
    monitor.register("cache", other, interval=1, jitter=0)
    await monitor.start()
    try:
        await ran(other, monitor, "cache", 1)
        await clock.wait_for_sleepers(2)
        assert monitor.status("payments") == UNKNOWN
        clock.advance(1)
        await ran(other, monitor, "cache", 2)  # the hung check does not hold it up
        clock.advance(1)
        await until(lambda: monitor.report("payments").result is not None)
        result = monitor.report("payments").result
        assert result is not None
        assert result.timed_out
        assert result.output == "timed out after 2 s"
        assert monitor.status("payments") == FAIL
        assert event_types(events) == ["health.payments.failed"]
        assert events[0].severity == "error"
        assert events[0].data["output"] == "timed out after 2 s"
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_sync_check_runs_in_a_thread_and_a_hung_one_is_not_started_again(
    clock: FakeClock,
    monitor: HealthMonitor,
) -> None:
    blocked = BlockingCheck()
    monitor.register("legacy", blocked, interval=5, timeout=1, jitter=0)
    await monitor.start()
    try:
        await until(blocked.entered.is_set)
        assert threading.current_thread().name != "selfheal-health-legacy"
        await clock.wait_for_sleepers(1)  # the run's timeout is armed
        clock.advance(1)
        await until(lambda: monitor.report("legacy").result is not None)
        assert monitor.report("legacy").result.timed_out  # type: ignore[union-attr]
        clock.advance(5)  # next tick: the thread is still stuck in the check
        await until(lambda: "hung" in monitor.report("legacy").result.output)  # type: ignore[union-attr]
        assert blocked.calls == 1
        blocked.gate.set()
        await until(lambda: not monitor._scheduler.job("legacy").running)
        await clock.wait_for_sleepers(1)
        clock.advance(5)
        await until(lambda: monitor.status("legacy") == PASS)
        assert blocked.calls == 2
    finally:
        blocked.gate.set()
        await monitor.stop()


@pytest.mark.anyio
async def test_one_run_in_flight_per_check(clock: FakeClock, monitor: HealthMonitor) -> None:
    check = CountingCheck()
    check.hang = True
    monitor.register("db", check, interval=60, timeout=5, jitter=0)
    await monitor.start()
    try:
        await until(lambda: check.calls == 1)
        # Callers asking meanwhile share the run in flight instead of starting more.
        waiters = [asyncio.ensure_future(monitor.check_now("db")) for _ in range(5)]
        await until(lambda: check.calls == 1 and clock.pending_sleepers >= 1)
        check.release.set()
        assert await asyncio.gather(*waiters) == [PASS] * 5
        assert check.calls == 1
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_checks_registered_after_start_run_and_unregistered_stop(
    clock: FakeClock, monitor: HealthMonitor
) -> None:
    await monitor.start()
    try:
        late = CountingCheck()
        monitor.register("late", late, interval=5, jitter=0)
        await ran(late, monitor, "late", 1)
        monitor.unregister("late")
        await until(lambda: clock.pending_sleepers == 0)
        clock.advance(100)
        assert late.calls == 1
        assert monitor.names() == []
    finally:
        await monitor.stop()


def test_start_monitoring_runs_checks_in_a_daemon_thread(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    threads: list[str] = []

    async def check() -> None:
        threads.append(threading.current_thread().name)

    monitor.register("db", check, interval=10, jitter=0)
    monitor.start_monitoring()
    try:
        monitor.start_monitoring()  # a second call does nothing
        wait_until(lambda: len(threads) == 1)
        # The interval sleep (10 s) must be the one pending, not the run's timeout timer
        # (5 s), which is also a sleeper until its cancellation has been processed.
        wait_until(lambda: 10.0 in clock.sleeps and clock.pending_sleepers == 1)
        clock.advance(10)  # from another thread: wakes the monitor's loop
        wait_until(lambda: len(threads) == 2)
        assert threads == ["selfheal-health"] * 2
        # While monitoring runs, the article's calls only read the cache.
        assert monitor.check_service("db") == PASS
        assert len(threads) == 2
    finally:
        monitor.stop_monitoring()
    assert not monitor.running
    monitor.stop_monitoring()


@pytest.mark.anyio
async def test_async_stop_ends_the_monitoring_thread(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    monitor.register("db", CountingCheck(), interval=10)
    before = set(threading.enumerate())
    monitor.start_monitoring()
    (thread,) = [t for t in set(threading.enumerate()) - before if t.name == "selfheal-health"]
    await monitor.stop()
    assert not monitor.running
    assert not thread.is_alive()


@pytest.mark.anyio
async def test_start_on_a_second_loop_is_refused(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    monitor.start_monitoring()
    try:
        with pytest.raises(RuntimeError, match="already running on another event loop"):
            await monitor.start()
    finally:
        monitor.stop_monitoring()


@pytest.mark.anyio
async def test_async_stop_of_the_monitoring_thread_needs_no_pool_worker() -> None:
    # stop() joined the monitoring thread through asyncio.to_thread: with the loop's shared
    # pool full of hung user code, stop() never ran and shutdown hung.
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(pool)
    release = threading.Event()
    blocker = loop.run_in_executor(None, release.wait, 10)
    monitor = HealthMonitor()
    monitor.register("ok", lambda: None, interval=10)
    monitor.start_monitoring()
    try:
        await asyncio.wait_for(monitor.stop(), 5)
        assert not monitor.running
    finally:
        release.set()
        await blocker
        pool.shutdown(wait=False)
        monitor.stop_monitoring()
