"""The article's closing example, `SelfHealingApp` with its setup methods, moved onto selfheal.

The article subclasses nothing and calls undefined helpers; here its setup methods are kept as
written, on our names, against real services on 127.0.0.1: a TCP "database", HTTP payment and
recommendation services, a cache that is down. The synthetic tester and chaos monkey are the
article's shapes (`app_helpers`), since those packages are built elsewhere.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from app_helpers import RecordingMonkey, RecordingTester, http_service, tcp_service
from health_helpers import until
from selfheal import Event, HealthStatus
from selfheal.app import SelfHealingApp
from selfheal.health.checks import http_check, tcp_check
from selfheal.testing import EventRecorder, FakeClock

pytestmark = pytest.mark.anyio

POPULAR = ["laptop", "phone"]


def get_popular_products(user_id: int) -> list[str]:
    return POPULAR


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ShopApp(SelfHealingApp):
    """The article's `SelfHealingApp` setup methods, as written there, on our API."""

    def __init__(self, app_name: str, urls: dict[str, Any], **kw: Any) -> None:
        super().__init__(app_name, **kw)
        self.urls = urls
        self.recovered: list[Event] = []

    def setup_health_checks(self) -> None:
        db_host, db_port = self.urls["database"]
        self.health_monitor.register(
            "database", tcp_check(db_host, db_port), interval=30, critical=True
        )
        self.health_monitor.register(
            "cache", tcp_check("127.0.0.1", self.urls["cache"]), interval=60, critical=False
        )
        self.health_monitor.register(
            "payment_api", http_check(self.urls["payment"]), interval=120, critical=True
        )
        self.health_monitor.register(
            "recommendation_service", http_check(self.urls["recs"]), interval=30
        )

    def setup_feature_flags(self) -> None:
        # The article's lambda compared check_service(...) with "HEALTHY"; the manager
        # follows the monitor's status of that check instead, without running it per call.
        self.feature_manager.register(
            "recommendations",
            self.health_monitor,
            fallback_func=get_popular_products,
            health_name="recommendation_service",
        )

    def setup_recovery_handlers(self) -> None:
        self.recovery_manager.register_recovery("system.database.failure", self.recovered.append)

    def setup_synthetic_tests(self) -> None:
        self.synthetic_tester.register_scenario("user_login", lambda url: None, frequency=600)
        self.synthetic_tester.register_scenario("product_search", lambda url: None, frequency=300)

    def setup_chaos_experiments(self) -> None:
        if os.environ.get("SELFHEAL_ENV") != "production":
            self.chaos_monkey.register_target("database", lambda: None, lambda: None, 7200)
            self.chaos_monkey.register_target("cache", lambda: None, lambda: None, 3600)


@pytest.fixture
def services() -> Iterator[dict[str, Any]]:
    with http_service() as (payment, _), http_service() as (recs, recs_down):
        yield {"payment": payment, "recs": recs, "recs_down": recs_down, "cache": closed_port()}


async def test_the_articles_app_checks_degrades_recovers_and_shuts_down_in_order(
    services: dict[str, Any],
) -> None:
    db = await tcp_service()
    host, port = db.sockets[0].getsockname()[:2]
    log: list[str] = []
    app = ShopApp(
        "shop",
        {**services, "database": (host, port)},
        clock=FakeClock(),
        environ={"APP_URL": "http://127.0.0.1:8000", "ENABLE_CHAOS": "true"},
    )
    draining = lambda: app.health_monitor.draining  # noqa: E731 - what stop() saw
    app.synthetic_tester = RecordingTester(log, app.app_url, draining)
    app.chaos_monkey = RecordingMonkey(log, draining, enabled=app.chaos_enabled)
    app.setup_health_checks()
    app.setup_feature_flags()
    app.setup_recovery_handlers()
    app.setup_synthetic_tests()
    app.setup_chaos_experiments()
    recorder = EventRecorder(app.event_bus)
    try:
        async with app:
            assert app.running
            assert log == ["synthetic.start", "chaos.start"]
            monitor = app.health_monitor
            await until(lambda: all(r.status != HealthStatus.UNKNOWN for r in monitor.reports()))
            assert monitor.check_all() == {
                "database": HealthStatus.PASS,
                "cache": HealthStatus.WARN,  # not critical: degraded, not failed
                "payment_api": HealthStatus.PASS,
                "recommendation_service": HealthStatus.PASS,
            }
            assert monitor.is_healthy()
            features = app.feature_manager
            assert features.use_feature("recommendations", lambda u: ["for", u], 7) == ["for", 7]

            services["recs_down"]()
            assert await monitor.check_now("recommendation_service") == HealthStatus.FAIL
            assert features.use_feature("recommendations", lambda u: ["for", u], 7) == POPULAR
            assert not monitor.is_healthy()
            await recorder.wait("feature.recommendations.degraded")

            app.event_bus.publish(
                Event("system.database.failure", "monitor", "critical", 0.0, {"host": host})
            )
            done = await recorder.wait("system.database.failure.recovered")
            assert done.data["original_event"] == {"host": host}
            assert [e.data for e in app.recovered] == [{"host": host}]
    finally:
        db.close()
    assert not app.running
    # Readiness drained before anything stopped; the monkey (and its faults) went first.
    assert log == ["synthetic.start", "chaos.start", "chaos.stop", "synthetic.stop"]
    assert app.chaos_monkey.at_stop is True  # type: ignore[attr-defined]
    assert app.synthetic_tester.at_stop is True  # type: ignore[attr-defined]
    tester = app.synthetic_tester
    assert isinstance(tester, RecordingTester)
    assert tester.app_url == "http://127.0.0.1:8000"
    assert {n: f for n, (_, f) in tester.scenarios.items()} == {
        "user_login": 600,
        "product_search": 300,
    }
    monkey = app.chaos_monkey
    assert isinstance(monkey, RecordingMonkey)
    assert monkey.enabled
    assert monkey.targets == {"database": 7200, "cache": 3600}
