"""A program that exits is restarted at once, backs off when it keeps crashing, then gives up."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from selfheal.supervisor import BackoffSpec, IntensitySpec, ProcessState, ProgramSpec
from selfheal.testing import FakeClock
from supervisor_helpers import FAST, PY, SLEEP, alive, make

pytestmark = pytest.mark.anyio
S = ProcessState


async def test_crash_is_restarted_at_once_and_events_carry_the_tail(tmp_path: Path) -> None:
    sup, rec = make(tmp_path, ProgramSpec("web", SLEEP), clock=FakeClock())
    await sup.start()
    try:
        await rec.wait("process.web.ready")
        first = sup.pid("web")
        assert first is not None
        await asyncio.sleep(0)  # let the output reader run
        os.kill(first, signal.SIGKILL)
        exited = await rec.wait("process.web.exited")
        assert exited.data["signal"] == "SIGKILL"
        assert exited.data["pid"] == first
        started = await rec.wait("process.web.started", 2)
        assert started.data["pid"] != first
        backoff = rec.of("process.web.backoff")[0]
        assert backoff.data["delay"] == 0.0
        assert rec.types().index("process.web.exited") < rec.types().index("process.web.backoff")
        assert sup.state("web") is S.RUNNING
        assert not alive(first)
    finally:
        await sup.stop()
    assert rec.of("process.web.exited")[-1].data["expected"] is True


async def test_crash_loop_backs_off_exponentially_then_goes_fatal(tmp_path: Path) -> None:
    clock = FakeClock()
    prog = ProgramSpec(
        "crashy",
        (PY, "-c", "import sys; sys.exit(3)"),
        backoff=BackoffSpec(initial=1.0, factor=2.0, maximum=3.0, jitter=0.0, reset_after=60),
        intensity=IntensitySpec(max_restarts=4, window=100.0),
    )
    sup, rec = make(tmp_path, prog, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.crashy.backoff", 1)
        for n, delay in ((2, 1.0), (3, 2.0), (4, 3.0)):
            await rec.wait("process.crashy.backoff", n)
            assert rec.of("process.crashy.backoff")[-1].data["delay"] == delay
            await clock.wait_for_sleepers()
            assert sup.state("crashy") is S.BACKOFF
            clock.advance(delay)
        fatal = await rec.wait("process.crashy.fatal")
        assert fatal.data["exit_code"] == 3
        assert "more than 4 restarts in 100 s" in fatal.data["reason"]
        assert sup.state("crashy") is S.FATAL
        assert len(rec.of("process.crashy.started")) == 5
        # Starting by hand forgives the past.
        rec.events.clear()
        await sup.start_program("crashy")
        await rec.wait("process.crashy.started")
    finally:
        await sup.stop()


async def test_spawn_failure_is_a_failed_start(tmp_path: Path) -> None:
    prog = ProgramSpec(
        "ghost",
        ("/nonexistent/binary",),
        backoff=FAST,
        intensity=IntensitySpec(max_restarts=2, window=60),
    )
    sup, rec = make(tmp_path, prog, clock=FakeClock(autojump=True))
    await sup.start()
    try:
        await rec.wait("process.ghost.fatal")
        assert "cannot execute" in rec.of("process.ghost.exited")[0].data["error"]
    finally:
        await sup.stop()
