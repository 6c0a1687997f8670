"""A reload that changes numprocs alone adds or removes processes; the others keep running."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from selfheal.supervisor import ProgramSpec, preview_reload
from supervisor_helpers import PY, SLEEP, alive, make

pytestmark = pytest.mark.anyio


def pids(sup: object) -> dict[str, int | None]:
    return {p["name"]: p["pid"] for p in sup.status()}  # type: ignore[attr-defined]


async def test_scaling_up_and_down_keeps_the_remaining_processes(tmp_path: Path) -> None:
    worker = ProgramSpec("worker", SLEEP, numprocs=2)
    other = ProgramSpec("other", SLEEP)
    sup, _ = make(tmp_path, worker, other)
    await sup.start()
    try:
        before = pids(sup)
        result = await sup.apply([replace(worker, numprocs=4), other])
        assert result.scaled == ("worker",)
        assert result.changed == ()
        assert result.processes_added == ("worker:2", "worker:3")
        after = pids(sup)
        assert list(after) == ["worker:0", "worker:1", "worker:2", "worker:3", "other"]
        assert {k: after[k] for k in before} == before
        assert all(after[n] is not None for n in ("worker:2", "worker:3"))

        result = await sup.apply([replace(worker, numprocs=1), other])
        assert result.processes_removed == ("worker:1", "worker:2", "worker:3")
        # Between several and one, worker:0 becomes worker: the same process, renamed.
        final = pids(sup)
        assert final == {"worker": before["worker:0"], "other": before["other"]}
        assert not any(alive(after[n]) for n in ("worker:1", "worker:2", "worker:3"))  # type: ignore[arg-type]
        logs = tmp_path / "state" / "logs"
        assert (logs / "worker.log").exists()
        assert not (logs / "worker_0.log").exists()

        await sup.apply([replace(worker, numprocs=2), other])
        assert pids(sup)["worker:0"] == before["worker:0"]
        # Stopped by its new name; its process was started under the old one.
        await sup.stop_processes(["worker:0"])
        assert not alive(before["worker:0"])  # type: ignore[arg-type]
    finally:
        await sup.stop()


async def test_the_preview_says_what_apply_then_does(tmp_path: Path) -> None:
    worker = ProgramSpec("worker", SLEEP, numprocs=3)
    other = ProgramSpec("other", SLEEP)
    gone = ProgramSpec("gone", SLEEP)
    sup, _ = make(tmp_path, worker, other, gone)
    await sup.start()
    try:
        running = {name: sup.spec(name) for name in sup.program_names()}
        plan = [replace(worker, numprocs=1), replace(other, env=(("A", "1"),)), SLEEPY_NEW]
        before = pids(sup)
        preview = preview_reload(running, plan)
        assert pids(sup) == before  # the preview touched nothing
        assert preview == await sup.apply(plan)
        assert preview.removed == ("gone",)
        assert preview.changed == ("other",)
        assert preview.added == ("new",)
        assert preview.processes_removed == ("worker:1", "worker:2")
    finally:
        await sup.stop()


SLEEPY_NEW = ProgramSpec("new", SLEEP)


async def test_a_program_that_refers_to_numprocs_restarts_whole(tmp_path: Path) -> None:
    # Each process is told how many there are: every one of them sees that change.
    told = ProgramSpec(
        "told", (PY, "-c", "import time; time.sleep(60)", "%(numprocs)d"), numprocs=2
    )
    sup, _ = make(tmp_path, told)
    await sup.start()
    try:
        before = pids(sup)
        result = await sup.apply([replace(told, numprocs=3)])
        assert result.changed == ("told",)
        assert result.scaled == ()
        after = pids(sup)
        assert all(after[n] != before[n] for n in before)
        assert sup.status(["told:0"])[0]["pid"] is not None
    finally:
        await sup.stop()
