"""The tester as a health source: statuses, suites, and readiness that a failing journey fails."""

from __future__ import annotations

import httpx
import pytest

from health_helpers import serving
from selfheal.errors import CheckError
from selfheal.health import HealthMonitor
from selfheal.interfaces import HealthSource, HealthStatus
from selfheal.synthetic import ScenarioStatus, SyntheticTester
from selfheal.testing import FakeClock
from selfheal.web import health_app

URL = "http://127.0.0.1:9"


class Journey:
    """An async scenario whose next attempts fail `fail` times."""

    def __init__(self) -> None:
        self.fail = 0

    async def __call__(self, base_url: str) -> None:
        if self.fail:
            self.fail -= 1
            raise CheckError("journey broken")


def two_journeys(clock: FakeClock) -> tuple[SyntheticTester, Journey, Journey]:
    tester = SyntheticTester(URL, clock=clock)
    checkout, recommendations = Journey(), Journey()
    tester.register_scenario("checkout", checkout, frequency=60, retries=1, retry_delay=0)
    tester.register_scenario("recommendations", recommendations, frequency=60, critical=False)
    return tester, checkout, recommendations


@pytest.mark.anyio
async def test_statuses_keep_degraded_apart_from_failing(clock: FakeClock) -> None:
    tester, checkout, recommendations = two_journeys(clock)
    assert isinstance(tester, HealthSource)
    assert tester.status("checkout") == HealthStatus.UNKNOWN

    assert await tester.check_now("checkout") == HealthStatus.PASS
    checkout.fail = 1
    assert await tester.check_now("checkout") == HealthStatus.WARN  # passed after a retry
    checkout.fail = 2
    assert await tester.check_now("checkout") == HealthStatus.FAIL
    recommendations.fail = 1
    assert await tester.check_now("recommendations") == HealthStatus.WARN  # not critical

    status = tester.get_status()
    assert status["checkout"]["status"] == "failing"
    assert status["recommendations"]["status"] == "failing"
    with pytest.raises(KeyError, match="no synthetic scenario named 'nope'"):
        tester.status("nope")


@pytest.mark.anyio
async def test_suite_results_and_readiness(clock: FakeClock) -> None:
    tester, checkout, recommendations = two_journeys(clock)
    tester.register_scenario("search", Journey(), frequency=60, suite="browse")
    tester.register_scenario("product", Journey(), frequency=60, suite="browse")

    assert tester.suite_report().status is ScenarioStatus.UNKNOWN
    assert tester.ready()  # nothing known yet does not hold the service back
    for name in tester.names():
        await tester.arun(name)
    suite = tester.suite_report()
    assert suite.status is ScenarioStatus.PASSING
    assert suite.counts[ScenarioStatus.PASSING] == 4

    recommendations.fail = 1
    await tester.arun("recommendations")
    assert tester.suite_report().status is ScenarioStatus.FAILING
    assert tester.ready()  # only a critical scenario makes the service not ready
    assert tester.suite_report("browse").status is ScenarioStatus.PASSING

    checkout.fail = 2
    await tester.arun("checkout")
    suite = tester.suite_report()
    assert not suite.ready
    assert suite.failing() == ["checkout", "recommendations"]
    assert suite.failing(critical_only=True) == ["checkout"]
    assert suite.to_dict()["counts"] == {"passing": 2, "degraded": 0, "failing": 2, "unknown": 0}


@pytest.mark.anyio
async def test_a_failing_critical_scenario_takes_the_service_out_of_readiness(
    clock: FakeClock,
) -> None:
    tester, checkout, _ = two_journeys(clock)
    monitor = HealthMonitor(clock=clock)
    monitor.register("synthetic", tester.readiness_check(), interval=5, jitter=0)
    app = health_app(monitor, manage_monitor=False, show_details="always")

    with serving(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            await tester.arun("checkout")
            assert await monitor.check_now("synthetic") == HealthStatus.PASS
            assert (await client.get("/readyz")).status_code == 200

            checkout.fail = 2
            await tester.arun("checkout")
            assert await monitor.check_now("synthetic") == HealthStatus.FAIL
            response = await client.get("/readyz")
            assert response.status_code == 503
            (check,) = response.json()["checks"]["synthetic:responseTime"]
            assert check["output"] == "critical synthetic scenario(s) failing: checkout"

            await tester.arun("checkout")  # fixed: passes at once
            assert await monitor.check_now("synthetic") == HealthStatus.PASS
            assert (await client.get("/readyz")).status_code == 200
