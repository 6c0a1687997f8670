"""ChaosMonkey on a FakeClock: schedule, time limits, stop, abort, kill switches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from selfheal.chaos import (
    Action,
    ChaosMonkey,
    ChaosRefusedError,
    KillSwitch,
    Safeguards,
    kill_switch,
    release_kill_switch,
)
from selfheal.events import Event, EventBus
from selfheal.testing import FakeClock

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True)
def _no_kill_switch() -> Iterator[None]:
    yield
    release_kill_switch()


class Target:
    """A disruptable thing that records what was done to it, on async functions."""

    def __init__(self, clock: FakeClock, *, fail_disrupt: bool = False) -> None:
        self.clock = clock
        self.disrupted = False
        self.log: list[tuple[float, str]] = []
        self.fail_disrupt = fail_disrupt
        self.fail_recover = 0

    async def disrupt(self) -> None:
        self.log.append((self.clock.monotonic(), "disrupt"))
        self.disrupted = True
        if self.fail_disrupt:
            raise RuntimeError("half done")

    async def recover(self) -> None:
        self.log.append((self.clock.monotonic(), "recover"))
        if self.fail_recover:
            self.fail_recover -= 1
            raise RuntimeError("still broken")
        self.disrupted = False


async def until(predicate: Callable[[], object], turns: int = 1000) -> None:
    """Let the event loop turn until `predicate` holds (no real time passes)."""
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def record(bus: EventBus) -> list[Event]:
    events: list[Event] = []
    bus.subscribe("chaos.*", events.append)
    return events


def monkey_with(
    clock: FakeClock, seed: int = 1, **kw: object
) -> tuple[ChaosMonkey, list[Event], dict[str, Target]]:
    bus = EventBus(clock=clock)
    events = record(bus)
    monkey = ChaosMonkey(True, clock=clock, bus=bus, seed=seed, **kw)  # type: ignore[arg-type]
    targets = {"database": Target(clock), "cache": Target(clock)}
    monkey.register_target(
        "database", targets["database"].disrupt, targets["database"].recover, 7200
    )
    monkey.register_target("cache", targets["cache"].disrupt, targets["cache"].recover, 3600)
    return monkey, events, targets


async def run_for(seed: int, seconds: float) -> tuple[list[tuple[float, str, str]], bool]:
    """Run a monkey for `seconds` of fake time; return (time, type, reason) of its events."""
    clock = FakeClock(autojump=True)
    monkey, _, _ = monkey_with(clock, seed, duration=300)
    seen: list[tuple[float, str, str]] = []
    assert monkey.bus is not None
    monkey.bus.subscribe(
        "chaos.*", lambda e: seen.append((clock.monotonic(), e.type, e.data.get("reason", "")))
    )
    planned = [s for s in monkey.plan(seconds) if s.action is not Action.SKIP]
    await monkey.astart()
    await clock.asleep(seconds)
    await monkey.astop()
    done = [s for s in monkey.steps if s.action is not Action.SKIP]
    return seen, done == planned


async def test_same_seed_same_schedule_and_the_run_follows_the_plan() -> None:
    first, followed_plan = await run_for(42, 86400)
    second, _ = await run_for(42, 86400)
    other, _ = await run_for(43, 86400)
    injected = [e for e in first if e[1].endswith(".injected")]
    assert len(injected) > 20  # a day at 1/h + 1/2h: about 36 arrivals, some skipped
    assert first == second
    assert first != other
    assert followed_plan  # plan() computed up front is exactly what the run did


async def test_frequency_is_the_mean_gap_between_arrivals() -> None:
    monkey = ChaosMonkey(True, seed=3, duration=1)
    monkey.register_target("x", lambda: None, lambda: None, frequency=100)
    arrivals = [s.at for s in monkey.plan(1_000_000) if s.action is not Action.ROLLBACK]
    mean = (arrivals[-1] - arrivals[0]) / (len(arrivals) - 1)
    assert 90 < mean < 110  # 10,000 exponential gaps: the mean is within a few percent


async def test_a_disruption_is_rolled_back_at_its_time_limit(clock: FakeClock) -> None:
    monkey, events, targets = monkey_with(clock, duration=120)
    first = next(s for s in monkey.plan(86400) if s.action is Action.INJECT)
    await monkey.astart()
    await clock.wait_for_sleepers()
    clock.advance(first.at - clock.monotonic())
    target = targets[first.target]
    await until(lambda: target.disrupted)
    assert monkey.disrupted == [first.target]
    clock.advance(first.at + 119.9 - clock.monotonic())
    await clock.wait_for_sleepers()
    assert target.disrupted, "rolled back before its time limit"
    clock.advance(first.at + 120 - clock.monotonic())
    await until(lambda: not target.disrupted)
    assert target.log == [(first.at, "disrupt"), (pytest.approx(first.at + 120), "recover")]
    rolled = [e for e in events if e.type == f"chaos.{first.target}.rolled_back"]
    assert rolled[0].data["reason"] == "duration"
    await monkey.astop()


async def test_stop_recovers_every_disrupted_target(clock: FakeClock) -> None:
    monkey, events, targets = monkey_with(clock, duration=10**6)
    await monkey.astart()
    while len(monkey.disrupted) < 2:
        await clock.wait_for_sleepers()
        clock.advance(600)
    assert all(t.disrupted for t in targets.values())
    report = await monkey.astop()
    assert report is not None
    assert sorted(report.rolled_back) == ["cache", "database"]
    assert not report.aborted
    assert not any(t.disrupted for t in targets.values())
    assert not monkey.running
    assert events[-1].type == "chaos.monkey.stopped"
    assert {e.data["reason"] for e in events if e.type.endswith(".rolled_back")} == {"stopped"}


async def test_a_failed_injection_is_rolled_back_at_once(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    events = record(bus)
    monkey = ChaosMonkey(True, clock=clock, bus=bus, seed=5)
    target = Target(clock, fail_disrupt=True)
    monkey.register_target("db", target.disrupt, target.recover, frequency=60)
    await monkey.astart()
    await clock.wait_for_sleepers()
    clock.advance(10_000)
    await until(lambda: len(events) >= 2)
    assert [e.type for e in events][:2] == ["chaos.db.inject_failed", "chaos.db.rolled_back"]
    assert "half done" in events[0].data["error"]
    assert not target.disrupted
    assert monkey.targets["db"].failures >= 1
    await monkey.astop()


async def test_a_failed_rollback_is_retried_and_reported(clock: FakeClock) -> None:
    monkey, events, targets = monkey_with(clock, duration=60, timeout=5)
    first = next(s for s in monkey.plan(86400) if s.action is Action.INJECT)
    target = targets[first.target]
    target.fail_recover = 1
    await monkey.astart()
    await clock.wait_for_sleepers()
    clock.advance(first.at + 60 - clock.monotonic())
    await until(lambda: events and events[-1].type.endswith("rollback_failed"))
    assert target.disrupted  # the first rollback failed
    assert events[-1].type == f"chaos.{first.target}.rollback_failed"
    await clock.wait_for_sleepers()
    retry_at = clock.monotonic() + 5  # retried one timeout later
    clock.advance(4.9)
    await clock.wait_for_sleepers()
    assert target.disrupted
    clock.advance(retry_at - clock.monotonic())
    await until(lambda: not target.disrupted)
    assert [e.type.rsplit(".", 1)[1] for e in events][-3:] == [
        "injected",
        "rollback_failed",
        "rolled_back",
    ]
    await monkey.astop()


async def test_a_hanging_disruption_times_out_and_is_rolled_back(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    events = record(bus)
    monkey = ChaosMonkey(True, clock=clock, bus=bus, seed=1, timeout=5)
    recovered: list[float] = []

    async def hang() -> None:
        await clock.asleep(3600)

    async def recover() -> None:
        recovered.append(clock.monotonic())

    monkey.register_target("slow", hang, recover, frequency=10)
    at = monkey.plan(1000)[0].at
    await monkey.astart()
    await clock.wait_for_sleepers()
    clock.advance(at - clock.monotonic())
    await clock.wait_for_sleepers(2)  # the hanging call and its timeout
    clock.advance(5)
    await until(lambda: recovered)
    assert events[0].type == "chaos.slow.inject_failed"
    assert "timed out" in events[0].data["error"]
    assert recovered
    await monkey.astop()


async def test_kill_switch_rolls_back_then_checks_the_steady_state(clock: FakeClock) -> None:
    checks: list[bool] = []

    def steady() -> bool:
        checks.append(True)
        return True

    monkey, events, targets = monkey_with(clock, duration=10**6, steady_state=steady)
    await monkey.astart()
    while not monkey.disrupted:
        await clock.wait_for_sleepers()
        clock.advance(600)
    assert kill_switch("operator said so") >= 1
    report = await monkey.astop()  # waits for the abort already under way
    assert report is not None
    assert report.aborted
    assert "operator said so" in report.reason
    assert report.steady_state is True
    assert checks == [True]
    assert not any(t.disrupted for t in targets.values())
    assert events[-1].type == "chaos.monkey.aborted"
    assert events[-1].data["steady_state"] is True
    with pytest.raises(ChaosRefusedError, match="kill switch is engaged"):
        await monkey.astart()
    release_kill_switch()
    await monkey.astart()
    assert monkey.running
    await monkey.astop()


async def test_abort_reports_a_steady_state_that_did_not_come_back(clock: FakeClock) -> None:
    monkey, _, _ = monkey_with(clock, steady_state=lambda: False)
    await monkey.astart()
    report = await monkey.aabort("deviation")
    assert report is not None
    assert report.aborted
    assert report.steady_state is False


async def test_the_kill_switch_file_aborts_a_running_monkey(
    clock: FakeClock, tmp_path: Path
) -> None:
    switch = KillSwitch(tmp_path / "state")
    monkey, _, targets = monkey_with(
        clock, duration=10**6, safeguards=Safeguards(kill_switch=switch, poll_interval=2)
    )
    await monkey.astart()
    while not monkey.disrupted:
        await clock.wait_for_sleepers()
        clock.advance(1)
    switch.engage("deploy in progress")
    assert switch.reason() == "deploy in progress"
    await clock.wait_for_sleepers()
    clock.advance(2)  # seen within one poll interval
    await until(lambda: not monkey.running)
    report = monkey.last_report
    assert report is not None
    assert report.aborted
    assert str(switch.path) in report.reason
    assert not any(t.disrupted for t in targets.values())
    with pytest.raises(ChaosRefusedError, match="chaos resume"):
        await monkey.astart()
    assert switch.release()
    assert not switch.release()


async def test_max_active_caps_simultaneous_faults(clock: FakeClock) -> None:
    monkey, _, _ = monkey_with(clock, duration=10**5, safeguards=Safeguards(max_active=1))
    steps = monkey.plan(86400)
    assert {s.target for s in steps if s.action is Action.INJECT} == {"database"} or {
        s.target for s in steps if s.action is Action.INJECT
    } == {"cache"}
    assert any(s.reason == "max_active" for s in steps)


async def test_disabled_monkey_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENABLE_CHAOS", "true")
    monkey = ChaosMonkey(False)  # explicit False wins over the environment
    monkey.register_target("x", lambda: None, lambda: None)
    await monkey.astart()
    assert not monkey.running
    assert await monkey.astop() is None
    assert ChaosMonkey(None).enabled
    monkeypatch.setenv("ENABLE_CHAOS", "no")
    assert not ChaosMonkey(None).enabled
    monkeypatch.delenv("ENABLE_CHAOS")
    assert not ChaosMonkey(None).enabled
    assert not ChaosMonkey().enabled


async def test_sync_functions_run_off_the_loop(clock: FakeClock) -> None:
    loop_thread: list[bool] = []
    main = threading.get_ident()

    def disrupt() -> None:
        loop_thread.append(threading.get_ident() == main)

    monkey = ChaosMonkey(True, clock=clock, seed=1)
    monkey.register_target("x", disrupt, lambda: None, frequency=1)
    await monkey.astart()
    while not loop_thread:
        await clock.wait_for_sleepers()
        clock.advance(1)
        for _ in range(50):
            if loop_thread:
                break
            await asyncio.sleep(0.001)
    assert loop_thread[0] is False
    await monkey.astop()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frequency": 0}, "frequency: must be a positive"),
        ({"frequency": float("inf")}, "frequency: must be a positive, finite"),
        ({"duration": -1}, "duration: must be a positive"),
    ],
)
def test_bad_registration_names_the_argument(kwargs: dict[str, float], message: str) -> None:
    monkey = ChaosMonkey(True)
    with pytest.raises(ValueError, match=message):
        monkey.register_target("x", lambda: None, lambda: None, **kwargs)  # type: ignore[arg-type]


def test_bad_target_name() -> None:
    with pytest.raises(ValueError, match=r"target 'a\.\.b'"):
        ChaosMonkey(True).register_target("a..b", lambda: None, lambda: None)


def test_kill_switch_reaches_a_monkey_in_its_thread() -> None:
    clock = FakeClock()
    monkey, _, targets = monkey_with(clock, duration=10**6)
    first = next(s for s in monkey.plan(86400) if s.action is Action.INJECT)
    done = threading.Event()
    assert monkey.bus is not None
    monkey.bus.subscribe("chaos.monkey.aborted", lambda _: done.set())
    injected = threading.Event()
    monkey.bus.subscribe("chaos.*.injected", lambda _: injected.set())
    monkey.start()
    clock.advance(first.at)
    assert injected.wait(10)
    kill_switch("from another thread")
    assert done.wait(10)  # rolled back on the monkey's own loop, without stop()
    assert not targets[first.target].disrupted
    report = monkey.stop()
    assert report is not None
    assert report.aborted
    assert report.rolled_back == (first.target,)


async def test_as_component_starts_and_stops(clock: FakeClock) -> None:
    from selfheal.interfaces import Component

    monkey, _, _ = monkey_with(clock)
    component = monkey.as_component()
    assert isinstance(component, Component)
    await component.start()
    assert monkey.running
    await component.stop()
    assert not monkey.running
