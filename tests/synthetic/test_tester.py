"""The tester's bookkeeping: history ring, success ratio, status, registration errors."""

from __future__ import annotations

import re

import pytest

from selfheal.errors import CheckError
from selfheal.synthetic import RunOutcome, RunRecord, SyntheticTester
from selfheal.testing import FakeClock

URL = "http://127.0.0.1:9"


class Outcomes:
    """An async scenario that fails when the next planned outcome is False."""

    def __init__(self, *plan: bool) -> None:
        self.plan = list(plan)

    async def __call__(self, base_url: str) -> None:
        if not self.plan.pop(0):
            raise CheckError("no")


@pytest.mark.anyio
async def test_history_is_a_bounded_ring_and_the_ratio_counts_what_it_holds(
    clock: FakeClock,
) -> None:
    tester = SyntheticTester(URL, clock=clock, history=4)
    tester.register_scenario("s", Outcomes(False, False, True, True, False, True), frequency=60)
    for _ in range(6):
        await tester.arun("s")
        clock.advance(1)

    runs = tester.history("s")
    assert [r.number for r in runs] == [3, 4, 5, 6]
    assert [r.outcome for r in runs] == [
        RunOutcome.PASSED,
        RunOutcome.PASSED,
        RunOutcome.FAILED,
        RunOutcome.PASSED,
    ]
    report = tester.report("s")
    assert report.success_ratio == 0.75  # of the 4 runs kept
    assert (report.successes, report.failures) == (3, 3)  # since registration
    assert runs[-1].time == clock.time() - 1


@pytest.mark.anyio
async def test_get_status_has_the_articles_keys_and_ours(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("login", Outcomes(True), frequency=600, suite="web")
    assert tester.get_status()["login"]["last_run"] is None  # no run yet
    await tester.arun("login")

    status = tester.get_status()["login"]
    assert status["success_count"] == 1
    assert status["failure_count"] == 0
    assert status["last_run"] == clock.time()
    assert status["status"] == "passing"
    assert status["last_result"] == "passed"
    assert status["success_ratio"] == 1.0
    assert status["suite"] == "web"
    assert status["frequency"] == 600
    assert status["history"] == [
        {"outcome": "passed", "at": clock.time(), "duration": 0.0, "attempts": 1}
    ]


@pytest.mark.anyio
async def test_observers_see_every_run(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("s", Outcomes(True, False), frequency=60)
    seen: list[RunRecord] = []
    remove = tester.add_observer(seen.append)
    await tester.arun("s")
    remove()
    await tester.arun("s")
    assert [r.outcome for r in seen] == [RunOutcome.PASSED]


def test_unregister_and_names(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("a", Outcomes(), frequency=60)
    tester.register_scenario("b", Outcomes(), frequency=60)
    tester.unregister("a")
    assert tester.names() == ["b"]
    with pytest.raises(KeyError, match=r"no synthetic scenario named 'a' \(registered: b\)"):
        tester.unregister("a")
    tester.register_scenario("a", Outcomes(), frequency=60)  # the name is free again


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "has space"}, "name must be 1-63 letters, digits, '_' or '-'"),
        ({"name": "a.b"}, "name must be 1-63 letters"),
        ({"test_func": "not callable"}, "test_func must be a callable"),
        ({"frequency": 0}, "frequency must be a number of seconds > 0, got 0"),
        ({"frequency": True}, "frequency must be a number of seconds > 0"),
        ({"jitter": 0.7}, "jitter must be a fraction from 0 to 0.5"),
        ({"timeout": -1}, "timeout must be a number of seconds > 0"),
        ({"retries": -1}, "retries must be an integer >= 0"),
        ({"retries": 1, "retry_delay": -1}, "retry_delay must be a number of seconds >= 0"),
        ({"retries": 3, "retry_delay": 10, "timeout": 30}, "retries * retry_delay (30 s)"),
        ({"failure_threshold": 0}, "failure_threshold must be an integer >= 1"),
        ({"base_url": "127.0.0.1:8000"}, "base_url must be an http:// or https:// URL"),
        ({"suite": ""}, "suite must be a non-empty string or None"),
    ],
)
def test_bad_registrations_are_refused_naming_the_argument(
    clock: FakeClock, kwargs: dict[str, object], message: str
) -> None:
    tester = SyntheticTester(URL, clock=clock)
    args: dict[str, object] = {"name": "login", "test_func": Outcomes(), "frequency": 60, **kwargs}
    with pytest.raises(
        ValueError, match=re.escape(f"SyntheticTester.register_scenario: {message}")
    ):
        tester.register_scenario(**args)  # type: ignore[arg-type]
    assert tester.names() == []


def test_a_duplicate_name_is_refused(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("login", Outcomes(), frequency=60)
    with pytest.raises(ValueError, match="a scenario named 'login' is already registered"):
        tester.register_scenario("login", Outcomes(), frequency=60)


def test_the_constructor_checks_its_arguments_and_hides_credentials() -> None:
    with pytest.raises(ValueError, match="base_url must be an http:// or https:// URL") as bad:
        SyntheticTester("ftp://ops:hunter2@files.example/")
    assert "hunter2" not in str(bad.value)
    with pytest.raises(ValueError, match="history must be an integer >= 1"):
        SyntheticTester(URL, history=0)
    tester = SyntheticTester("https://ops:hunter2@shop.example/")
    assert "hunter2" not in repr(tester)
    assert tester.app_url == "https://ops:hunter2@shop.example/"  # the article's attribute
    assert dict(tester.headers) == {"X-Selfheal-Synthetic": "1"}
    assert dict(SyntheticTester(URL, synthetic_header=None).headers) == {}


def test_defaults_follow_the_frequency(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    slow = tester.register_scenario("slow", Outcomes(), frequency=600)
    fast = tester.register_scenario("fast", Outcomes(), frequency=10)
    assert (slow.timeout, fast.timeout) == (30, 10)
    assert slow.base_url == URL
    assert slow.critical
    assert slow.retries == 0
    assert slow.jitter == 0.1


@pytest.mark.anyio
async def test_run_scenario_is_refused_inside_a_running_loop(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("s", Outcomes(True), frequency=60)
    with pytest.raises(RuntimeError, match=r"use await tester\.arun"):
        tester.run_scenario("s")


@pytest.mark.anyio
async def test_the_dashboard_shows_statuses_and_recent_runs(clock: FakeClock) -> None:
    import json

    from selfheal.web.dashboard import ComponentsSnapshot

    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("checkout", Outcomes(True, False), frequency=60)
    await tester.arun("checkout")
    await tester.arun("checkout")

    snapshot = json.loads(json.dumps(ComponentsSnapshot(synthetic=tester, clock=clock).snapshot()))

    (row,) = snapshot["synthetic"]
    assert row["name"] == "checkout"
    assert row["status"] == "failing"
    assert (row["success_count"], row["failure_count"], row["success_ratio"]) == (1, 1, 0.5)
    assert [h["outcome"] for h in row["history"]] == ["passed", "failed"]
