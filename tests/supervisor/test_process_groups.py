"""Each program leads a process group: signals reach the whole group, nothing outlives it."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from selfheal.supervisor import ProcessState, ProgramSpec
from selfheal.testing import FakeClock
from supervisor_helpers import (
    FAST,
    PY,
    SLEEP,
    alive,
    ignores_sigterm,
    kill_quietly,
    make,
    read_int,
    wait_until,
)

pytestmark = pytest.mark.anyio
S = ProcessState


async def test_grandchildren_die_with_their_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    prog = ProgramSpec("parent", (PY, "-c", script), restart="never")
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        grandchild = read_int(pidfile)
        assert alive(grandchild)
        pid = sup.pid("parent")
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # only the parent: the grandchild must not be left
        await rec.wait("process.parent.exited")
        await asyncio.sleep(0)
        for _ in range(200):
            if not alive(grandchild):
                break
            await asyncio.sleep(0.01)
        assert not alive(grandchild)
    finally:
        await sup.stop()
        kill_quietly(grandchild)


async def test_stop_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    clock = FakeClock()
    stubborn = (
        PY,
        "-c",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\ntime.sleep(60)",
    )
    sup, rec = make(tmp_path, ProgramSpec("stubborn", stubborn, stop_grace=5.0), clock=clock)
    await sup.start()
    try:
        await rec.wait("process.stubborn.ready")
        pid = sup.pid("stubborn")
        assert pid is not None
        assert wait_until(lambda: ignores_sigterm(pid))
        stopping = asyncio.ensure_future(sup.stop_program("stubborn"))
        await clock.wait_for_sleepers()
        assert sup.state("stubborn") is S.STOPPING
        clock.advance(5.0)
        async with asyncio.timeout(10):
            await stopping
        exited = rec.of("process.stubborn.exited")[-1]
        assert exited.data["signal"] == "SIGKILL"
        assert sup.state("stubborn") is S.STOPPED
    finally:
        await sup.stop()


async def test_exit_watch_without_pidfd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from selfheal.supervisor import _proc

    monkeypatch.setattr(_proc, "_HAS_PIDFD", False)
    sup, rec = make(tmp_path, ProgramSpec("w", SLEEP, backoff=FAST))
    await sup.start()
    try:
        first = (await rec.wait("process.w.started")).data["pid"]
        os.kill(first, signal.SIGKILL)
        exited = await rec.wait("process.w.exited")
        assert exited.data["signal"] == "SIGKILL"
        await rec.wait("process.w.started", 2)
        assert not alive(first)
    finally:
        await sup.stop()


def test_pdeathsig_ends_the_child_when_its_parent_dies(tmp_path: Path) -> None:
    import subprocess

    script = (
        "import os, sys, time\n"
        "from selfheal.supervisor._proc import spawn\n"
        "p = spawn([sys.executable, '-c', 'import time; time.sleep(60)'], cwd=None,\n"
        "          env=dict(os.environ), stdout_fd=1, pdeathsig=True)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([PY, "-c", script], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert alive(child)
        parent.kill()
        parent.wait()
        assert wait_until(lambda: not alive(child), 5)
    finally:
        parent.stdout.close()
        kill_quietly(child)
