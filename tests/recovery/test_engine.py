"""Which failure events start a recovery, and what holds one back (dedup, cooldown, rate limit)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from recovery_helpers import RESTART, crash, outcomes, settle
from selfheal import Event, EventBus
from selfheal.interfaces import Component
from selfheal.recovery import (
    CallFunction,
    CallWebhook,
    DegradeFeature,
    RateLimit,
    RecoveryEngine,
    RecoveryManager,
    RestartProgram,
    Rule,
    RunCommand,
    Verify,
)
from selfheal.store import Journal
from selfheal.testing import FakeClock, FakeHealthSource, FakeProgramControl


@pytest.mark.anyio
async def test_hundred_identical_events_at_once_give_one_recovery(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = FakeProgramControl("web")
    rule = Rule(on="process.*.exited", steps=RESTART)
    async with RecoveryEngine(bus, [rule], programs=programs, clock=fclock) as eng:
        # From four threads at once, as a flood of signals would arrive.
        threads = [threading.Thread(target=lambda: [crash(bus) for _ in range(25)]) for _ in "abcd"]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        await settle(eng)
    assert programs.restarts == ["web"]
    assert outcomes(seen) == ["started", "suppressed:dedup", "succeeded"]
    assert seen[-1].data["deduplicated"] == 99


@pytest.mark.anyio
async def test_overlapping_patterns_decide_once_first_rule_wins(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = FakeProgramControl("web", "other")
    rules = [
        Rule(on="process.*.exited", when={"data.exit_code": 1}, steps=RESTART),
        Rule(on="process.*", steps=(RestartProgram("other"),)),
    ]
    async with RecoveryEngine(bus, rules, programs=programs, clock=fclock) as eng:
        crash(bus, code=1)
        await settle(eng)
        crash(bus, "x", code=2)  # only the second rule matches
        await settle(eng)
    assert programs.restarts == ["web", "other"]
    assert outcomes(seen) == ["started", "succeeded", "started", "succeeded"]
    assert seen[1].data["deduplicated"] == 0


@pytest.mark.anyio
async def test_cooldown_suppresses_then_allows(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = FakeProgramControl("web")
    rule = Rule(on="process.*.exited", steps=RESTART, cooldown=30)
    async with RecoveryEngine(bus, [rule], programs=programs, clock=fclock) as eng:
        crash(bus)
        await settle(eng)
        fclock.advance(29)
        crash(bus)
        crash(bus)  # folded into the previous suppression
        await settle(eng)
        assert programs.restarts == ["web"]
        fclock.advance(1)
        crash(bus)
        await settle(eng)
    assert programs.restarts == ["web", "web"]
    assert outcomes(seen) == ["started", "succeeded", "suppressed:cooldown", "started", "succeeded"]
    assert seen[2].data["cooldown_until"] == pytest.approx(30)


@pytest.mark.anyio
async def test_global_rate_limit(bus: EventBus, seen: list[Event], fclock: FakeClock) -> None:
    programs = FakeProgramControl("a", "b", "c")
    rule = Rule(on="process.*.exited", steps=RESTART)
    engine = RecoveryEngine(
        bus, [rule], programs=programs, clock=fclock, rate_limit=RateLimit(1 / 60, burst=1)
    )
    async with engine:
        crash(bus, "a")
        crash(bus, "b")
        await settle(engine)
        fclock.advance(60)
        crash(bus, "c")
        await settle(engine)
    assert programs.restarts == ["a", "c"]
    assert [e.type for e in seen if e.data.get("reason") == "rate_limited"] == [
        "recovery.b.suppressed"
    ]


@pytest.mark.anyio
async def test_dry_run_records_what_it_would_do(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = FakeProgramControl("web")
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        verify=Verify(("web",)),
        escalate=(CallWebhook("https://u:pw@pager.invalid/x?token=s3cret"),),
        cooldown=10,
    )
    engine = RecoveryEngine(
        bus, [rule], programs=programs, health=FakeHealthSource(), clock=fclock, dry_run=True
    )
    async with engine:
        crash(bus)
        crash(bus)
        await settle(engine)
    assert programs.restarts == []
    assert outcomes(seen) == ["suppressed:dry_run", "suppressed:cooldown"]
    plan = seen[0].data
    assert plan["dry_run"] is True
    assert plan["steps"] == [{"kind": "restart", "program": "{subject}"}]
    assert plan["verify"]["checks"] == ["web"]
    assert plan["would_escalate"][0]["url"] == "https://u:***@pager.invalid/x?token=***"
    assert "s3cret" not in json.dumps([e.to_dict() for e in seen])


@pytest.mark.anyio
async def test_retry_then_success(bus: EventBus, seen: list[Event], fclock: FakeClock) -> None:
    calls: list[int] = []

    async def flaky(event: Event) -> dict[str, int]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("not yet")
        return {"attempts": len(calls)}

    rule = Rule(on="app.*.failed", steps=(CallFunction(flaky),), retries=2, retry_delay=2)
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("app.cache.failed", "app")
        await settle(eng)
    assert outcomes(seen) == ["started", "succeeded"]
    tries = seen[1].data["tries"]
    assert tries[0]["error"] == "call failed: RuntimeError: not yet"
    assert tries[1]["result"] == {"attempts": 2}


@pytest.mark.anyio
async def test_own_reports_never_trigger_rules(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    async def boom(event: Event) -> None:
        raise RuntimeError("no")

    rule = Rule(on="*.*.failed", steps=(CallFunction(boom),), cooldown=0, flap=None)
    async with RecoveryEngine(bus, [rule], clock=fclock) as eng:
        bus.emit("health.db.failed", "health")
        await settle(eng)
        await settle(eng)
    assert outcomes(seen) == ["started", "failed", "escalated:ladder_exhausted"]


def test_missing_collaborators_are_named(bus: EventBus) -> None:
    with pytest.raises(ValueError, match="no ProgramControl"):
        RecoveryEngine(bus, [Rule(on="a.*", steps=RESTART)])
    with pytest.raises(ValueError, match="no HealthSource"):
        RecoveryEngine(bus, [Rule(on="a.*", steps=(RunCommand(("true",)),), verify=Verify(("x",)))])
    with pytest.raises(ValueError, match="no feature manager"):
        RecoveryEngine(bus, [Rule(on="a.*", steps=(DegradeFeature("x"),))])
    with pytest.raises(ValueError, match="at least one step"):
        Rule(on="a.*", steps=())
    with pytest.raises(ValueError, match="event pattern"):
        Rule(on="a..b", steps=RESTART)


def test_engine_manager_and_journal_are_components(bus: EventBus, tmp_path: Path) -> None:
    assert isinstance(RecoveryEngine(bus, []), Component)
    assert isinstance(RecoveryManager(bus), Component)
    assert isinstance(Journal(bus, tmp_path / "j.db"), Component)
