"""The article's calls without background monitoring: due checks run when asked, concurrently."""

from __future__ import annotations

import threading

from selfheal.health import HealthMonitor, HealthStatus
from selfheal.testing import FakeClock

PASS = HealthStatus.PASS


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
