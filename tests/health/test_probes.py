"""Probes never say "pass" when nothing says so: startup gates, overdue results, exclusions."""

from __future__ import annotations

import httpx
import pytest

from health_helpers import BlockingCheck, CountingCheck, until
from selfheal.health import HealthMonitor, HealthStatus
from selfheal.testing import FakeClock
from selfheal.web import health_app

PASS, WARN, FAIL = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL


@pytest.mark.anyio
async def test_excluding_the_one_check_asked_for_does_not_pass(clock: FakeClock) -> None:
    # /readyz/db?exclude=db answered 200 "pass" with no check at all, while db failed.
    monitor = HealthMonitor(clock=clock)
    db = CountingCheck()
    db.fail = "connection refused"
    monitor.register("db", db, interval=10)
    await monitor.check_now("db")
    assert monitor.probe("readyz", only="db", exclude=["db"]).status == FAIL
    app = health_app(monitor, manage_monitor=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/readyz/db?exclude=db")
    assert response.status_code == 503
    assert response.json()["status"] == "fail"


@pytest.mark.anyio
async def test_a_non_critical_startup_check_gates_readiness_until_it_passes(
    clock: FakeClock,
) -> None:
    # A startup check gates readiness until it passes once (documented); a non-critical one
    # counted as only "degraded", so the service was ready before it had started.
    monitor = HealthMonitor(clock=clock)
    warmup = CountingCheck()
    warmup.fail = "cache still warming"
    monitor.register("warmup", warmup, interval=5, critical=False, kind="startup")
    assert monitor.probe("readyz").status == FAIL  # no result yet
    await monitor.check_now("warmup")
    assert monitor.probe("readyz").status == FAIL  # failed, not started
    assert monitor.probe("livez").status == PASS
    warmup.fail = None
    await monitor.check_now("warmup")
    assert monitor.probe("readyz").status == PASS


@pytest.mark.anyio
async def test_no_first_result_within_max_age_of_starting_counts_as_failing(
    clock: FakeClock,
) -> None:
    # A liveness check whose loop never delivers a first result (its loop is blocked or
    # died) was "unknown" for ever, which /livez counts as alive: it never failed.
    monitor = HealthMonitor(clock=clock)
    monitor.register("loop", CountingCheck(), interval=10, timeout=1, jitter=0, kind="liveness")
    assert monitor.probe("livez").status == PASS  # never started: nothing to expect yet
    await monitor.start()
    await monitor.stop()  # the loop is gone before it produced a result
    max_age = monitor.options("loop").max_age
    clock.advance(max_age)
    assert monitor.probe("livez").status == PASS  # just started: not dead yet
    clock.advance(0.5)
    report = monitor.report("loop")
    assert report.stale
    assert report.status == FAIL
    assert monitor.probe("livez").status == FAIL
    app = health_app(monitor, manage_monitor=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        response = await c.get("/livez?verbose")
    assert response.status_code == 503
    assert "[-]loop failed: no result" in response.text


@pytest.mark.anyio
async def test_a_cached_answer_is_not_reused_past_the_first_results_deadline(
    clock: FakeClock,
) -> None:
    monitor = HealthMonitor(clock=clock)
    hung = BlockingCheck()
    monitor.register("loop", hung, interval=10, timeout=1, jitter=0, kind="liveness")
    app = health_app(monitor, manage_monitor=False)
    await monitor.start()
    try:
        await until(hung.entered.is_set)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/livez")).status_code == 200
            await monitor.stop()  # the loop dies before its first result
            clock.advance(monitor.options("loop").max_age + 1)
            assert (await c.get("/livez")).status_code == 503
    finally:
        hung.gate.set()
        await monitor.stop()


@pytest.mark.anyio
async def test_the_startup_gate_shows_in_the_json_and_verbose_forms(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    warmup = CountingCheck()
    warmup.fail = "cache still warming"
    monitor.register("warmup", warmup, interval=5, critical=False, kind="startup")
    await monitor.check_now("warmup")
    app = health_app(monitor, manage_monitor=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        body = (await c.get("/readyz")).json()
        text = (await c.get("/readyz?verbose")).text
    assert body["status"] == "fail"
    assert body["checks"]["warmup:responseTime"][0]["status"] == "fail"
    assert "[-]warmup failed" in text


@pytest.mark.anyio
async def test_node_memory_pressure_does_not_fail_the_liveness_memory_check(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # examples/fastapi_app.py registered memory_check(max_percent=95) as liveness: pressure
    # on the node's memory (shared by every pod) would have restarted every pod on it. It
    # now only watches this process's RSS there, and the node's memory degrades readiness.
    import psutil

    from selfheal.health.checks import memory_check

    class Full:
        percent = 99.0

    monkeypatch.setattr(psutil, "virtual_memory", Full)
    monitor = HealthMonitor(clock=clock)
    monitor.register("node-memory", memory_check(max_percent=95), interval=30, critical=False)
    monitor.register(
        "memory",
        memory_check(max_percent=100, max_rss_bytes=1 << 40),
        interval=30,
        kind="liveness",
    )
    for name in monitor.names():
        await monitor.check_now(name)
    assert monitor.probe("livez").status == PASS
    assert monitor.probe("readyz").status == WARN
