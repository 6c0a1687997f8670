"""Declarative HTTP scenarios against a real server on 127.0.0.1: steps, captures, cleanup."""

from __future__ import annotations

import asyncio

import pytest

from health_helpers import until
from selfheal.events import EventBus
from selfheal.synthetic import (
    SYNTHETIC_HEADER,
    HttpConditions,
    HttpScenario,
    HttpStep,
    RunOutcome,
    RunRecord,
    ScenarioStatus,
    StepFailedError,
    SyntheticTester,
)
from selfheal.testing import EventRecorder, FakeClock
from synthetic_helpers import Shop

ID = {"id": "[BODY].id"}

CHECKOUT = HttpScenario(
    [
        HttpStep(
            "create order",
            "POST",
            "/orders",
            json={"sku": "A1", "qty": 2},
            conditions=["[STATUS] == 201", "[BODY].status == new", "[BODY].qty == 2"],
            capture={"order_id": "[BODY].id", "location": "[HEADER].Location"},
        ),
        HttpStep(
            "read order",
            "GET",
            "/orders/{order_id}",
            conditions=["[STATUS] == 200", "[BODY].sku == A1"],
        ),
        HttpStep("read it by its location", "GET", "{location}"),
    ],
    cleanup=[
        HttpStep("delete order", "DELETE", "/orders/{order_id}", conditions=["[STATUS] == 204"])
    ],
)


def make_tester(url: str, clock: FakeClock | None = None, **kwargs: object) -> SyntheticTester:
    return SyntheticTester(url, clock=clock or FakeClock(), **kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_multi_step_scenario_carries_captured_values_and_cleans_up(
    shop: Shop, shop_url: str
) -> None:
    tester = make_tester(shop_url)
    tester.register_scenario("checkout", CHECKOUT, frequency=60)

    record = await tester.arun("checkout")

    assert record.outcome is RunOutcome.PASSED, record.error
    assert record.attempts == 1
    assert [(s.name, s.phase, s.ok, s.status) for s in record.steps] == [
        ("create order", "step", True, 201),
        ("read order", "step", True, 200),
        ("read it by its location", "step", True, 200),
        ("delete order", "cleanup", True, 204),
    ]
    assert [(s.method, s.path) for s in shop.seen] == [
        ("POST", "/orders"),
        ("GET", "/orders/1"),
        ("GET", "/orders/1"),
        ("DELETE", "/orders/1"),
    ]
    assert shop.orders == {}  # the cleanup removed what the scenario created


@pytest.mark.anyio
async def test_every_request_carries_the_synthetic_traffic_header(
    shop: Shop, shop_url: str
) -> None:
    tester = make_tester(shop_url)
    tester.register_scenario("checkout", CHECKOUT, frequency=60)
    await tester.arun("checkout")
    assert len(shop.seen) == 4
    assert {s.headers.get(SYNTHETIC_HEADER.lower()) for s in shop.seen} == {"1"}

    shop.reset()
    custom = make_tester(shop_url, synthetic_header=("X-Probe", "canary"))
    custom.register_scenario("checkout", CHECKOUT, frequency=60)
    await custom.arun("checkout")
    assert {s.headers.get("x-probe") for s in shop.seen} == {"canary"}
    assert all(SYNTHETIC_HEADER.lower() not in s.headers for s in shop.seen)


@pytest.mark.anyio
async def test_cleanup_runs_when_a_step_fails(shop: Shop, shop_url: str) -> None:
    scenario = HttpScenario(
        [
            HttpStep("create order", "POST", "/orders", json={"sku": "A1"}, capture=ID),
            HttpStep("read order", "GET", "/orders/{id}", conditions=["[BODY].sku == B2"]),
            HttpStep("never sent", "GET", "/orders/{id}"),
        ],
        cleanup=[HttpStep("delete order", "DELETE", "/orders/{id}")],
    )
    tester = make_tester(shop_url)
    tester.register_scenario("checkout", scenario, frequency=60)

    record = await tester.arun("checkout")

    assert record.outcome is RunOutcome.FAILED
    assert record.error == (
        "step 'read order': response JSON of GET /orders/1: sku is 'A1', expected 'B2'"
    )
    assert [(s.method, s.path) for s in shop.seen] == [
        ("POST", "/orders"),
        ("GET", "/orders/1"),
        ("DELETE", "/orders/1"),
    ]
    assert shop.orders == {}
    assert [s.name for s in record.steps if not s.ok] == ["read order"]


@pytest.mark.anyio
async def test_a_cleanup_step_whose_value_was_never_captured_is_skipped(
    shop: Shop, shop_url: str
) -> None:
    shop.broken = True
    scenario = HttpScenario(
        [HttpStep("create order", "POST", "/orders", json={}, capture=ID)],
        cleanup=[
            HttpStep("delete order", "DELETE", "/orders/{id}"),
            HttpStep("log out", "POST", "/echo", body="bye"),
        ],
    )
    tester = make_tester(shop_url)
    tester.register_scenario("checkout", scenario, frequency=60)

    record = await tester.arun("checkout")

    assert record.error == "step 'create order': HTTP 500 from POST /orders"
    delete, log_out = record.steps[1:]
    assert delete.skipped
    assert delete.error == "skipped: id never captured"
    assert log_out.ok
    assert [(s.method, s.path) for s in shop.seen] == [("POST", "/orders"), ("POST", "/echo")]


async def hang_in_slow_step(
    shop: Shop, url: str, *, step_timeout: float, run_timeout: float, advance: float
) -> RunRecord:
    """Run create, a step the server never answers, and a cleanup; time out on the fake clock."""
    clock = FakeClock()
    scenario = HttpScenario(
        [
            HttpStep("create order", "POST", "/orders", json={}, capture=ID),
            HttpStep("slow report", "GET", "/slow", timeout=step_timeout),
        ],
        cleanup=[HttpStep("delete order", "DELETE", "/orders/{id}")],
    )
    tester = make_tester(url, clock)
    tester.register_scenario("checkout", scenario, frequency=60, timeout=run_timeout)
    run = asyncio.ensure_future(tester.arun("checkout"))
    await until(shop.entered.is_set)
    await until(lambda: clock.pending_sleepers >= 2)  # the run's and the step's deadlines
    clock.advance(advance)
    return await asyncio.wait_for(run, 10)


@pytest.mark.anyio
async def test_a_step_that_times_out_fails_and_the_cleanup_still_runs(
    shop: Shop, shop_url: str
) -> None:
    record = await hang_in_slow_step(shop, shop_url, step_timeout=5, run_timeout=30, advance=5)

    assert record.error == "step 'slow report': GET /slow timed out after 5 s"
    assert record.outcome is RunOutcome.FAILED
    assert not record.timed_out  # the step's deadline, not the run's
    assert ("DELETE", "/orders/1") in [(s.method, s.path) for s in shop.seen]
    assert shop.orders == {}


@pytest.mark.anyio
async def test_a_run_that_times_out_still_cleans_up(shop: Shop, shop_url: str) -> None:
    record = await hang_in_slow_step(shop, shop_url, step_timeout=50, run_timeout=20, advance=20)

    assert record.timed_out
    assert record.error == "timed out after 20 s"
    await until(lambda: shop.orders == {})  # the abandoned attempt's cleanup, after the record
    assert shop.requests("DELETE") != []


@pytest.mark.anyio
async def test_passed_after_a_retry_is_recorded_apart_from_passed_and_failed(
    shop: Shop, shop_url: str
) -> None:
    bus = EventBus()
    tester = make_tester(shop_url, bus=bus)
    flaky = HttpScenario([HttpStep("flaky", "GET", "/flaky", conditions=["[STATUS] == 200"])])
    tester.register_scenario("flaky", flaky, frequency=60, retries=2, retry_delay=0)

    with EventRecorder(bus, "synthetic.*") as events:
        shop.flaky = 1
        record = await tester.arun("flaky")

    assert record.outcome is RunOutcome.PASSED_AFTER_RETRY
    assert record.passed
    assert record.attempts == 2
    assert record.error == "step 'flaky': HTTP 503 from GET /flaky"
    assert len(shop.requests("GET", "/flaky")) == 2
    report = tester.report("flaky")
    assert report.status is ScenarioStatus.DEGRADED
    assert (report.successes, report.failures, report.passed_after_retry) == (1, 0, 1)
    assert events.types() == ["synthetic.flaky.completed", "synthetic.flaky.passed_after_retry"]
    assert events.events[0].data["result"] == "passed_after_retry"

    shop.flaky = 5  # more than the retries: the run fails, with every attempt made
    record = await tester.arun("flaky")
    assert record.outcome is RunOutcome.FAILED
    assert record.attempts == 3
    assert tester.report("flaky").status is ScenarioStatus.FAILING

    shop.flaky = 0
    record = await tester.arun("flaky")
    assert record.outcome is RunOutcome.PASSED
    assert tester.report("flaky").status is ScenarioStatus.PASSING


CONDITION_CASES = [
    # (conditions, passes, message fragment when it fails)
    (["[STATUS] == 200"], True, ""),
    (["[STATUS] < 300", "[STATUS] != 204"], True, ""),
    (["[STATUS] == 201"], False, "HTTP 200 from GET /profile"),
    (["[STATUS] >= 400"], False, "HTTP 200 from GET /profile"),
    (["[BODY].user.id == 1", '[BODY].user.name == "ada"', "[BODY].user.roles.0 == x"], False, ""),
    (
        ["[BODY].user.id == 1", '[BODY].user.name == "ada"', "[BODY].user.roles.0 == admin"],
        True,
        "",
    ),
    (['[BODY].version == "2.1"'], True, ""),
    (["[BODY].version == 2.1"], False, "version is '2.1', expected 2.1"),
    (["[BODY].user.id == 2"], False, "response JSON of GET /profile: user.id is 1, expected 2"),
    (["[BODY].user.email == x"], False, "has no field 'user.email'"),
    (["[BODY] == pat(*ada*)"], True, ""),
    (["[BODY] == pat(*grace*)"], False, "does not match"),
    (["[HEADER].X-Version == 2.1", "[HEADER].cache-control == no-store"], True, ""),
    (["[HEADER].X-Version == 3"], False, "header X-Version is '2.1', expected '3'"),
    (["[HEADER].X-Missing == 1"], False, "has no X-Missing header"),
    (["[RESPONSE_TIME] < 300"], True, ""),
    (["[RESPONSE_TIME] < 200"], False, "GET /profile took 250 ms (more than 200 ms)"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("conditions", "passes", "message"), CONDITION_CASES)
async def test_each_kind_of_condition_is_checked_on_the_real_response(
    shop: Shop, shop_url: str, conditions: list[str], passes: bool, message: str
) -> None:
    clock = FakeClock()
    shop.clock, shop.delay = clock, 0.25  # the server's answer takes 250 ms of fake time
    tester = make_tester(shop_url, clock)
    step = HttpStep("profile", "GET", "/profile", conditions=conditions)
    tester.register_scenario("profile", HttpScenario([step]), frequency=60)

    record = await tester.arun("profile")

    assert record.passed is passes, record.error
    assert message in record.error
    assert record.steps[0].elapsed == pytest.approx(0.25)


@pytest.mark.anyio
async def test_conditions_given_as_http_conditions_work_the_same(shop: Shop, shop_url: str) -> None:
    expect = HttpConditions(status={200}, json_fields={"user.name": "ada"}, body_contains="admin")
    scenario = HttpScenario([HttpStep("profile", "GET", "/profile", expect=expect)])
    tester = make_tester(shop_url)
    tester.register_scenario("profile", scenario, frequency=60)
    assert (await tester.arun("profile")).passed
    wrong = HttpScenario(
        [HttpStep("profile", "GET", "/profile", expect=HttpConditions(body_contains="root"))]
    )
    tester.register_scenario("wrong", wrong, frequency=60)
    assert (await tester.arun("wrong")).error == (
        "step 'profile': response body of GET /profile lacks 'root'"
    )


@pytest.mark.anyio
async def test_templates_fill_bodies_and_headers_from_captures_and_the_environment(
    shop: Shop, shop_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_TOKEN", "t0ken-value")
    scenario = HttpScenario(
        [
            HttpStep("create", "POST", "/orders", json={"sku": "A1"}, capture=ID),
            HttpStep(
                "echo",
                "POST",
                "/echo",
                json={"note": "order {id} of {shop}"},
                headers={"Authorization": "Bearer ${SHOP_TOKEN}"},
            ),
        ],
        variables={"shop": "north"},
    )
    tester = make_tester(shop_url)
    tester.register_scenario("echo", scenario, frequency=60)
    record = await tester.arun("echo")
    assert record.passed, record.error
    assert shop.requests("POST", "/echo")[0].headers["authorization"] == "Bearer t0ken-value"
    # Run alone, it returns what it captured, on top of the values it was given.
    assert await scenario.run(shop_url) == {"shop": "north", "id": 2}


@pytest.mark.anyio
async def test_a_whole_template_keeps_the_captured_type(shop: Shop, shop_url: str) -> None:
    import json

    scenario = HttpScenario(
        [
            HttpStep("create", "POST", "/orders", json={"sku": "A1"}, capture=ID),
            HttpStep(
                "echo",
                "POST",
                "/echo",
                json={"order": "{id}", "note": "order {id}", "braces": "{{literal}}"},
                capture={"sent": "[BODY].body"},
            ),
        ]
    )
    variables = await scenario.run(shop_url)
    assert json.loads(variables["sent"]) == {"order": 1, "note": "order 1", "braces": "{literal}"}


@pytest.mark.anyio
async def test_a_missing_environment_variable_fails_the_step_by_name(
    shop: Shop, shop_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    scenario = HttpScenario(
        [HttpStep("echo", "GET", "/echo", headers={"X-Key": "${NOT_SET_ANYWHERE}"})]
    )
    with pytest.raises(StepFailedError, match="environment variable NOT_SET_ANYWHERE is not set"):
        await scenario(shop_url)
    assert shop.seen == []


@pytest.mark.anyio
async def test_a_refused_connection_fails_with_the_step_and_the_error_type() -> None:
    from health_helpers import free_port

    scenario = HttpScenario([HttpStep("home", "GET", "/")])
    with pytest.raises(StepFailedError) as failed:
        await scenario(f"http://127.0.0.1:{free_port()}")
    assert failed.value.step == "home"
    assert str(failed.value).startswith("step 'home': GET /: ConnectError")
