"""Process faults on real child processes that the tests start themselves.

Every process signalled here is a ``sleep`` child of this test (or a program of a Supervisor
this test runs); nothing else is ever touched. The dead-man tests wait on real time, because
the guardian is another process: their limits are a fraction of a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfheal.chaos import ChaosMonkey, KillProcess, ProgramPids, StopProcess
from selfheal.events import EventBus
from selfheal.supervisor import ProcessState, ProgramSpec, Supervisor
from selfheal.testing import FakeClock
from supervisor_helpers import Recorder, wait_until

pytestmark = pytest.mark.anyio


def state(pid: int) -> str:
    """Return the process state letter from /proc (R, S, T for stopped, Z...), "" if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2]


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
    proc.wait()


async def test_stop_and_resume_a_child(child: subprocess.Popen[bytes]) -> None:
    fault = StopProcess(child.pid, grace=30)
    await fault.inject(limit=60)
    assert wait_until(lambda: state(child.pid) == "T")
    assert fault.guardian is not None
    guardian = fault.guardian
    await fault.rollback()
    assert wait_until(lambda: state(child.pid) in {"S", "R"})
    assert guardian.returncode is not None  # the guardian was ended and reaped
    assert fault.guardian is None
    await fault.rollback()  # a second rollback (SIGCONT again) is harmless
    assert child.poll() is None


async def test_kill_a_child(child: subprocess.Popen[bytes]) -> None:
    await KillProcess(lambda: child.pid).inject()
    assert child.wait(timeout=10) == -signal.SIGKILL
    await KillProcess(child.pid).rollback()  # a bare pid has nothing to start again


async def test_the_guardian_resumes_when_nobody_rolls_back(
    child: subprocess.Popen[bytes],
) -> None:
    fault = StopProcess(child.pid, grace=0.05)
    await fault.inject(limit=0.2)
    assert wait_until(lambda: state(child.pid) == "T")
    assert fault.guardian is not None
    assert fault.guardian.wait(timeout=10) == 0  # it sent SIGCONT and left
    assert wait_until(lambda: state(child.pid) in {"S", "R"})
    await fault.rollback()


def test_a_fault_outlives_a_sigkilled_injector_only_until_its_limit(
    child: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    # The injector is a separate process that stops our child and dies by SIGKILL at once.
    src = Path(__file__).resolve().parents[2] / "src"
    code = (
        "import asyncio, os, signal, sys\n"
        f"sys.path.insert(0, {str(src)!r})\n"
        "from selfheal.chaos import StopProcess\n"
        f"asyncio.run(StopProcess({child.pid}, grace=0.1).inject(limit=3.0))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    injector = subprocess.run([sys.executable, "-c", code], check=False, timeout=30)
    assert injector.returncode == -signal.SIGKILL
    assert state(child.pid) == "T"  # the injector is gone, the fault is still in place
    assert wait_until(lambda: state(child.pid) in {"S", "R"}, timeout=10)
    assert child.poll() is None


async def test_refuses_to_signal_itself_init_or_its_own_group(
    child: subprocess.Popen[bytes],
) -> None:
    with pytest.raises(PermissionError, match="refusing"):
        await StopProcess(os.getpid()).inject()
    with pytest.raises(PermissionError, match="refusing"):
        await KillProcess(1).inject()
    # The child shares the test's process group: signalling that group would hit the test.
    with pytest.raises(PermissionError, match="own group"):
        await KillProcess(child.pid, group=True).inject()
    assert child.poll() is None


def test_needs_exactly_one_target() -> None:
    with pytest.raises(TypeError, match="exactly one"):
        KillProcess()
    with pytest.raises(TypeError, match="pid\\(name\\)"):
        KillProcess(program="web", control=object())  # type: ignore[arg-type]


async def test_monkey_kills_a_supervised_program_and_it_heals(tmp_path: Path) -> None:
    clock = FakeClock()
    bus = EventBus(clock=clock)
    rec = Recorder(bus)
    spec = ProgramSpec(name="worker", command=("sleep", "60"))
    sup = Supervisor([spec], bus=bus, state_dir=tmp_path / "state", clock=clock)
    assert isinstance(sup, ProgramPids)
    await sup.start()
    try:
        await sup.wait_for("worker", ProcessState.RUNNING)
        first = sup.pid("worker")
        assert first is not None
        monkey = ChaosMonkey(True, clock=clock, bus=bus, seed=3, duration=30)
        monkey.register_fault("worker", KillProcess(program="worker", control=sup), frequency=60)
        at = monkey.plan(3600)[0].at
        await monkey.astart()
        await clock.wait_for_sleepers()
        clock.advance(at)
        await rec.wait("chaos.worker.injected")
        await rec.wait("process.worker.exited")
        await rec.wait("process.worker.started", count=2)
        assert sup.pid("worker") not in {None, first}
        report = await monkey.astop()
        assert report is not None
        assert report.rolled_back == ("worker",)  # start_program: already running again
        assert sup.state("worker") is ProcessState.RUNNING
    finally:
        await sup.stop()


async def test_monkey_stops_a_program_and_resumes_it_at_the_limit(
    child: subprocess.Popen[bytes],
) -> None:
    clock = FakeClock()
    bus = EventBus(clock=clock)
    rec = Recorder(bus)
    monkey = ChaosMonkey(True, clock=clock, bus=bus, seed=4, duration=20)
    monkey.register_fault("sleeper", StopProcess(child.pid, grace=60), frequency=100)
    inject, rollback = monkey.plan(1000)[:2]
    await monkey.astart()
    await clock.wait_for_sleepers()
    clock.advance(inject.at)
    await rec.wait("chaos.sleeper.injected")
    assert wait_until(lambda: state(child.pid) == "T")
    await clock.wait_for_sleepers()
    clock.advance(rollback.at - clock.monotonic())
    await rec.wait("chaos.sleeper.rolled_back")
    assert wait_until(lambda: state(child.pid) in {"S", "R"})
    await monkey.astop()
