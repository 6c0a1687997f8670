"""What a check's results mean: thresholds, criticality, staleness, kinds, events, observers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from health_helpers import CountingCheck, event_types, ran, until
from selfheal.events import Event
from selfheal.health import CheckKind, HealthMonitor, HealthSource, HealthStatus, Probe
from selfheal.interfaces import Component
from selfheal.testing import FakeClock

PASS, WARN, FAIL, UNKNOWN = (
    HealthStatus.PASS,
    HealthStatus.WARN,
    HealthStatus.FAIL,
    HealthStatus.UNKNOWN,
)


@pytest.mark.anyio
async def test_failure_and_success_thresholds(
    clock: FakeClock, monitor: HealthMonitor, events: list[Event]
) -> None:
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
        assert event_types(events) == ["health.db.failed", "health.db.recovered"]
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_failing_non_critical_check_degrades_and_still_serves(
    clock: FakeClock, monitor: HealthMonitor, events: list[Event]
) -> None:
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
        assert event_types(events) == ["health.cache.degraded"]
        assert events[0].severity == "warning"
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_result_too_old_counts_as_failing(clock: FakeClock, monitor: HealthMonitor) -> None:
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
async def test_liveness_only_asks_liveness_checks(clock: FakeClock, monitor: HealthMonitor) -> None:
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


def test_unknown_before_the_first_result_is_alive_but_not_ready(
    clock: FakeClock, monitor: HealthMonitor
) -> None:
    monitor.register("db", CountingCheck(), interval=5)
    monitor.register("warmup", CountingCheck(), interval=5, kind=CheckKind.LIVENESS)
    monitor.register("extra", CountingCheck(), interval=5, critical=False)
    assert monitor.status("db") == UNKNOWN
    assert monitor.probe("livez").status == PASS
    assert monitor.probe("readyz").status == FAIL
    assert monitor.probe("readyz", exclude=["db", "warmup"]).status == WARN


@pytest.mark.anyio
async def test_startup_check_runs_until_it_passes_once(
    clock: FakeClock, monitor: HealthMonitor
) -> None:
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
        assert monitor._scheduler.job("migrations").finished
        await until(lambda: clock.pending_sleepers == 0)  # its loop ended, not waiting again
        clock.advance(1000)
        for _ in range(20):
            await asyncio.sleep(0)
        assert migrations.calls == 2
        assert monitor.status("migrations") == PASS  # never stale once started
    finally:
        await monitor.stop()


@pytest.mark.anyio
async def test_monitor_is_a_health_source_and_check_now_refreshes(
    clock: FakeClock, monitor: HealthMonitor
) -> None:
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
async def test_outcomes_false_mapping_and_secrets(
    clock: FakeClock, monitor: HealthMonitor, events: list[Event]
) -> None:

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
async def test_no_event_for_first_pass_and_one_per_change(
    clock: FakeClock, monitor: HealthMonitor, events: list[Event]
) -> None:
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
    assert event_types(events) == ["health.db.failed", "health.db.recovered"]
    assert events[0].subject == "db"
    assert events[0].timestamp == clock.time()


@pytest.mark.anyio
async def test_observer_errors_are_isolated(clock: FakeClock, monitor: HealthMonitor) -> None:
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
