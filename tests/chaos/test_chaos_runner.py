"""The runner's outcomes, exit codes, timings and events, on a FakeClock (no real waiting).

The service under test is simulated by providers registered under the type ``fake``: their
outputs are functions of the fake clock, so "down for 3.5 seconds" is exact.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from selfheal.chaos import KillSwitch, Safeguards, kill_switch, release_kill_switch
from selfheal.chaos._killswitch import watch_kill_switch
from selfheal.chaos.experiment import (
    ActivityContext,
    ChaosRefusedError,
    ExperimentRunner,
    Fields,
    Outcome,
    RunRecord,
    default_registry,
    parse_experiment,
)
from selfheal.events import Event, EventBus
from selfheal.testing import FakeClock


class Fake:
    def __init__(self, name: str, fn: Callable[[ActivityContext], Any]) -> None:
        self.name = name
        self.fn = fn

    def run(self, context: ActivityContext) -> Any:
        return self.fn(context)

    def describe(self) -> str:
        return f"fake {self.name}"


class World:
    """A simulated service, the fake providers that touch it, and what they did."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.down_at: float | None = None
        self.down_for = float("inf")
        self.calls: list[tuple[str, float]] = []
        self.funcs: dict[str, Callable[[ActivityContext], Any]] = {
            "health": self.health,
            "kill": self.kill,
            "restore": self.restore,
            "noop": lambda ctx: None,
        }
        self.registry = default_registry()
        self.registry.register("fake", self._factory)

    def _factory(self, fields: Fields) -> Fake:
        name = fields.string("id", required=True)
        fn = self.funcs[name]

        def call(ctx: ActivityContext) -> Any:
            self.calls.append((name, self.clock.monotonic()))
            return fn(ctx)

        return Fake(name, call)

    def up(self) -> bool:
        if self.down_at is None:
            return True
        return self.clock.monotonic() - self.down_at >= self.down_for

    def health(self, ctx: ActivityContext) -> dict[str, int]:
        return {"status": 200 if self.up() else 503}

    def kill(self, ctx: ActivityContext) -> None:
        self.down_at = self.clock.monotonic()

    def restore(self, ctx: ActivityContext) -> None:
        self.down_at = None

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


HEADER = """
title = "service survives a kill"
name = "svc"

[steady_state]
[[steady_state.probes]]
name = "health"
provider = { type = "fake", id = "health" }
tolerance = 200

[[rollbacks]]
name = "restore"
provider = { type = "fake", id = "restore" }
"""
KILL = """
[[method]]
name = "kill"
provider = { type = "fake", id = "kill" }
"""


@pytest.fixture
def world(clock: FakeClock) -> World:
    return World(clock)


def run(world: World, text: str, top: str = "", **options: Any) -> tuple[RunRecord, list[Event]]:
    """Run HEADER + `text` (`top`: keys of the top-level table, which must come first)."""
    bus = EventBus(clock=world.clock)
    events: list[Event] = []
    bus.subscribe("chaos.*", events.append)
    experiment = parse_experiment(top + HEADER + text, registry=world.registry)
    record = ExperimentRunner(clock=world.clock, bus=bus, **options).run(experiment)
    return record, events


def types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def test_held_when_the_service_never_goes_down(world: World) -> None:
    world.funcs["kill"] = lambda ctx: None
    record, events = run(world, KILL)
    assert record.outcome is Outcome.HELD
    assert record.exit_code == 0
    assert world.names() == ["health", "kill", "health", "restore"]
    assert types(events) == ["chaos.svc.started", "chaos.svc.held", "chaos.svc.rolled_back"]
    assert record.time_to_detect is None
    assert record.after_rollback is None  # a held run needs no check after its rollbacks


def test_deviated_when_the_service_stays_down_past_the_recovery_window(world: World) -> None:
    record, events = run(world, KILL + "[recovery]\nwithin = 5\ninterval = 1\n")
    assert record.outcome is Outcome.DEVIATED
    assert record.exit_code == 1
    assert record.reason == "steady state not back within 5s"
    assert [c.elapsed for c in record.after] == [0, 1, 2, 3, 4, 5]
    assert not any(c.met for c in record.after)
    assert record.time_to_detect == 0
    assert record.time_to_recover is None
    assert types(events) == ["chaos.svc.started", "chaos.svc.deviated", "chaos.svc.rolled_back"]
    assert world.names()[-2:] == ["restore", "health"]
    assert record.after_rollback is not None
    assert record.after_rollback.met  # the rollback restored it
    assert events[-1].data["steady_state_restored"] is True


def test_not_met_before_means_exit_3_and_nothing_injected_or_rolled_back(world: World) -> None:
    world.down_at = -1.0
    record, events = run(world, KILL)
    assert record.outcome is Outcome.NOT_MET
    assert record.exit_code == 3
    assert world.names() == ["health"]
    assert record.method == []
    assert record.rollbacks == []
    assert types(events) == ["chaos.svc.started", "chaos.svc.skipped"]


def test_recovery_in_time_holds_with_exact_detect_and_recover_times(
    world: World, clock: FakeClock
) -> None:
    world.down_for = 3.5
    text = (
        KILL.replace('id = "kill" }', 'id = "kill" }\npauses = { after = 2 }')
        + "[during]\ninterval = 0.5\n[recovery]\nwithin = 10\ninterval = 1\n"
    )
    record, events = run(world, text)
    assert record.outcome is Outcome.HELD
    assert [c.elapsed for c in record.during] == [0.5, 1.0, 1.5, 2.0]
    assert not any(c.met for c in record.during)
    assert [(c.elapsed, c.met) for c in record.after] == [(2, False), (3, False), (4, True)]
    assert record.time_to_detect == pytest.approx(0.5)
    assert record.time_to_recover == pytest.approx(3.5)
    held = events[1]
    assert held.type == "chaos.svc.held"
    assert held.data["time_to_detect"] == pytest.approx(0.5)
    assert held.data["time_to_recover"] == pytest.approx(3.5)
    # No real sleeping: every wait went through the clock, in due-time slices.
    assert sum(clock.sleeps) == pytest.approx(4.0)


def test_deviation_during_the_method_with_fail_fast_stops_the_method(world: World) -> None:
    text = (
        KILL.replace('id = "kill" }', 'id = "kill" }\npauses = { after = 5 }')
        + '[[method]]\nname = "later"\nprovider = { type = "fake", id = "noop" }\n'
        + "[during]\ninterval = 1\nfail_fast = true\n"
    )
    record, _ = run(world, text)
    assert record.outcome is Outcome.DEVIATED
    assert record.reason == "steady state deviated during the method"
    assert "noop" not in world.names()
    assert world.names()[-2:] == ["restore", "health"]


def test_abort_condition_stops_the_method_and_rolls_back(world: World) -> None:
    world.funcs["guard"] = lambda ctx: world.clock.monotonic() < 1.0
    text = (
        KILL.replace('id = "kill" }', 'id = "noop" }\npauses = { after = 2 }')
        + '[[method]]\nname = "second"\nprovider = { type = "fake", id = "kill" }\n'
        + '[abort]\ninterval = 0.5\n[[abort.probes]]\nname = "guard"\n'
        + 'provider = { type = "fake", id = "guard" }\ntolerance = true\n'
    )
    record, events = run(world, text)
    assert record.outcome is Outcome.ABORTED
    assert record.exit_code == 2
    assert record.reason == "abort condition 'guard' not met"
    assert record.abort_check is not None
    assert record.abort_check.elapsed == 1.0
    assert "kill" not in world.names()
    assert types(events) == ["chaos.svc.started", "chaos.svc.aborted", "chaos.svc.rolled_back"]
    assert record.rollbacks[0].name == "restore"


def test_max_duration_aborts(world: World) -> None:
    text = KILL.replace('id = "kill" }', 'id = "kill" }\npauses = { after = 60 }')
    record, _ = run(world, text + "[abort]\nmax_duration = 3\n")
    assert record.outcome is Outcome.ABORTED
    assert record.reason == "max_duration of 3s reached"
    assert world.clock.monotonic() == 3.0
    assert "restore" in world.names()


def test_a_failing_action_is_recorded_and_the_run_goes_on(world: World) -> None:
    text = (
        '[[method]]\nname = "boom"\n[method.provider]\ntype = "python"\nmodule = "chaos_probes"\n'
        'func = "fail"\narguments = { message = "nope" }\n'
    )
    record, _ = run(world, text)
    assert record.outcome is Outcome.HELD
    assert record.method[0].status == "failed"
    assert record.method[0].error == "RuntimeError: nope"


def test_a_provider_bug_fails_its_activity_not_the_run(world: World) -> None:
    world.funcs["kill"] = lambda ctx: 1 / 0
    record, _ = run(world, KILL)
    assert record.method[0].status == "failed"
    assert record.method[0].error == "ZeroDivisionError: division by zero"
    assert record.outcome is Outcome.HELD


def test_the_seed_makes_a_run_repeatable(world: World) -> None:
    world.funcs["kill"] = lambda ctx: [ctx.random.random() for _ in range(3)]
    first, _ = run(world, KILL, seed=42)
    again, _ = run(world, KILL, seed=42)
    other, _ = run(world, KILL, seed=43)
    assert first.seed == 42
    assert first.method[0].output == again.method[0].output != other.method[0].output
    drawn, _ = run(world, KILL)
    assert isinstance(drawn.seed, int)


def test_production_is_refused_unless_allowed(world: World) -> None:
    experiment = parse_experiment(HEADER + KILL, registry=world.registry)
    prod = {"SELFHEAL_ENV": "Production"}
    with pytest.raises(ChaosRefusedError, match="SELFHEAL_ENV=production"):
        ExperimentRunner(clock=world.clock, environ=prod).run(experiment)
    assert world.calls == []
    runner = ExperimentRunner(clock=world.clock, environ=prod, allow_production=True)
    assert runner.run(experiment).outcome is Outcome.DEVIATED
    assert "kill" in world.names()


def test_secrets_never_reach_the_record() -> None:
    text = """
title = "t"
[secrets.api]
token = "tok-12345"
[[method]]
name = "leak"
provider = { type = "python", module = "chaos_probes", func = "secret_token", secrets = ["api"] }
[[method]]
name = "echo"
provider = { type = "process", path = "echo", arguments = ["${token}", "password=hunter2"] }
"""
    record = ExperimentRunner(clock=FakeClock()).run(parse_experiment(text))
    assert record.method[0].output == "tok-12345"  # the function did get it
    dumped = str(record.to_dict())
    assert "tok-12345" not in dumped
    assert "hunter2" not in dumped
    assert "***" in dumped


def test_sigterm_mid_method_rolls_back_and_restores_handlers(world: World) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def terminate_me(ctx: ActivityContext) -> None:
        world.down_at = world.clock.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)

    world.funcs["kill"] = terminate_me
    record, events = run(
        world, KILL + '[[method]]\nname = "never"\nprovider = { type = "fake", id = "noop" }\n'
    )
    assert record.outcome is Outcome.ABORTED
    assert record.interrupted_by == "SIGTERM"
    assert record.reason == "interrupted by SIGTERM; rolled back"
    assert [(r.name, r.status) for r in record.method] == [("kill", "interrupted")]
    assert "noop" not in world.names()
    assert world.names()[-2:] == ["restore", "health"]
    assert types(events)[-2:] == ["chaos.svc.aborted", "chaos.svc.rolled_back"]
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_signals_during_rollbacks_are_ignored(world: World) -> None:
    def restore_despite_sigint(ctx: ActivityContext) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        world.down_at = None

    world.funcs["restore"] = restore_despite_sigint
    record, _ = run(world, KILL)
    assert record.ignored_signals == ["SIGINT"]
    assert record.rollbacks[0].status == "succeeded"
    assert world.up()


def test_keyboard_interrupt_without_signal_handlers_still_rolls_back(world: World) -> None:
    def interrupt(ctx: ActivityContext) -> None:
        raise KeyboardInterrupt

    world.funcs["kill"] = interrupt
    record, _ = run(world, KILL, handle_signals=False)
    assert record.outcome is Outcome.ABORTED
    assert record.interrupted_by == "SIGINT"
    assert "restore" in world.names()


def test_background_activities_run_and_are_recorded(world: World) -> None:
    text = (
        '[[method]]\nname = "bg"\nbackground = true\n'
        'provider = { type = "process", path = "echo", arguments = ["bg"] }\n' + KILL
    )
    world.down_for = 0
    record, _ = run(world, text)
    assert record.outcome is Outcome.HELD
    assert [(r.name, r.background) for r in record.method] == [("kill", False), ("bg", True)]
    assert record.method[1].output["stdout"] == "bg\n"


def test_no_steady_state_just_runs_the_method(world: World) -> None:
    text = (
        'title = "explore"\n[[method]]\nname = "kill"\nprovider = { type = "fake", id = "kill" }\n'
    )
    experiment = parse_experiment(text, registry=world.registry)
    record = ExperimentRunner(clock=world.clock).run(experiment)
    assert record.outcome is Outcome.HELD
    assert record.reason == "method completed (no steady state to check)"


def test_an_empty_method_checks_the_steady_state_twice_as_chaos_toolkit_does(world: World) -> None:
    # Chaos Toolkit runs `"method": []` (a steady-state-only experiment): the hypothesis before
    # and after, then the rollbacks.
    record, events = run(world, "", top="method = []\n")
    assert record.outcome is Outcome.HELD
    assert record.method == []
    assert world.names() == ["health", "health", "restore"]
    assert types(events) == ["chaos.svc.started", "chaos.svc.held", "chaos.svc.rolled_back"]


# -- the kill switch and the time windows (Safeguards) ---------------------------------------


class SwitchAt(KillSwitch):
    """A kill-switch file that someone engages at monotonic time `at` of `clock`."""

    def __init__(self, state_dir: Path, clock: FakeClock, at: float) -> None:
        super().__init__(state_dir)
        self.clock, self.at = clock, at
        self.looks: list[float] = []

    def engaged(self) -> bool:
        self.looks.append(self.clock.monotonic())
        if self.clock.monotonic() >= self.at and not super().engaged():
            self.engage("operator at the switch")
        return super().engaged()


def test_an_engaged_kill_switch_means_the_run_does_not_start(world: World, tmp_path: Path) -> None:
    switch = KillSwitch(tmp_path)
    switch.engage("incident 12")
    record, events = run(world, KILL, safeguards=Safeguards(kill_switch=switch))
    assert record.outcome is Outcome.ABORTED
    assert record.exit_code == 2
    assert record.reason.startswith("not started: the kill switch")
    assert "selfheal chaos resume" in record.reason
    assert world.calls == []  # not even the steady state was probed
    assert types(events) == ["chaos.svc.aborted"]
    switch.release()
    record, _ = run(world, KILL, safeguards=Safeguards(kill_switch=switch))
    assert record.outcome is Outcome.DEVIATED  # released: it runs


def test_the_in_process_kill_switch_is_honoured_without_safeguards(world: World) -> None:
    kill_switch("test")
    try:
        record, _ = run(world, KILL)
    finally:
        release_kill_switch()
    assert record.outcome is Outcome.ABORTED
    assert "in-process kill switch" in record.reason
    assert world.calls == []


def test_a_kill_switch_engaged_by_an_activity_aborts_at_the_next_check(
    world: World, tmp_path: Path
) -> None:
    switch = KillSwitch(tmp_path)

    def kill_then_engage(ctx: ActivityContext) -> None:
        world.kill(ctx)
        switch.engage("seen it go wrong")

    world.funcs["kill"] = kill_then_engage
    text = KILL + '[[method]]\nname = "never"\nprovider = { type = "fake", id = "noop" }\n'
    record, events = run(world, text, safeguards=Safeguards(kill_switch=switch))
    assert record.outcome is Outcome.ABORTED
    assert record.interrupted_by == "kill switch"
    assert record.reason.endswith(
        "is engaged; 'selfheal chaos resume' (or deleting the file) lifts it; rolled back"
    )
    assert "noop" not in world.names()
    assert world.names()[-2:] == ["restore", "health"]  # rolled back, then checked
    assert record.after_rollback is not None
    assert record.after_rollback.met
    assert types(events)[-2:] == ["chaos.svc.aborted", "chaos.svc.rolled_back"]


def test_a_wait_wakes_every_poll_interval_to_look_at_the_switch(
    world: World, clock: FakeClock, tmp_path: Path
) -> None:
    switch = SwitchAt(tmp_path, clock, at=5.5)
    text = KILL.replace('id = "kill" }', 'id = "kill" }\npauses = { after = 30 }')
    safeguards = Safeguards(kill_switch=switch, poll_interval=2)
    record, _ = run(world, text, safeguards=safeguards)
    assert record.outcome is Outcome.ABORTED
    assert record.interrupted_by == "kill switch"
    assert ("restore", 6.0) in world.calls  # seen at the first look after 5.5, not at 30
    assert [t for t in switch.looks if 0 < t <= 6] == [2.0, 4.0, 6.0]


def test_a_run_does_not_outlive_its_time_window(world: World, clock: FakeClock) -> None:
    now = dt.datetime.fromtimestamp(clock.time())
    window = f"{now:%H:%M}-{now + dt.timedelta(minutes=1):%H:%M}"
    left = 60 - now.second
    text = KILL.replace('id = "kill" }', 'id = "kill" }\npauses = { after = 300 }')
    record, _ = run(world, text, safeguards=Safeguards(windows=(window,)))
    assert record.outcome is Outcome.ABORTED
    assert record.reason == "the time window the run started in is over; rolled back"
    assert ("restore", float(left)) in world.calls
    later = f"{now + dt.timedelta(minutes=5):%H:%M}-{now + dt.timedelta(minutes=6):%H:%M}"
    record, _ = run(world, KILL, safeguards=Safeguards(windows=(later,)))
    assert record.outcome is Outcome.ABORTED
    assert record.reason.startswith("not started: outside every time window")


def test_the_kill_switch_interrupts_a_blocked_activity(world: World, tmp_path: Path) -> None:
    switch = KillSwitch(tmp_path)
    blocked = threading.Event()

    def block(ctx: ActivityContext) -> None:
        world.kill(ctx)
        blocked.set()
        threading.Event().wait(30)  # a fault that holds: only an interruption ends it

    def operator() -> None:
        blocked.wait(10)
        switch.engage("enough")

    world.funcs["kill"] = block
    helper = threading.Thread(target=operator)
    helper.start()
    started = time.monotonic()
    record, _ = run(world, KILL, safeguards=Safeguards(kill_switch=switch, poll_interval=0.05))
    helper.join()
    assert time.monotonic() - started < 10
    assert record.outcome is Outcome.ABORTED
    assert record.interrupted_by == "kill switch"
    assert [(r.name, r.status) for r in record.method] == [("kill", "interrupted")]
    assert world.names()[-2:] == ["restore", "health"]
    assert record.ignored_signals == []  # the guard's own SIGTERM is not a person's


def test_the_in_process_kill_switch_interrupts_a_blocked_activity_at_once(
    world: World,
) -> None:
    def block(ctx: ActivityContext) -> None:
        world.kill(ctx)
        threading.Timer(0.1, kill_switch, args=("from another thread",)).start()
        threading.Event().wait(30)

    world.funcs["kill"] = block
    started = time.monotonic()
    try:
        record, _ = run(world, KILL, safeguards=Safeguards(poll_interval=60))
    finally:
        release_kill_switch()
    assert time.monotonic() - started < 10  # not after the 60 s poll interval
    assert record.interrupted_by == "kill switch"
    assert "from another thread" in record.reason
    assert "restore" in world.names()


def test_the_in_process_switch_engaged_by_an_activity_aborts_without_a_stray_signal(
    world: World,
) -> None:
    told: list[str] = []
    unwatch = watch_kill_switch(told.append)  # another watcher must be told too

    def kill_then_engage(ctx: ActivityContext) -> None:
        world.kill(ctx)
        kill_switch("the activity saw enough")

    world.funcs["kill"] = kill_then_engage
    text = KILL + '[[method]]\nname = "never"\nprovider = { type = "fake", id = "noop" }\n'
    try:
        record, _ = run(world, text)
    finally:
        release_kill_switch()
        unwatch()
    assert told == ["the activity saw enough"]
    assert record.interrupted_by == "kill switch"
    assert [(r.name, r.status) for r in record.method] == [("kill", "succeeded")]
    assert record.ignored_signals == []
    assert "noop" not in world.names()
    assert world.names()[-2:] == ["restore", "health"]
