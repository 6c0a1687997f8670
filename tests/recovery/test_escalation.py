"""When automatic action stops (ladder exhausted, breaker open, flapping), a person is told."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from recovery_helpers import RESTART, crash, outcomes, pager, settle
from selfheal import Event, EventBus
from selfheal.recovery import (
    ActionContext,
    CallFunction,
    FlapPolicy,
    NoAction,
    RecoveryEngine,
    Rule,
    Verify,
)
from selfheal.testing import FakeClock, FakeHealthSource, FakeProgramControl


@pytest.mark.anyio
async def test_exhausted_ladder_fails_and_pages_a_person(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    paged: list[str] = []
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        verify=Verify(("web",), within=2, interval=1),
        escalate=(CallFunction(pager(paged, "type"), name="pager"),),
        retries=1,
        retry_delay=3,
    )
    engine = RecoveryEngine(
        bus, [rule], programs=FakeProgramControl("web"), health=FakeHealthSource(), clock=fclock
    )
    async with engine:
        crash(bus)
        await settle(engine)
    assert outcomes(seen) == ["started", "failed", "escalated:ladder_exhausted"]
    assert paged == ["process.web.exited"]
    failed = seen[1]
    assert len(failed.data["tries"]) == 2
    assert "verification failed" in failed.data["error"]
    assert 3 in fclock.sleeps  # the retry delay, on the fake clock
    notified = seen[2].data["notified"]
    assert notified[0]["ok"]
    assert notified[0]["action"] == {"kind": "call", "function": "pager"}


@pytest.mark.anyio
async def test_breaker_stops_after_k_failed_recoveries(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    programs = FakeProgramControl("web")
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        verify=Verify(("web",), within=1, interval=1),
        cooldown=0,
        breaker_failures=2,
        breaker_reset=300,
        flap=None,
    )
    async with RecoveryEngine(
        bus, [rule], programs=programs, health=FakeHealthSource(), clock=fclock
    ) as e:
        for _ in range(3):
            crash(bus)
            await settle(e)
        assert e.status("web")["failures"] == 2
    assert programs.restarts == ["web", "web"]
    assert outcomes(seen) == [
        "started",
        "failed",
        "escalated:ladder_exhausted",
        "started",
        "failed",
        "escalated:breaker_open",
        "suppressed:breaker_open",
    ]


@pytest.mark.anyio
async def test_flapping_subject_is_left_alone_and_escalated(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    paged: list[str] = []
    programs = FakeProgramControl("web")
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        cooldown=0,
        flap=FlapPolicy(window=300, high=4, low=1),
        escalate=(CallFunction(pager(paged)),),
    )
    async with RecoveryEngine(bus, [rule], programs=programs, clock=fclock) as eng:
        for _ in range(4):
            crash(bus)
            await settle(eng)
            fclock.advance(10)
        assert eng.status("web")["flapping"]
        fclock.advance(300)  # the changes age out of the window: automatic action resumes
        crash(bus)
        await settle(eng)
    assert programs.restarts == ["web", "web", "web"]
    assert outcomes(seen) == [
        "started",
        "succeeded",
        "started",
        "succeeded",
        "suppressed:flapping",
        "escalated:flapping",
        # the fourth crash repeats the same suppression: counted, not published again
        "started",
        "succeeded",
    ]
    assert paged == ["web"]


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
        steps=(NoAction(),),
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


@pytest.mark.anyio
async def test_dry_run_never_notifies_but_says_whom_it_would(
    bus: EventBus, seen: list[Event], fclock: FakeClock
) -> None:
    paged: list[str] = []
    rule = Rule(
        on="process.*.exited",
        steps=RESTART,
        flap=FlapPolicy(window=100, high=4, low=1),
        escalate=(CallFunction(pager(paged), name="pager"),),
    )
    engine = RecoveryEngine(
        bus, [rule], programs=FakeProgramControl("web"), clock=fclock, dry_run=True
    )
    async with engine:
        # Health seen elsewhere flips the subject: bad, good, bad, good.
        for good in (False, True, False, True):
            engine.observe("web", good=good)
        crash(bus)
        await settle(engine)
    assert outcomes(seen) == ["suppressed:flapping", "escalated:flapping"]
    assert paged == []
    assert seen[1].data["notified"] == [
        {"ok": None, "would_run": {"kind": "call", "function": "pager"}}
    ]
