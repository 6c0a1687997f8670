"""Scenarios on the shared scheduler and the fake clock: frequency, jitter, no overlap, timeouts."""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

from health_helpers import until
from selfheal.errors import CheckError
from selfheal.synthetic import RunOutcome, ScenarioStatus, SyntheticTester
from selfheal.testing import FakeClock
from synthetic_helpers import counting, settled

URL = "http://127.0.0.1:9"  # never contacted: these scenarios are plain functions


@pytest.mark.anyio
async def test_a_scenario_runs_at_start_then_every_frequency_seconds(clock: FakeClock) -> None:
    calls, scenario = counting()
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("search", scenario, frequency=300, jitter=0)
    await tester.astart()
    try:
        await settled(tester, "search", 1)
        assert calls == [URL]
        assert tester.report("search").next_run_in == 300
        clock.advance(299)
        for _ in range(50):
            await asyncio.sleep(0)
        assert len(calls) == 1
        clock.advance(1)
        await settled(tester, "search", 2)
        assert len(calls) == 2
        clock.advance(300)
        await settled(tester, "search", 3)
        assert len(calls) == 3
    finally:
        await tester.astop()
    assert not tester.running


@pytest.mark.anyio
async def test_each_scenario_keeps_its_own_frequency(clock: FakeClock) -> None:
    login_calls, login = counting()
    search_calls, search = counting()
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("login", login, frequency=600, jitter=0)
    tester.register_scenario("search", search, frequency=300, jitter=0)
    await tester.astart()
    try:
        for n in range(2, 5):  # 300, 600, 900
            await settled(tester, "search", n - 1)
            await settled(tester, "login", (n - 2) // 2 + 1)
            clock.advance(300)
        await settled(tester, "search", 4)
        await settled(tester, "login", 2)
    finally:
        await tester.astop()
    assert (len(login_calls), len(search_calls)) == (2, 4)


@pytest.mark.anyio
async def test_waits_are_jittered_within_bounds() -> None:
    clock = FakeClock()
    _calls, scenario = counting()
    tester = SyntheticTester(URL, clock=clock, rng=random.Random(3))
    tester.register_scenario("search", scenario, frequency=100, jitter=0.2, timeout=1)
    await tester.astart()
    try:
        for n in range(1, 7):
            await settled(tester, "search", n)
            clock.advance(120)  # beyond the longest jittered wait
    finally:
        await tester.astop()
    waits = [s for s in clock.sleeps if s != 1]  # the 1 s sleeps are the runs' deadlines
    assert len(waits) >= 6
    assert all(80 <= w <= 120 for w in waits)
    assert len(set(waits)) > 1


@pytest.mark.anyio
async def test_a_run_that_outlasts_the_frequency_is_never_overlapped(clock: FakeClock) -> None:
    release = asyncio.Event()
    calls: list[str] = []

    async def checkout(base_url: str) -> None:
        calls.append(base_url)
        await release.wait()

    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("checkout", checkout, frequency=10, timeout=60, jitter=0)
    await tester.astart()
    try:
        await until(lambda: len(calls) == 1)
        for _ in range(5):
            clock.advance(10)  # five frequencies pass while the first run is in flight
            await asyncio.sleep(0)
        assert len(calls) == 1
        assert tester.report("checkout").running
        release.set()
        await settled(tester, "checkout", 1)
        assert tester.report("checkout").next_run_in == 10  # counted from the end of the run
        clock.advance(10)
        await settled(tester, "checkout", 2)
        assert len(calls) == 2
    finally:
        await tester.astop()


@pytest.mark.anyio
async def test_a_hung_run_fails_at_its_timeout_and_is_not_started_again(clock: FakeClock) -> None:
    gate = threading.Event()
    calls: list[str] = []

    def stuck(base_url: str) -> None:  # a sync scenario whose thread cannot be stopped
        calls.append(base_url)
        gate.wait(10)

    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("stuck", stuck, frequency=30, timeout=5, jitter=0)
    await tester.astart()
    try:
        await until(lambda: len(calls) == 1 and clock.pending_sleepers >= 1)
        clock.advance(5)
        await settled(tester, "stuck", 1)
        first = tester.history("stuck")[-1]
        assert first.timed_out
        assert first.error == "timed out after 5 s"
        assert first.attempts == 1
        clock.advance(30)  # due again, but the abandoned run still holds its thread
        await settled(tester, "stuck", 2)
        second = tester.history("stuck")[-1]
        assert second.attempts == 0
        assert "has not returned" in second.error
        assert len(calls) == 1
    finally:
        gate.set()
        await tester.astop()


@pytest.mark.anyio
async def test_sync_scenarios_run_in_a_thread_and_get_the_base_url(clock: FakeClock) -> None:
    seen: list[tuple[str, str]] = []

    def login(base_url: str) -> None:
        seen.append((base_url, threading.current_thread().name))

    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("login", login, frequency=60)
    tester.register_scenario("other", login, frequency=60, base_url="http://127.0.0.1:8/api")
    assert (await tester.arun("login")).passed
    assert (await tester.arun("other")).passed
    assert seen[0][0] == URL
    assert seen[1][0] == "http://127.0.0.1:8/api"
    assert all(name.startswith("selfheal-synthetic-") for _, name in seen)


@pytest.mark.anyio
async def test_retries_wait_retry_delay_on_the_clock(clock: FakeClock) -> None:
    failures = [CheckError("first"), CheckError("second")]

    async def flaky(base_url: str) -> None:
        if failures:
            raise failures.pop(0)

    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("flaky", flaky, frequency=60, retries=2, retry_delay=4, timeout=20)
    run = asyncio.ensure_future(tester.arun("flaky"))
    for waits in (1, 2):
        await until(lambda waits=waits: clock.sleeps.count(4) == waits)  # type: ignore[misc]
        clock.advance(4)
    record = await asyncio.wait_for(run, 5)
    assert record.outcome is RunOutcome.PASSED_AFTER_RETRY
    assert record.attempts == 3
    assert record.error == "second"
    assert clock.sleeps.count(4) == 2


@pytest.mark.anyio
async def test_a_scenario_returning_false_fails(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("nope", lambda base_url: False, frequency=60)
    record = await tester.arun("nope")
    assert record.outcome is RunOutcome.FAILED
    assert record.error == "the scenario returned False"


@pytest.mark.anyio
async def test_a_lambda_around_a_coroutine_is_refused_with_advice(clock: FakeClock) -> None:
    async def check(base_url: str) -> None:
        return None

    tester = SyntheticTester(URL, clock=clock)
    wrapped = lambda base_url: check(base_url)  # noqa: E731, PLW0108 - the mistake under test
    tester.register_scenario("wrapped", wrapped, frequency=60)
    record = await tester.arun("wrapped")
    assert "register the coroutine function itself" in record.error


@pytest.mark.anyio
async def test_stale_results_count_as_failing(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("search", counting()[1], frequency=60, jitter=0, timeout=5)
    await tester.arun("search")
    assert tester.report("search").status is ScenarioStatus.PASSING
    clock.advance(60 * 2 + 5 + 1)  # nothing runs it: the tester is not started
    report = tester.report("search")
    assert report.stale
    assert report.status is ScenarioStatus.FAILING


def test_start_and_stop_from_sync_code_run_the_scenarios_in_a_thread() -> None:
    clock = FakeClock()
    ran = threading.Event()

    def login(base_url: str) -> None:
        ran.set()

    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("login", login, frequency=600)
    tester.start()
    try:
        assert tester.running
        assert ran.wait(10)
    finally:
        tester.stop()
    assert not tester.running
    tester.stop()  # twice is fine


def test_run_scenario_runs_one_now_from_sync_code(clock: FakeClock) -> None:
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("login", lambda base_url: None, frequency=600)
    record = tester.run_scenario("login")
    assert record.outcome is RunOutcome.PASSED
    assert tester.get_status()["login"]["success_count"] == 1


@pytest.mark.anyio
async def test_as_component_runs_the_scenarios_on_the_daemons_loop(clock: FakeClock) -> None:
    from selfheal.interfaces import Component

    calls, scenario = counting()
    tester = SyntheticTester(URL, clock=clock)
    tester.register_scenario("search", scenario, frequency=60)
    component = tester.as_component()
    assert isinstance(component, Component)
    await component.start()
    try:
        await settled(tester, "search", 1)
        assert tester.running
        assert len(calls) == 1
    finally:
        await component.stop()
        await component.stop()  # twice is fine
    assert not tester.running
