"""HealthMonitor driven by FakeClock: intervals, timeouts, thresholds, staleness, events."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
from typing import Any

import pytest

from health_helpers import BlockingCheck, CountingCheck, until, wait_until
from selfheal.events import Event, EventBus
from selfheal.health import (
    CheckKind,
    HealthMonitor,
    HealthSource,
    HealthStatus,
    Probe,
)
from selfheal.interfaces import Component
from selfheal.testing import FakeClock

PASS, WARN, FAIL, UNKNOWN = (
    HealthStatus.PASS,
    HealthStatus.WARN,
    HealthStatus.FAIL,
    HealthStatus.UNKNOWN,
)


def make(clock: FakeClock) -> tuple[HealthMonitor, list[Event]]:
    bus = EventBus(clock=clock)
    events: list[Event] = []
    bus.subscribe("health.*", events.append)
    return HealthMonitor(clock=clock, bus=bus), events


async def ran(check: CountingCheck, monitor: HealthMonitor, name: str, calls: int) -> None:
    """Wait until `check` was called `calls` times and its result is recorded."""
    await until(lambda: check.calls >= calls and monitor.report(name).result is not None)
    await until(lambda: monitor._entries[name].pending is None)


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


@pytest.mark.anyio
async def test_checks_run_at_start_and_then_every_interval(clock: FakeClock) -> None:
    monitor, _ = make(clock)
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
) -> None:
    monitor, events = make(clock)
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
        assert types(events) == ["health.payments.failed"]
        assert events[0].severity == "error"
        assert events[0].data["output"] == "timed out after 2 s"
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_sync_check_runs_in_a_thread_and_a_hung_one_is_not_started_again(
    clock: FakeClock,
) -> None:
    monitor, _ = make(clock)
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
        await until(lambda: monitor._entries["legacy"].busy_since is None)
        await clock.wait_for_sleepers(1)
        clock.advance(5)
        await until(lambda: monitor.status("legacy") == PASS)
        assert blocked.calls == 2
    finally:
        blocked.gate.set()
        await monitor.stop()


@pytest.mark.anyio
async def test_failure_and_success_thresholds(clock: FakeClock) -> None:
    monitor, events = make(clock)
    check = CountingCheck()
    monitor.register("db", check, interval=1, jitter=0, failure_threshold=3, success_threshold=2)
    await monitor.start()
    try:
        await ran(check, monitor, "db", 1)
        check.fail = "connection refused"
        for n, expected in ((2, PASS), (3, PASS), (4, FAIL)):
            clock.advance(1)
            await ran(check, monitor, "db", n)
            assert monitor.status("db") == expected, n
        assert monitor.report("db").result.consecutive_failures == 3  # type: ignore[union-attr]
        check.fail = None
        clock.advance(1)
        await ran(check, monitor, "db", 5)
        assert monitor.status("db") == FAIL
        clock.advance(1)
        await ran(check, monitor, "db", 6)
        assert monitor.status("db") == PASS
        assert types(events) == ["health.db.failed", "health.db.recovered"]
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_failing_non_critical_check_degrades_and_still_serves(clock: FakeClock) -> None:
    monitor, events = make(clock)
    cache = CountingCheck()
    cache.fail = "timeout talking to cache"
    monitor.register("cache", cache, interval=5, critical=False, jitter=0)
    monitor.register("db", CountingCheck(), interval=5, jitter=0)
    await monitor.start()
    try:
        await until(lambda: all(r.result is not None for r in monitor.reports()))
        assert monitor.status("cache") == WARN
        assert monitor.probe(Probe.READYZ).status == WARN
        assert monitor.is_healthy()
        assert types(events) == ["health.cache.degraded"]
        assert events[0].severity == "warning"
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_result_too_old_counts_as_failing(clock: FakeClock) -> None:
    monitor, _ = make(clock)
    monitor.register("db", CountingCheck(), interval=10, timeout=1, jitter=0)
    monitor.register("cache", CountingCheck(), interval=10, timeout=1, jitter=0, critical=False)
    assert monitor.options("db").max_age == 21  # two intervals plus the timeout
    await monitor.start()
    await until(lambda: all(r.result is not None for r in monitor.reports()))
    await monitor.stop()  # the background loop dies: results stop coming
    clock.advance(21)
    assert monitor.status("db") == PASS
    assert monitor.report("db").age == 21
    clock.advance(0.5)
    report = monitor.report("db")
    assert report.stale
    assert report.status == FAIL
    assert monitor.status("cache") == WARN
    assert monitor.probe(Probe.READYZ).status == FAIL


@pytest.mark.anyio
async def test_liveness_only_asks_liveness_checks(clock: FakeClock) -> None:
    monitor, _ = make(clock)
    db = CountingCheck()
    db.fail = "down"
    monitor.register("db", db, interval=5, jitter=0)  # readiness by default
    monitor.register("loop", CountingCheck(), interval=5, jitter=0, kind="liveness")
    await monitor.start()
    try:
        await until(lambda: all(r.result is not None for r in monitor.reports()))
        live = monitor.probe("livez")
        assert [c.name for c in live.checks] == ["loop"]
        assert live.status == PASS
        assert monitor.probe("readyz").status == FAIL
        assert [c.name for c in monitor.probe("healthz").checks] == ["db", "loop"]
        assert monitor.probe("readyz", exclude=["db"]).status == PASS
        assert monitor.probe("readyz", exclude=["db"]).excluded == ("db",)
    finally:
        await monitor.stop()


def test_unknown_before_the_first_result_is_alive_but_not_ready(clock: FakeClock) -> None:
    monitor, _ = make(clock)
    monitor.register("db", CountingCheck(), interval=5)
    monitor.register("warmup", CountingCheck(), interval=5, kind=CheckKind.LIVENESS)
    monitor.register("extra", CountingCheck(), interval=5, critical=False)
    assert monitor.status("db") == UNKNOWN
    assert monitor.probe("livez").status == PASS
    assert monitor.probe("readyz").status == FAIL
    assert monitor.probe("readyz", exclude=["db", "warmup"]).status == WARN


@pytest.mark.anyio
async def test_startup_check_runs_until_it_passes_once(clock: FakeClock) -> None:
    monitor, _ = make(clock)
    migrations = CountingCheck()
    migrations.fail = "migrations pending"
    monitor.register("migrations", migrations, interval=2, timeout=1, jitter=0, kind="startup")
    await monitor.start()
    try:
        await ran(migrations, monitor, "migrations", 1)
        assert monitor.probe("readyz").status == FAIL
        migrations.fail = None
        clock.advance(2)
        await ran(migrations, monitor, "migrations", 2)
        assert monitor.probe("readyz").status == PASS
        task = monitor._entries["migrations"].task
        assert task is not None
        await until(task.done)
        clock.advance(1000)
        assert migrations.calls == 2
        assert monitor.status("migrations") == PASS  # never stale once started
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_one_run_in_flight_per_check(clock: FakeClock) -> None:
    monitor, _ = make(clock)
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
async def test_monitor_is_a_health_source_and_check_now_refreshes(clock: FakeClock) -> None:
    monitor, _ = make(clock)
    check = CountingCheck()
    monitor.register("db", check, interval=60)
    assert isinstance(monitor, HealthSource)
    assert isinstance(monitor, Component)
    assert await monitor.check_now("db") == PASS
    check.fail = "gone"
    assert await monitor.check_now("db") == FAIL
    assert monitor.status("db") == FAIL
    assert check.calls == 2
    with pytest.raises(KeyError, match="no health check named 'nope'"):
        monitor.status("nope")


@pytest.mark.anyio
async def test_outcomes_false_mapping_and_secrets(clock: FakeClock) -> None:
    monitor, events = make(clock)

    def returns_false() -> bool:
        return False

    async def leaks() -> None:
        raise ConnectionError("cannot reach postgresql://app:hunter2@db:5432/app token=abc123")

    async def observes() -> dict[str, Any]:
        return {"observedValue": 3, "observedUnit": "ms", "password": "pw", "dsn": "redis://:x@h"}

    monitor.register("flag", returns_false)
    monitor.register("db", leaks)
    monitor.register("obs", observes)
    for name in ("flag", "db", "obs"):
        await monitor.check_now(name)
    assert monitor.report("flag").result.output == "check returned False"  # type: ignore[union-attr]
    output = monitor.report("db").result.output  # type: ignore[union-attr]
    assert output == "ConnectionError: cannot reach postgresql://app:***@db:5432/app token=***"
    assert "hunter2" not in repr(events)
    assert "abc123" not in repr(events)
    observed = monitor.report("obs").result.observed  # type: ignore[union-attr]
    assert observed == {
        "observedValue": 3,
        "observedUnit": "ms",
        "password": "***",
        "dsn": "redis://:***@h",
    }


@pytest.mark.anyio
async def test_no_event_for_first_pass_and_one_per_change(clock: FakeClock) -> None:
    monitor, events = make(clock)
    check = CountingCheck()
    monitor.register("db", check)
    await monitor.check_now("db")
    await monitor.check_now("db")
    assert events == []
    check.fail = "x"
    await monitor.check_now("db")
    await monitor.check_now("db")
    check.fail = None
    await monitor.check_now("db")
    assert types(events) == ["health.db.failed", "health.db.recovered"]
    assert events[0].subject == "db"
    assert events[0].timestamp == clock.time()


@pytest.mark.anyio
async def test_checks_registered_after_start_run_and_unregistered_stop(clock: FakeClock) -> None:
    monitor, _ = make(clock)
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


@pytest.mark.anyio
async def test_observer_errors_are_isolated(clock: FakeClock) -> None:
    monitor, _ = make(clock)
    seen: list[tuple[str, HealthStatus]] = []

    def broken(result: Any, before: HealthStatus) -> None:
        raise RuntimeError("observer bug")

    monitor.add_observer(broken)
    remove = monitor.add_observer(lambda result, before: seen.append((result.name, before)))
    monitor.register("db", CountingCheck())
    assert await monitor.check_now("db") == PASS
    remove()
    await monitor.check_now("db")
    assert seen == [("db", UNKNOWN)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a.b"}, "name must be"),
        ({"name": ""}, "name must be"),
        ({"check": 3}, "check must be a callable"),
        ({"interval": 0}, "interval must be a number of seconds > 0, got 0"),
        ({"interval": "5"}, "interval must be"),
        ({"timeout": -1}, "timeout must be"),
        ({"kind": "sometimes"}, "kind must be one of 'liveness', 'readiness', 'startup'"),
        ({"failure_threshold": 0}, "failure_threshold must be an integer >= 1"),
        ({"success_threshold": 1.5}, "success_threshold must be"),
        ({"jitter": 0.9}, "jitter must be a fraction from 0 to 0.5"),
        ({"max_age": 1, "interval": 10}, "max_age must be at least"),
    ],
)
def test_register_rejects_bad_arguments_naming_them(
    clock: FakeClock, kwargs: dict[str, Any], message: str
) -> None:
    monitor = HealthMonitor(clock=clock)
    args: dict[str, Any] = {"name": "db", "check": CountingCheck()} | kwargs
    with pytest.raises(ValueError, match=message):
        monitor.register(args.pop("name"), args.pop("check"), **args)


def test_duplicate_names_are_rejected(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    monitor.register("db", CountingCheck())
    with pytest.raises(ValueError, match="'db' is already registered"):
        monitor.register("db", CountingCheck())


def test_article_api_without_monitoring_runs_due_checks_only(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    calls: list[str] = []
    monitor.register("database", lambda: calls.append("db"), interval=30)
    assert monitor.check_service("database") == PASS
    assert monitor.check_service("database") == PASS
    assert calls == ["db"]  # within its interval: the cached result
    clock.advance(30)
    assert monitor.check_all() == {"database": PASS}
    assert calls == ["db", "db"]
    assert monitor.is_healthy()


def test_check_all_without_monitoring_runs_checks_concurrently(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    barrier = threading.Barrier(2, timeout=5)
    # Each check waits for the other: run one after the other, both would time out.
    monitor.register("a", barrier.wait, interval=5)
    monitor.register("b", barrier.wait, interval=5)
    assert monitor.check_all() == {"a": PASS, "b": PASS}


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
    monitor.start_monitoring()
    thread = monitor._thread
    assert thread is not None
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
async def test_draining_fails_readiness_not_liveness(clock: FakeClock) -> None:
    monitor, _ = make(clock)
    monitor.register("loop", CountingCheck(), kind="liveness")
    await monitor.check_now("loop")
    assert monitor.probe("readyz").status == PASS
    monitor.start_draining(10)
    assert monitor.draining
    assert not monitor.drained
    assert monitor.probe("readyz").status == FAIL
    assert monitor.probe("readyz").draining
    assert monitor.probe("livez").status == PASS
    assert not monitor.is_healthy()
    waiter = asyncio.ensure_future(monitor.wait_drained())
    await clock.wait_for_sleepers(1)
    clock.advance(10)
    await waiter
    assert monitor.drained


def test_sigterm_drains_then_delivers_the_signal_to_the_previous_handler() -> None:
    clock = FakeClock()  # its sleep() advances time at once: the drain is instant here
    monitor = HealthMonitor(clock=clock)
    delivered: list[int] = []
    draining_when_delivered: list[bool] = []

    def previous(signum: int, frame: object) -> None:
        delivered.append(signum)
        draining_when_delivered.append(monitor.draining)

    old = signal.signal(signal.SIGTERM, previous)
    try:
        restore = monitor.install_signal_handlers(30)
        assert signal.getsignal(signal.SIGTERM) is not previous
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: delivered == [signal.SIGTERM])
        assert draining_when_delivered == [True]
        assert clock.sleeps == [30]
        assert signal.getsignal(signal.SIGTERM) is previous
        restore()
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)


def test_signal_handlers_need_the_main_thread(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    errors: list[BaseException] = []

    def install() -> None:
        try:
            monitor.install_signal_handlers(1)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join(5)
    assert len(errors) == 1
    assert "main thread" in str(errors[0])
