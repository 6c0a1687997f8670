"""A spawn that finds no file descriptor (EMFILE) backs off, says why, and recovers.

The descriptors run out for real: the test lowers its own soft ``RLIMIT_NOFILE`` and takes
every free descriptor (`descriptors_exhausted`), so whatever the supervisor opens next fails
as it would in a daemon that idle clients starved.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from selfheal.supervisor import BackoffSpec, IntensitySpec, ProcessState, ProgramSpec
from selfheal.testing import FakeClock
from supervisor_helpers import SLEEP, alive, descriptors_exhausted, make, open_descriptors

pytestmark = pytest.mark.anyio
S = ProcessState
BACKOFF = BackoffSpec(initial=1.0, factor=2.0, maximum=4.0, jitter=0.0, reset_after=60.0)


async def test_a_spawn_without_descriptors_backs_off_with_the_reason_and_recovers(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    # Two output streams: two pipes per spawn, the second of which may fail alone.
    prog = ProgramSpec(
        "web",
        SLEEP,
        backoff=BACKOFF,
        intensity=IntensitySpec(max_restarts=3, window=600.0),
        redirect_stderr=False,
    )
    sup, rec = make(tmp_path, prog, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.web.ready")
        first = sup.pid("web")
        assert first is not None
        before = open_descriptors()
        with descriptors_exhausted():
            os.kill(first, signal.SIGKILL)
            # More failed spawns than the restart intensity allows: running out of
            # descriptors is the daemon's trouble, not the program's, so it never goes FATAL.
            backoff = await rec.wait("process.web.backoff", 2)
            for n in range(3, 10):
                await clock.wait_for_sleepers()
                clock.advance(backoff.data["delay"])
                backoff = await rec.wait("process.web.backoff", n)
                assert sup.state("web") is S.BACKOFF
                assert sup.pid("web") is None
                assert "Too many open files" in backoff.data["reason"]
            failures = [e for e in rec.of("process.web.exited") if e.data["pid"] is None]
            assert len(failures) >= 7
            assert "Too many open files" in failures[-1].data["error"]
            assert sup.status(["web"])[0]["reason"] == backoff.data["reason"]
        assert rec.of("process.web.fatal") == []
        await clock.wait_for_sleepers()
        clock.advance(backoff.data["delay"])
        await rec.wait("process.web.ready", 2)
        second = sup.pid("web")
        assert second is not None
        assert alive(second)
        # Nothing leaked: the pipes of the failed spawns were all closed.
        assert open_descriptors() == before
    finally:
        await sup.stop()


async def test_programs_that_do_not_all_fit_run_or_back_off_never_stick(tmp_path: Path) -> None:
    # The property behind "400 programs under a 1,024 limit": here 40 programs where about
    # half fit. Each one either runs or waits in BACKOFF with the reason; none is left in
    # STARTING without a process, and all run once descriptors are free again.
    clock = FakeClock(autojump=True)  # once descriptors are free, backoffs just elapse
    progs = [ProgramSpec(f"p{i}", SLEEP, backoff=BACKOFF) for i in range(40)]
    sup, rec = make(tmp_path, *progs, clock=clock)
    with descriptors_exhausted(spare=60):
        await sup.start()
        try:
            states = {p["name"]: (p["state"], p["pid"], p["reason"]) for p in sup.status()}
            running = [n for n, (s, pid, _) in states.items() if s == "RUNNING" and pid]
            waiting = [n for n, (s, _, why) in states.items() if s == "BACKOFF" and why]
            assert running
            assert waiting
            assert sorted(running + waiting) == sorted(states)
            assert all("Too many open files" in states[n][2] for n in waiting)
        except BaseException:
            await sup.stop()
            raise
    try:
        for name in waiting:
            await rec.wait(f"process.{name}.ready", within=20)
        assert all(p["state"] == "RUNNING" and p["pid"] for p in sup.status())
    finally:
        await sup.stop()
