"""`ProgramHealth`: supervised programs as the health checks recovery rules verify with."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfheal.events import EventBus
from selfheal.interfaces import HealthStatus
from selfheal.supervisor import ProbeSpec, ProcessState, ProgramHealth, ProgramSpec, Supervisor
from selfheal.testing import FakeClock
from supervisor_helpers import SLEEP

pytestmark = pytest.mark.anyio
H = HealthStatus


def make(tmp_path: Path, *specs: ProgramSpec, clock: FakeClock | None = None) -> Supervisor:
    clock = clock or FakeClock()
    return Supervisor(specs, bus=EventBus(clock=clock), clock=clock, state_dir=tmp_path / "s")


async def test_numprocs_stopped_and_unknown_programs(tmp_path: Path) -> None:
    clock = FakeClock()
    sup = make(
        tmp_path,
        ProgramSpec("w", SLEEP, numprocs=2),
        ProgramSpec("off", SLEEP, autostart=False),
        clock=clock,
    )
    health = ProgramHealth(sup, settle=0.0)
    assert health.status("w") is H.UNKNOWN  # not started: nothing to report on
    await sup.start()
    try:
        assert health.status("w") is H.PASS
        assert health.status("w:1") is H.PASS
        assert health.status("off") is H.FAIL
        assert await health.check_now("off") is H.FAIL
        assert health.status("nope") is H.UNKNOWN
        assert await health.check_now("nope") is H.UNKNOWN
        await sup.stop_program("w:1")
        assert health.status("w") is H.FAIL  # one process of two is down
        assert health.status("w:0") is H.PASS
        assert health.status("w:1") is H.FAIL
    finally:
        await sup.stop()


async def test_a_program_without_probes_passes_only_once_it_stayed_up(tmp_path: Path) -> None:
    # A restart of a program that dies during its start-up (a bad config, a missing file) is
    # RUNNING at once when it is ready at spawn: that alone proves nothing.
    clock = FakeClock()
    sup = make(tmp_path, ProgramSpec("a", SLEEP), clock=clock)
    health = ProgramHealth(sup, settle=1.0)
    await sup.start()
    try:
        assert sup.state("a") is ProcessState.RUNNING
        assert health.status("a") is H.FAIL
        assert await health.check_now("a") is H.FAIL
        clock.advance(1.0)
        assert health.status("a") is H.PASS
        assert await health.check_now("a") is H.PASS
    finally:
        await sup.stop()


async def test_probe_or_notify_readiness_is_proof_enough(tmp_path: Path) -> None:
    clock = FakeClock()
    probe = ProbeSpec("command", argv=("true",), interval=0.01)
    sup = make(tmp_path, ProgramSpec("p", SLEEP, ready="probe", readiness=probe), clock=clock)
    health = ProgramHealth(sup, settle=1.0)
    await sup.start()
    try:
        await sup.wait_for("p", ProcessState.RUNNING)
        assert health.status("p") is H.PASS
        assert await health.check_now("p") is H.PASS
    finally:
        await sup.stop()
