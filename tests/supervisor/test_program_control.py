"""Starting, stopping and restarting by program or instance name, and reloading the programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from selfheal.supervisor import ProcessState, ProgramControl, ProgramSpec
from supervisor_helpers import SLEEP, make

pytestmark = pytest.mark.anyio
S = ProcessState


async def test_is_a_program_control(tmp_path: Path) -> None:
    sup, _ = make(tmp_path, ProgramSpec("a", SLEEP))
    assert isinstance(sup, ProgramControl)
    assert sup.program_names() == ["a"]
    with pytest.raises(KeyError, match="no program or process 'b'; known: a"):
        await sup.start_program("b")


async def test_numprocs_and_control_by_program_or_instance(tmp_path: Path) -> None:
    sup, rec = make(tmp_path, ProgramSpec("w", SLEEP, numprocs=3))
    await sup.start()
    try:
        assert [p["name"] for p in sup.status()] == ["w:0", "w:1", "w:2"]
        await sup.stop_program("w:1")
        assert [p["state"] for p in sup.status()] == ["RUNNING", "STOPPED", "RUNNING"]
        await sup.restart_program("w")
        assert all(p["state"] == "RUNNING" for p in sup.status())
        assert len(rec.of("process.w.started")) == 6
    finally:
        await sup.stop()


async def test_apply_restarts_only_changed_programs(tmp_path: Path) -> None:
    a, b = ProgramSpec("a", SLEEP), ProgramSpec("b", SLEEP)
    sup, _ = make(tmp_path, a, b)
    await sup.start()
    try:
        pid_a, pid_b = sup.pid("a"), sup.pid("b")
        c = ProgramSpec("c", SLEEP)
        result = await sup.apply([a, ProgramSpec("b", SLEEP, env=(("X", "1"),)), c])
        assert result.changed == ("b",)
        assert result.unchanged == ("a",)
        assert result.added == ("c",)
        assert sup.pid("a") == pid_a
        assert sup.pid("b") not in (None, pid_b)
        assert sup.state("c") is S.RUNNING
        result = await sup.apply([a])
        assert set(result.removed) == {"b", "c"}
        assert sup.program_names() == ["a"]
    finally:
        await sup.stop()
