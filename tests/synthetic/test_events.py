"""Events of the synthetic tester, how the vocabulary reads them, and a recovery rule on them."""

from __future__ import annotations

import pytest

from selfheal.errors import CheckError
from selfheal.events import EventBus, Severity, Signal, classify
from selfheal.recovery import CallFunction, RecoveryEngine, Rule, Verify
from selfheal.synthetic import HttpScenario, HttpStep, ScenarioStatus, SyntheticTester
from selfheal.testing import EventRecorder, FakeClock
from synthetic_helpers import Shop

URL = "http://127.0.0.1:9"


class Switch:
    """An async scenario that fails while `failing` is set."""

    def __init__(self) -> None:
        self.failing = False

    async def __call__(self, base_url: str) -> None:
        if self.failing:
            raise CheckError("checkout page shows an error")


@pytest.mark.anyio
async def test_failed_and_recovered_follow_the_thresholds_once_per_outage(
    clock: FakeClock,
) -> None:
    bus = EventBus(clock=clock)
    scenario = Switch()
    tester = SyntheticTester(URL, clock=clock, bus=bus)
    tester.register_scenario(
        "checkout", scenario, frequency=60, failure_threshold=2, success_threshold=2
    )
    with EventRecorder(bus, "synthetic.*") as events:
        await tester.arun("checkout")
        scenario.failing = True
        await tester.arun("checkout")
        assert tester.report("checkout").status is ScenarioStatus.DEGRADED  # below threshold
        await tester.arun("checkout")
        assert tester.report("checkout").status is ScenarioStatus.FAILING
        await tester.arun("checkout")  # still failing: no second .failed
        scenario.failing = False
        await tester.arun("checkout")
        assert tester.report("checkout").status is ScenarioStatus.FAILING  # 1 of 2 successes
        await tester.arun("checkout")
        assert tester.report("checkout").status is ScenarioStatus.PASSING

    assert events.types() == [
        "synthetic.checkout.completed",
        "synthetic.checkout.completed",
        "synthetic.checkout.completed",
        "synthetic.checkout.failed",
        "synthetic.checkout.completed",
        "synthetic.checkout.completed",
        "synthetic.checkout.completed",
        "synthetic.checkout.recovered",
    ]
    results = [e.data["result"] for e in events.of("synthetic.checkout.completed")]
    assert results == ["passed", "failed", "failed", "failed", "passed", "passed"]
    failed = events.of("synthetic.checkout.failed")[0]
    assert failed.source == "synthetic"
    assert failed.severity == Severity.ERROR
    assert failed.data["error"] == "checkout page shows an error"
    assert failed.data["consecutive_failures"] == 2
    assert failed.data["critical"] is True
    assert failed.timestamp == clock.time()


@pytest.mark.anyio
async def test_a_non_critical_scenario_fails_as_a_warning(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    scenario = Switch()
    scenario.failing = True
    tester = SyntheticTester(URL, clock=clock, bus=bus)
    tester.register_scenario("recommendations", scenario, frequency=60, critical=False)
    with EventRecorder(bus, "synthetic.*.failed") as events:
        await tester.arun("recommendations")
    assert events.events[0].severity == Severity.WARNING


@pytest.mark.anyio
async def test_the_vocabulary_reads_failed_and_recovered_as_signals_and_the_rest_as_neutral(
    clock: FakeClock,
) -> None:
    bus = EventBus(clock=clock)
    calls = {"n": 0}

    async def flaky(base_url: str) -> None:
        calls["n"] += 1
        if calls["n"] in (1, 3, 4):  # the attempts that fail
            raise CheckError("boom")

    tester = SyntheticTester(URL, clock=clock, bus=bus)
    tester.register_scenario("checkout", flaky, frequency=60, retries=1, retry_delay=0)
    with EventRecorder(bus, "*") as events:
        await tester.arun("checkout")  # attempts 1 and 2: passes after a retry
        calls["n"] = 2
        await tester.arun("checkout")  # attempt 3 fails, 4 fails: failed
        await tester.arun("checkout")  # attempt 5 passes: recovered

    signals = {e.type: classify(e) for e in events.events}
    assert signals["synthetic.checkout.failed"] == (Signal.FAILURE, "checkout")
    assert signals["synthetic.checkout.recovered"] == (Signal.RECOVERY, "checkout")
    assert signals["synthetic.checkout.completed"] == (Signal.NEUTRAL, "checkout")
    assert signals["synthetic.checkout.passed_after_retry"] == (Signal.NEUTRAL, "checkout")


@pytest.mark.anyio
async def test_a_recovery_rule_acts_on_a_failing_scenario_and_verifies_it_by_running_it(
    shop: Shop, shop_url: str
) -> None:
    clock = FakeClock()
    bus = EventBus(clock=clock)
    tester = SyntheticTester(shop_url, clock=clock, bus=bus)
    order = HttpStep("order", "POST", "/orders", json={"sku": "A1"}, capture={"id": "[BODY].id"})
    cleanup = HttpStep("cancel", "DELETE", "/orders/{id}")
    tester.register_scenario("checkout", HttpScenario([order], cleanup=[cleanup]), frequency=60)

    def fail_over_the_database(event: object) -> None:
        shop.broken = False

    rule = Rule(
        on="synthetic.*.failed",
        steps=(CallFunction(fail_over_the_database),),
        verify=Verify(("{subject}",), within=10, interval=1),
        cooldown=0,
    )
    engine = RecoveryEngine(bus, [rule], health=tester, clock=clock)
    await engine.start()
    try:
        with EventRecorder(bus, "*") as events:
            shop.broken = True
            record = await tester.arun("checkout")
            assert record.error == "step 'order': HTTP 500 from POST /orders"
            await events.wait("recovery.checkout.succeeded")
    finally:
        await engine.stop()

    assert events.types().index("synthetic.checkout.failed") < events.types().index(
        "recovery.checkout.started"
    )
    assert "synthetic.checkout.recovered" in events.types()  # the verification's run passed
    assert tester.status("checkout") == "pass"
    assert shop.orders == {}
