"""The article's health-check example, moved onto selfheal's API.

The article registers three sync checks (database, redis_cache, payment_api) with
``HealthMonitor.register(name, check, interval=...)``, calls ``start_monitoring()`` and serves
``check_all()`` from a Flask ``/health`` route with 200/503 from ``is_healthy()``. The same
calls work here; the route becomes `health_wsgi_app` (mountable in Flask) and its statuses
are the IETF ones (``"HEALTHY"`` is `HealthStatus.PASS`, ``"UNHEALTHY"`` is FAIL).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import psycopg
import pytest
import redis

from health_helpers import wait_until
from selfheal.health import HealthMonitor, HealthStatus
from selfheal.web import health_wsgi_app

PG = "postgresql://postgres@127.0.0.1:5432/test"


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def payment_api() -> Iterator[dict[str, Any]]:
    """A stand-in payment API on loopback; `state["hang"]` makes it stop answering."""
    state: dict[str, Any] = {"hang": False, "release": threading.Event()}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if state["hang"]:
            state["release"].wait(10)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    server.daemon_threads = True  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_port}/status"
    yield state
    state["release"].set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def make_checks(payment_url: str) -> dict[str, Any]:
    # The article's check functions: plain sync functions that raise when unhealthy.
    def check_database_connection() -> None:
        with psycopg.connect(PG, connect_timeout=2) as conn:
            conn.execute("SELECT 1")

    def check_redis_connection() -> None:
        client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()

    def check_payment_api() -> None:
        httpx.get(payment_url, timeout=5).raise_for_status()

    return {
        "database": check_database_connection,
        "redis_cache": check_redis_connection,
        "payment_api": check_payment_api,
    }


def test_article_example_on_our_api(payment_api: dict[str, Any]) -> None:
    checks = make_checks(payment_api["url"])
    health = HealthMonitor()
    # Register health checks (the article's lines, unchanged)
    health.register("database", checks["database"], interval=30)
    health.register("redis_cache", checks["redis_cache"], interval=60)
    health.register("payment_api", checks["payment_api"], interval=120)
    # Start background monitoring
    health.start_monitoring()
    try:
        wait_until(lambda: all(r.result is not None for r in health.reports()))
        assert health.check_all() == {
            "database": HealthStatus.PASS,
            "redis_cache": HealthStatus.PASS,
            "payment_api": HealthStatus.PASS,
        }
        assert health.is_healthy()
        # The Flask /health route, as a WSGI app (mount it in Flask with DispatcherMiddleware).
        app = health_wsgi_app(health)
        server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            response = httpx.get(f"http://127.0.0.1:{server.server_port}/healthz", timeout=5)
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
        assert response.status_code == 200
        doc = response.json()
        assert doc["status"] == "pass"
        assert set(doc["checks"]) == {
            "database:responseTime",
            "redis_cache:responseTime",
            "payment_api:responseTime",
        }
    finally:
        health.stop_monitoring()


def test_article_self_healing_app_setup_with_a_non_critical_cache(
    payment_api: dict[str, Any],
) -> None:
    checks = make_checks(payment_api["url"])

    def check_cache_connection() -> None:
        raise ConnectionError("cache unreachable")

    health = HealthMonitor()
    health.register("database", checks["database"], interval=30, critical=True)
    health.register("cache", check_cache_connection, interval=60, critical=False)
    health.register("payment_api", checks["payment_api"], interval=120, critical=True)
    # Without start_monitoring, the article's semantics: a call runs the due checks.
    assert health.check_service("cache") == HealthStatus.WARN  # degraded, not down
    assert health.is_healthy()  # the article ignored non-critical failures too
    # The FeatureManager lambda: `check_service(...) == "HEALTHY"` becomes:
    use_recommendations = health.check_service("database") == HealthStatus.PASS
    assert use_recommendations


def test_a_hanging_dependency_no_longer_hangs_the_health_route(
    payment_api: dict[str, Any],
) -> None:
    checks = make_checks(payment_api["url"])
    payment_api["hang"] = True
    health = HealthMonitor()
    health.register("database", checks["database"], interval=30)
    health.register("payment_api", checks["payment_api"], interval=120, timeout=0.2)
    started = time.monotonic()
    statuses = health.check_all()  # the article's version waited for the API forever
    assert time.monotonic() - started < 3
    assert statuses == {"database": HealthStatus.PASS, "payment_api": HealthStatus.FAIL}
    assert not health.is_healthy()
    assert health.report("payment_api").result.output == "timed out after 0.2 s"  # type: ignore[union-attr]
