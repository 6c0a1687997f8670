"""Races an operator hits: requests that overlap reloads, stops and each other."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from selfheal.supervisor import ProcessState, ProgramSpec
from supervisor_helpers import PY, SLEEP, alive, make

pytestmark = pytest.mark.anyio
S = ProcessState


async def test_two_overlapping_reloads_apply_once(tmp_path: Path) -> None:
    a = ProgramSpec("a", SLEEP)
    sup, _ = make(tmp_path, a)
    await sup.start()
    try:
        old = sup.pid("a")
        changed = ProgramSpec("a", SLEEP, env=(("V", "2"),))
        async with asyncio.timeout(10):
            first, second = await asyncio.gather(sup.apply([changed]), sup.apply([changed]))
        assert first.changed == ("a",)
        assert second.unchanged == ("a",)
        assert sup.state("a") is S.RUNNING
        assert sup.pid("a") not in (None, old)
        assert old is not None
        assert not alive(old)
    finally:
        await sup.stop()


async def test_start_waiting_for_readiness_returns_when_a_reload_replaces_it(
    tmp_path: Path,
) -> None:
    never_ready = ProgramSpec("a", SLEEP, ready="notify", autostart=False)
    sup, _ = make(tmp_path, never_ready)
    await sup.start()
    try:
        start = asyncio.ensure_future(sup.start_program("a"))
        async with asyncio.timeout(10):
            await sup.wait_for("a", S.STARTING)
            await sup.apply([ProgramSpec("a", SLEEP, env=(("V", "2"),), autostart=False)])
            await start  # must not wait for an instance that no longer exists
        assert sup.state("a") is S.STOPPED
    finally:
        await sup.stop()


async def test_start_waiting_for_readiness_returns_when_stopped(tmp_path: Path) -> None:
    sup, _ = make(tmp_path, ProgramSpec("a", SLEEP, ready="notify", autostart=False))
    await sup.start()
    try:
        start = asyncio.ensure_future(sup.start_program("a"))
        async with asyncio.timeout(10):
            await sup.wait_for("a", S.STARTING)
            await sup.stop_program("a")
            await start
        assert sup.state("a") is S.STOPPED
    finally:
        await sup.stop()


async def test_start_of_a_dependent_whose_dependency_is_stopped_does_not_hang(
    tmp_path: Path,
) -> None:
    db = ProgramSpec("db", SLEEP, autostart=False)
    app = ProgramSpec("app", SLEEP, depends_on=("db",), autostart=False)
    sup, _ = make(tmp_path, db, app)
    await sup.start()
    try:
        async with asyncio.timeout(5):
            await sup.start_program("app")
        (status,) = [p for p in sup.status() if p["name"] == "app"]
        assert status["state"] == "STOPPED"
        assert status["waiting_for"] == ["db"]
        # Starting the dependency later still starts the dependent that waits for it.
        async with asyncio.timeout(10):
            await sup.start_program("db")
            await sup.wait_for("app", S.RUNNING)
    finally:
        await sup.stop()


async def test_start_of_a_program_that_cannot_start_returns_at_its_first_failure(
    tmp_path: Path,
) -> None:
    # A typo in `command`: the operator's `selfheal start` must say so at once, not after
    # the whole backoff ladder (about 50 s with the defaults) has ended in FATAL.
    ghost = ProgramSpec("ghost", ("/nonexistent/binary",), autostart=False)
    crash = ProgramSpec("crash", (PY, "-c", "raise SystemExit(3)"), autostart=False)
    sup, _ = make(tmp_path, ghost, crash)
    await sup.start()
    try:
        async with asyncio.timeout(5):
            await sup.start_program("ghost")
            await sup.start_program("crash")
        assert sup.state("ghost") is S.BACKOFF
        assert "cannot execute" in sup.status()[0]["reason"]
        # Ready at spawn: its start succeeded; the crash that follows is the restart policy's.
        assert sup.state("crash") in (S.RUNNING, S.BACKOFF, S.STARTING)
    finally:
        await sup.stop()


async def test_shutdown_during_a_reload_leaves_nothing_running(tmp_path: Path) -> None:
    # SIGTERM while a SIGHUP reload restarts a slow-to-stop program: the reload must not
    # spawn the new process after the shutdown stopped everything.
    slow = (PY, "-c", "import signal, time; signal.signal(15, signal.SIG_IGN); time.sleep(60)")
    sup, rec = make(tmp_path, ProgramSpec("a", slow, stop_grace=0.3))
    await sup.start()
    old = sup.pid("a")
    reload = asyncio.ensure_future(sup.apply([ProgramSpec("a", slow, stop_grace=0.2)]))
    async with asyncio.timeout(10):
        await sup.wait_for("a", S.STOPPING)
        await sup.stop()
        await reload
    pids = [e.data["pid"] for e in rec.of("process.a.started")]
    assert old in pids
    assert all(not alive(p) for p in pids), [(p, alive(p)) for p in pids]
