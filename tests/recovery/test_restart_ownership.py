"""One owner of each restart: the supervisor restarts its programs, rules defer to it.

Real child processes under a real `Supervisor`, a `RecoveryEngine` with the documented rule
``process.*.exited -> restart {subject}`` on the same bus, and a `FakeClock` that holds every
backoff until the test advances it. One exit must give one restart (the supervisor's), a rule
must never cut a backoff short, and when the supervisor gives up (FATAL) the rule escalates.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from selfheal.events import Event
from selfheal.recovery import CallFunction, RecoveryEngine, RestartProgram, Rule
from selfheal.supervisor import BackoffSpec, IntensitySpec, ProcessState, ProgramSpec, Supervisor
from selfheal.testing import FakeClock
from supervisor_helpers import PY, SLEEP, Recorder, alive, make

pytestmark = pytest.mark.anyio

CRASH = (PY, "-c", "import sys; sys.exit(3)")
#: The second consecutive restart waits 30 s, the third 60 s (on the fake clock).
SLOW = BackoffSpec(initial=30.0, factor=2.0, maximum=60.0, jitter=0.0, reset_after=600.0)


def restart_rule(**kw: object) -> Rule:
    return Rule(
        on="process.*.exited",
        when={"data.expected": {"ne": True}},
        steps=(RestartProgram("{subject}"),),
        cooldown=0,
        flap=None,
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class World:
    sup: Supervisor
    rec: Recorder
    clock: FakeClock
    engine: RecoveryEngine


@contextlib.asynccontextmanager
async def supervised(tmp_path: Path, prog: ProgramSpec, rule: Rule) -> AsyncIterator[World]:
    """Run `prog` under a supervisor and `rule` in an engine on one bus and one fake clock."""
    clock = FakeClock()
    sup, rec = make(tmp_path, prog, clock=clock)
    engine = RecoveryEngine(sup.bus, [rule], programs=sup, clock=clock)
    await sup.start()
    await engine.start()
    try:
        yield World(sup, rec, clock, engine)
    finally:
        await engine.stop()
        await sup.stop()


async def nothing_more(rec: Recorder, type_: str, count: int) -> bool:
    """Return True if no `count`-th event of `type_` comes within half a second."""
    try:
        await rec.wait(type_, count, within=0.5)
    except TimeoutError:
        return True
    return False


async def test_one_exit_gives_one_restart(tmp_path: Path) -> None:
    async with supervised(tmp_path, ProgramSpec("web", SLEEP, backoff=SLOW), restart_rule()) as w:
        await w.rec.wait("process.web.ready")
        first = w.sup.pid("web")
        assert first is not None
        os.kill(first, signal.SIGKILL)
        done = await w.rec.wait("recovery.web.succeeded")
        await w.engine.wait_idle()
        # The supervisor restarted it at once (its first restart after a good run); the rule
        # saw that exit as handled and restarted nothing itself.
        assert len(w.rec.of("process.web.started")) == 2
        assert len(w.rec.of("process.web.exited")) == 1
        second = w.sup.pid("web")
        assert second not in (None, first)
        assert alive(second)  # type: ignore[arg-type]
        (started,) = w.rec.of("recovery.web.started")
        assert started.data["handled_by"] == "supervisor"
        assert done.data["tries"][0]["result"] == {"program": "web", "restarted_by": "supervisor"}


async def test_a_rule_never_cuts_the_supervisors_backoff_short(tmp_path: Path) -> None:
    prog = ProgramSpec(
        "crashy", CRASH, backoff=SLOW, intensity=IntensitySpec(max_restarts=10, window=1000)
    )
    async with supervised(tmp_path, prog, restart_rule(timeout=1000)) as w:
        # Run 1 exits, restart 1 is immediate, run 2 exits: now a 30 s backoff.
        backoff = await w.rec.wait("process.crashy.backoff", 2)
        assert backoff.data["delay"] == 30.0
        await w.rec.wait("recovery.crashy.started")
        assert await nothing_more(w.rec, "process.crashy.started", 3)
        assert w.sup.state("crashy") is ProcessState.BACKOFF
        # Whatever the rule's recoveries did meanwhile, they waited for the supervisor.
        assert all(
            e.data["tries"][0]["result"]["restarted_by"] == "supervisor"
            for e in w.rec.of("recovery.crashy.succeeded")
        )

        # The backoff ends on the clock: the supervisor starts run 3, and the rule's step,
        # which waited for it, succeeds.
        succeeded = len(w.rec.of("recovery.crashy.succeeded"))
        await w.clock.wait_for_sleepers()
        w.clock.advance(30.0)
        await w.rec.wait("process.crashy.started", 3)
        done = await w.rec.wait("recovery.crashy.succeeded", succeeded + 1)
        assert done.data["tries"][0]["result"]["restarted_by"] == "supervisor"
        await w.rec.wait("process.crashy.backoff", 3)
        assert [e.data["delay"] for e in w.rec.of("process.crashy.backoff")] == [0.0, 30.0, 60.0]
        assert await nothing_more(w.rec, "process.crashy.started", 4)


async def test_a_health_triggered_restart_waits_for_a_restart_under_way(tmp_path: Path) -> None:
    prog = ProgramSpec(
        "crashy", CRASH, backoff=SLOW, intensity=IntensitySpec(max_restarts=10, window=1000)
    )
    rule = Rule(
        on="health.*.failed", steps=(RestartProgram("crashy"),), cooldown=0, flap=None, timeout=1000
    )
    async with supervised(tmp_path, prog, rule) as w:
        await w.rec.wait("process.crashy.backoff", 2)
        # A check of the program fails while the supervisor is backing off: restarting now
        # would skip the backoff, so the rule waits for the restart under way.
        w.sup.bus.emit("health.crashy-http.failed", "health", "error", check="crashy-http")
        await w.rec.wait("recovery.crashy-http.started")
        assert await nothing_more(w.rec, "process.crashy.started", 3)
        await w.clock.wait_for_sleepers()
        w.clock.advance(30.0)
        done = await w.rec.wait("recovery.crashy-http.succeeded")
        assert done.data["tries"][0]["result"]["restarted_by"] == "supervisor"
        assert len(w.rec.of("process.crashy.started")) == 3


async def test_the_rule_escalates_when_the_supervisor_gives_up(tmp_path: Path) -> None:
    prog = ProgramSpec(
        "crashy", CRASH, backoff=SLOW, intensity=IntensitySpec(max_restarts=1, window=1000)
    )
    told: list[Event] = []
    rule = restart_rule(escalate=(CallFunction(told.append, name="page"),))
    async with supervised(tmp_path, prog, rule) as w:
        await w.rec.wait("process.crashy.fatal")
        escalated = await w.rec.wait("recovery.crashy.escalated")
        assert escalated.data["reason"] == "ladder_exhausted"
        failed = w.rec.of("recovery.crashy.failed")[-1]
        assert "gave up" in failed.data["error"]
        assert "FATAL" in failed.data["error"]
        assert [e.type for e in told] == ["process.crashy.exited"]
        # Two runs: the start and the supervisor's one restart; the rule started nothing.
        assert await nothing_more(w.rec, "process.crashy.started", 3)
        assert w.sup.state("crashy") is ProcessState.FATAL


async def test_a_program_the_supervisor_never_restarts_is_restarted_by_the_rule(
    tmp_path: Path,
) -> None:
    async with supervised(
        tmp_path, ProgramSpec("web", SLEEP, restart="never"), restart_rule()
    ) as w:
        await w.rec.wait("process.web.ready")
        first = w.sup.pid("web")
        assert first is not None
        os.kill(first, signal.SIGKILL)
        done = await w.rec.wait("recovery.web.succeeded")
        (started,) = w.rec.of("recovery.web.started")
        assert "handled_by" not in started.data
        assert done.data["tries"][0]["result"] == {"program": "web"}
        assert len(w.rec.of("process.web.started")) == 2
        assert w.sup.state("web") is ProcessState.RUNNING
