"""Recovery defects found in review: a stuck dedup key, secrets in recorded errors."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import sys
import threading
from collections.abc import Mapping
from typing import Any

import pytest

from selfheal import Event, EventBus
from selfheal.interfaces import HealthStatus
from selfheal.recovery import (
    CallFunction,
    FlapPolicy,
    RecoveryEngine,
    RecoveryManager,
    Rule,
    RunCommand,
    Verify,
)
from selfheal.recovery._actions import ActionContext
from selfheal.testing import FakeClock


@pytest.fixture
def fclock() -> FakeClock:
    return FakeClock(autojump=True)


@pytest.fixture
def bus(fclock: FakeClock) -> EventBus:
    return EventBus(clock=fclock)


@pytest.fixture
def seen(bus: EventBus) -> list[Event]:
    out: list[Event] = []
    bus.subscribe("recovery.*", out.append)
    return out


async def settle(engine: RecoveryEngine) -> None:
    for _ in range(5):
        await asyncio.sleep(0)
    await engine.wait_idle()


def outcomes(events: list[Event]) -> list[str]:
    return [
        e.type.rsplit(".", 1)[1] + (f":{e.data['reason']}" if "reason" in e.data else "")
        for e in events
    ]


class ReturnsOdd:
    """A user-written action (the `Action` protocol) whose run returns a non-mapping."""

    kind = "odd"

    def __init__(self, value: object) -> None:
        self.value = value
        self.runs = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        self.runs += 1
        return self.value  # type: ignore[return-value]


class RaisesSynchronously:
    """An action whose `run` is a plain function that raises before any awaitable exists."""

    kind = "sync"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        raise RuntimeError("boom before any await")


@pytest.mark.anyio
@pytest.mark.parametrize("value", [True, "restarted", 1, ["a"]])
async def test_an_action_returning_a_non_mapping_does_not_hold_the_subject_forever(
    bus: EventBus, seen: list[Event], fclock: FakeClock, value: object
) -> None:
    # dict(result) raised outside the action's error handling: the recovery task died
    # without ending the run, so the subject stayed "active" and every later failure of it
    # was suppressed as a duplicate, for ever.
    action = ReturnsOdd(value)
    rule = Rule(on="process.*.exited", steps=(action,), cooldown=0)
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
        assert eng.active == {}
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
    assert action.runs == 2
    assert outcomes(seen) == ["started", "succeeded", "started", "succeeded"]


@pytest.mark.anyio
async def test_an_action_raising_synchronously_fails_the_recovery_and_releases_it(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    rule = Rule(on="process.*.exited", steps=(RaisesSynchronously(),), cooldown=0)  # type: ignore[arg-type]
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
        assert eng.active == {}
    assert outcomes(seen) == ["started", "failed", "escalated:ladder_exhausted"] * 2
    assert "boom before any await" in seen[1].data["error"]


DSN = "postgresql://app:hunter2@db.internal:5432/app"


@pytest.mark.anyio
async def test_secrets_in_action_errors_and_output_never_reach_events() -> None:
    # The events go to the journal, which only masks secret-looking keys, never strings:
    # a command's output or an exception message holding a DSN was stored as it was.
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("recovery.*", seen.append)

    async def connect(event: Event) -> None:
        raise ConnectionError(f"cannot connect to {DSN}")

    fails = f"import sys; print('using {DSN} password=hunter2'); sys.exit(2)"
    works = f"print('reconnected to {DSN}')"
    rules = [
        Rule(on="a.*.failed", steps=(RunCommand((sys.executable, "-c", fails)),), timeout=20),
        Rule(on="b.*.failed", steps=(RunCommand((sys.executable, "-c", works)),), timeout=20),
        Rule(on="c.*.failed", steps=(CallFunction(connect),)),
        Rule(
            on="d.*.failed",
            steps=(RunCommand(("true", "--password", "hunter2", "--token=hunter2")),),
        ),
    ]
    async with RecoveryEngine(bus, rules) as eng:
        for name in "abcd":
            bus.emit(f"{name}.s{name}.failed", "t")
        await settle(eng)
    text = json.dumps([e.to_dict() for e in seen])
    assert "hunter2" not in text
    assert "app:***@db.internal" in text  # what it was about is still there
    assert len([e for e in seen if e.type.endswith((".failed", ".succeeded"))]) == 4


def test_recovery_manager_redacts_the_error_it_publishes() -> None:
    bus = EventBus()
    failed: list[Event] = []
    bus.subscribe("db.failed.recovery_failed", failed.append)
    manager = RecoveryManager(bus)

    def recover(event: Event) -> None:
        raise ConnectionError(f"cannot connect to {DSN}")

    manager.register_recovery("db.failed", recover)
    bus.emit("db.failed", "app")
    assert manager.wait(5)
    assert len(failed) == 1
    assert "hunter2" not in failed[0].data["error"]


def test_recovery_manager_releases_the_key_when_the_recovery_exits() -> None:
    # SystemExit (or KeyboardInterrupt) in a recovery thread skipped the bookkeeping: the
    # (type, source) stayed "in progress" and that failure was never recovered again.
    bus = EventBus()
    manager = RecoveryManager(bus)
    calls: list[int] = []

    def recover(event: Event) -> None:
        calls.append(1)
        if len(calls) == 1:
            sys.exit(3)

    manager.register_recovery("db.failed", recover)
    bus.emit("db.failed", "app")
    assert manager.wait(5)
    bus.emit("db.failed", "app")
    assert manager.wait(5)
    assert len(calls) == 2


@pytest.mark.anyio
async def test_a_hung_sync_recovery_function_does_not_take_a_shared_pool_worker() -> None:
    # Sync functions ran in the loop's default executor: one that hangs past the rule's
    # timeout kept its worker for good, and a few of them starved everything else that
    # uses asyncio.to_thread (the journal's and the engine's own shutdown among them).
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(pool)
    release = threading.Event()
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("recovery.*", seen.append)

    def hang(event: Event) -> None:
        release.wait(10)

    rule = Rule(on="app.*.failed", steps=(CallFunction(hang),), timeout=0.05)
    try:
        async with RecoveryEngine(bus, [rule]) as eng:
            bus.emit("app.x.failed", "t")
            await settle(eng)
            assert "timed out" in seen[1].data["error"]
            assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), 2) == 42
    finally:
        release.set()
        pool.shutdown(wait=False)


class Records:
    """An escalation action that records the template fields it was given."""

    kind = "record"

    def __init__(self) -> None:
        self.fields: list[dict[str, str]] = []

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind}

    async def run(self, ctx: ActionContext) -> Mapping[str, Any] | None:
        self.fields.append(dict(ctx.fields))
        return None


@pytest.mark.anyio
async def test_a_flapping_escalation_fills_key_like_every_other_one(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    # Escalations for flapping were given the event's fields without "key", so a pager
    # URL or command using {key} got the literal text "{key}".
    pager = Records()
    rule = Rule(
        on="process.*.exited",
        steps=(ReturnsOdd(None),),
        escalate=(pager,),
        dedup_key="host-1/{subject}",
        cooldown=0,
        flap=FlapPolicy(window=100, high=2, low=0),
    )
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
    assert outcomes(seen)[-2:] == ["suppressed:flapping", "escalated:flapping"]
    assert [f["key"] for f in pager.fields] == ["host-1/web"]


class NamedHealth:
    """A HealthSource that knows only `names`, as ProgramHealth knows only its programs."""

    def __init__(self, *names: str) -> None:
        self.names = set(names)

    def status(self, name: str) -> HealthStatus:
        if name not in self.names:
            raise KeyError(name)
        return HealthStatus.PASS

    async def check_now(self, name: str) -> HealthStatus:
        return self.status(name)


@pytest.mark.anyio
async def test_a_verify_name_that_renders_to_no_check_says_so(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    # A template like "{subject}-http" for a subject without such a check used to be
    # reported as "not passing", sending operators to look at a check that does not exist.
    rule = Rule(
        on="process.*.exited",
        steps=(ReturnsOdd(None),),
        verify=Verify(("{subject}-http",), within=2, interval=1),
    )
    async with RecoveryEngine(bus, [rule], health=NamedHealth("api-http"), clock=fclock) as eng:
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
    failed = next(e for e in seen if e.type == "recovery.web.failed")
    assert "web-http" in failed.data["error"]
    assert "no such health check" in failed.data["error"]
    assert failed.data["tries"][0]["checks"] == {"web-http": "missing"}
