"""A recovery proves its fix: named health checks must pass within a time limit after each step."""

from __future__ import annotations

import pytest

from recovery_helpers import RESTART, crash, outcomes, settle
from selfheal import Event, EventBus
from selfheal.interfaces import HealthStatus
from selfheal.recovery import NoAction, RecoveryEngine, RestartProgram, Rule, Verify
from selfheal.testing import FakeClock, FakeHealthSource, FakeProgramControl


@pytest.mark.anyio
async def test_restart_and_verify_succeeds(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    health = FakeHealthSource()
    programs = FakeProgramControl("web", on_restart=health.set)
    rule = Rule(
        on="process.*.exited",
        when={"data.exit_code": {"ne": 0}},
        steps=RESTART,
        verify=Verify(("web",), within=10, interval=1),
    )
    async with RecoveryEngine(bus, [rule], programs=programs, health=health, clock=fclock) as eng:
        crash(bus, code=0)  # a clean exit does not match the rule
        crash(bus)
        await settle(eng)
    assert programs.restarts == ["web"]
    assert outcomes(seen) == ["started", "succeeded"]
    done = seen[-1]
    assert done.type == "recovery.web.succeeded"
    assert done.data["tries"][0]["checks"] == {"web": "pass"}
    assert done.data["recovery_id"] == seen[0].data["recovery_id"]


@pytest.mark.anyio
async def test_verified_check_names_are_templates(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    # One rule for every program: each recovery verifies the program it restarted.
    health = FakeHealthSource()
    programs = FakeProgramControl("web", "api", on_restart=health.set)
    rule = Rule(on="process.*.exited", steps=RESTART, verify=Verify(("{subject}",), within=5))
    async with RecoveryEngine(bus, [rule], programs=programs, health=health, clock=fclock) as eng:
        crash(bus, "api")
        await settle(eng)
    assert health.checked == ["api"]
    assert seen[-1].type == "recovery.api.succeeded"
    assert seen[-1].data["tries"][0]["checks"] == {"api": "pass"}


@pytest.mark.anyio
async def test_failed_verification_climbs_the_ladder(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    health = FakeHealthSource()
    # The web program only comes back once its database was restarted.
    programs = FakeProgramControl("web", "db", on_restart=lambda n: n == "db" and health.set("web"))
    rule = Rule(
        on="process.*.exited",
        steps=(RestartProgram("{subject}"), RestartProgram("db")),
        verify=Verify(("web",), within=5, interval=1),
    )
    async with RecoveryEngine(bus, [rule], programs=programs, health=health, clock=fclock) as eng:
        start = fclock.monotonic()
        crash(bus)
        await settle(eng)
    assert programs.restarts == ["web", "db"]
    assert outcomes(seen) == ["started", "escalated:step_failed", "succeeded"]
    escalated = seen[1]
    assert escalated.data["to_step"] == 1
    assert "web not passing within 5s" in escalated.data["error"]
    assert seen[-1].data["step"] == 1
    # Verification waited out its five seconds of fake time, polling every second.
    assert fclock.monotonic() - start == pytest.approx(5)
    assert health.checked.count("web") == 7  # 0..5 on step one, once on step two


@pytest.mark.anyio
async def test_a_verify_name_that_renders_to_no_check_says_so(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    # A template like "{subject}-http" for a subject without such a check used to be
    # reported as "not passing", sending operators to look at a check that does not exist.
    rule = Rule(
        on="process.*.exited",
        steps=(NoAction(),),
        verify=Verify(("{subject}-http",), within=2, interval=1),
    )
    async with RecoveryEngine(
        bus,
        [rule],
        health=FakeHealthSource({"api-http": HealthStatus.PASS}, default=None),
        clock=fclock,
    ) as eng:
        bus.emit("process.web.exited", "supervisor", "error")
        await settle(eng)
    failed = next(e for e in seen if e.type == "recovery.web.failed")
    assert "web-http" in failed.data["error"]
    assert "no such health check" in failed.data["error"]
    assert failed.data["tries"][0]["checks"] == {"web-http": "missing"}
