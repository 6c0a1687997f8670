"""Grandchildren that leave the process group (``setsid``) still never outlive a stop."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from selfheal.events import EventBus
from selfheal.supervisor import ProcessState, ProgramSpec, Supervisor
from selfheal.testing import FakeClock
from supervisor_helpers import (
    PY,
    Recorder,
    abandon,
    alive,
    ignores_sigterm,
    kill_quietly,
    read_int,
    wait_until,
)

pytestmark = pytest.mark.anyio

# A child whose grandchild daemonizes: a new session, SIGTERM ignored.
ESCAPER = """
import os, signal, subprocess, sys, time
code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
p = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
open(sys.argv[1], "w").write(str(p.pid))
time.sleep(60)
"""


def make(tmp_path: Path, pidfile: Path, **kw: object) -> tuple[Supervisor, Recorder]:
    bus = EventBus()
    rec = Recorder(bus)
    spec = ProgramSpec("p", (PY, "-c", ESCAPER, str(pidfile)), stop_grace=2.0)
    sup = Supervisor([spec], bus=bus, state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]
    return sup, rec


async def test_stopping_a_program_ends_its_setsid_grandchild(tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    sup, _ = make(tmp_path, pidfile, leftover_grace=0.2)
    await sup.start()
    grandchild = read_int(pidfile)
    try:
        assert os.getsid(grandchild) == grandchild  # it really left the group
        await sup.stop_program("p")
        assert wait_until(lambda: not alive(grandchild), 5)
    finally:
        await sup.stop()
        kill_quietly(grandchild)


async def test_daemon_shutdown_ends_setsid_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    sup, _ = make(tmp_path, pidfile, leftover_grace=0.2)
    await sup.start()
    grandchild = read_int(pidfile)
    try:
        await sup.stop()
        assert wait_until(lambda: not alive(grandchild), 5)
    finally:
        kill_quietly(grandchild)


async def test_leftovers_of_a_dead_run_include_setsid_grandchildren(tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    sup, _ = make(tmp_path, pidfile)
    await sup.start()
    child = sup.pid("p")
    grandchild = read_int(pidfile)
    assert child is not None
    abandon(sup)  # a daemon that died: its children are left running
    sup2, rec2 = make(tmp_path, pidfile, leftover_grace=0.2)
    try:
        await sup2.start()
        ended = await rec2.wait("supervisor.leftovers.ended")
        assert grandchild in ended.data["pids"]
        os.waitpid(child, 0)  # noqa: ASYNC222 - the test process is its parent
        assert wait_until(lambda: not alive(grandchild), 5)
    finally:
        await sup2.stop()
        kill_quietly(grandchild)


async def test_stopping_a_crashed_program_ends_what_escaped_its_run(tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    bus = EventBus()
    crasher = ESCAPER.replace("time.sleep(60)\n", "sys.exit(3)\n")
    assert crasher.endswith("sys.exit(3)\n")
    spec = ProgramSpec("p", (PY, "-c", crasher, str(pidfile)), restart="never")
    sup = Supervisor([spec], bus=bus, state_dir=tmp_path / "state", leftover_grace=0.2)
    rec = Recorder(bus)
    await sup.start()
    grandchild = read_int(pidfile)
    try:
        await rec.wait("process.p.exited")
        assert alive(grandchild)  # a crash does not sweep (the restart path stays fast)
        await sup.stop_program("p")  # a stop of the EXITED program does
        assert wait_until(lambda: not alive(grandchild), 5)
    finally:
        await sup.stop()
        kill_quietly(grandchild)


async def test_the_grace_given_to_escapees_runs_on_the_supervisors_clock(tmp_path: Path) -> None:
    # The grandchild ignores SIGTERM: only the end of a 30 s grace, on the fake clock, sends
    # SIGKILL. On the real clock this test would run out of its 10 s.
    pidfile = tmp_path / "gc.pid"
    clock = FakeClock()
    sup, _ = make(tmp_path, pidfile, clock=clock, leftover_grace=30.0)
    await sup.start()
    grandchild = read_int(pidfile)
    try:
        assert wait_until(lambda: ignores_sigterm(grandchild))
        stopping = asyncio.ensure_future(sup.stop_program("p"))
        await sup.wait_for("p", ProcessState.STOPPED)
        await asyncio.sleep(0.2)  # real time: the /proc scan found it and sent SIGTERM
        assert alive(grandchild)
        assert not stopping.done()
        async with asyncio.timeout(10):
            while not stopping.done():
                clock.advance(30.0)
                await asyncio.sleep(0.01)
        assert wait_until(lambda: not alive(grandchild), 5)
    finally:
        await sup.stop()
        kill_quietly(grandchild)
