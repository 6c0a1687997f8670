"""The article compares statuses with its own words: ``check_service(name) == "HEALTHY"``."""

from __future__ import annotations

import pytest

import selfheal
from selfheal import HealthStatus
from selfheal.testing import FakeClock


def test_statuses_equal_the_articles_words_and_keep_their_own() -> None:
    assert HealthStatus.PASS == "HEALTHY"
    assert HealthStatus.PASS == "pass"
    assert HealthStatus.FAIL == "UNHEALTHY"
    assert HealthStatus.WARN == "UNHEALTHY"
    assert HealthStatus.UNKNOWN == "UNKNOWN"
    assert HealthStatus.PASS != "UNHEALTHY"
    assert HealthStatus.FAIL != "HEALTHY"
    assert HealthStatus.WARN != "HEALTHY"
    assert str(HealthStatus.PASS) == "pass"
    assert {HealthStatus.FAIL: "x"}["fail"] == "x"


@pytest.mark.anyio
async def test_a_feature_check_written_from_the_article_follows_the_monitor() -> None:
    clock = FakeClock()
    monitor = selfheal.HealthMonitor(clock=clock)
    healthy = {"recommendation_service": True}

    def recommendation_service() -> None:
        if not healthy["recommendation_service"]:
            raise ConnectionError("recommendation service refused")

    monitor.register("recommendation_service", recommendation_service, interval=30)
    features = selfheal.FeatureManager(clock=clock, ttl=0)
    features.register(
        "recommendations",
        lambda: monitor.check_service("recommendation_service") == "HEALTHY",
        fallback_func=lambda: ["popular"],
    )

    await monitor.check_now("recommendation_service")
    assert features.use_feature("recommendations", lambda: ["personal"]) == ["personal"]

    healthy["recommendation_service"] = False
    await monitor.check_now("recommendation_service")
    assert features.use_feature("recommendations", lambda: ["personal"]) == ["popular"]
