"""The state dir: one daemon at a time, and what a dead daemon left running is ended."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from selfheal.errors import StateDirLockedError, UnsafePathError
from selfheal.supervisor import ProgramSpec, Supervisor
from supervisor_helpers import PY, SLEEP, abandon, alive, make, read_int

pytestmark = pytest.mark.anyio


async def test_leftovers_of_a_dead_run_are_ended(tmp_path: Path) -> None:
    pidfile = tmp_path / "gc.pid"
    script = (
        "import subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    sup, _ = make(tmp_path, ProgramSpec("p", (PY, "-c", script)))
    await sup.start()
    child = sup.pid("p")
    grandchild = read_int(pidfile)
    assert child is not None
    abandon(sup)  # a daemon that died: its children are left running
    # The child is still our zombie-to-be; a fresh supervisor must end both.
    sup2, rec2 = make(tmp_path, ProgramSpec("p", SLEEP, autostart=False), leftover_grace=2.0)
    await sup2.start()
    try:
        ended = await rec2.wait("supervisor.leftovers.ended")
        assert set(ended.data["pids"]) == {child, grandchild}
        os.waitpid(child, 0)  # noqa: ASYNC222 - reap it: the test process is its parent
        assert not alive(grandchild)
    finally:
        await sup2.stop()


async def test_a_second_supervisor_on_the_same_state_dir_is_refused(tmp_path: Path) -> None:
    sup, _ = make(tmp_path)
    await sup.start()
    try:
        other, _ = make(tmp_path)
        with pytest.raises(StateDirLockedError) as info:
            await other.start()
        assert info.value.pid == os.getpid()
    finally:
        await sup.stop()


async def test_a_state_dir_others_may_write_is_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(0o777)
    sup, _ = make(tmp_path, ProgramSpec("p", SLEEP))
    with pytest.raises(UnsafePathError, match=r"can be written by its group and other users"):
        await sup.start()
    assert list(state.iterdir()) == []


async def test_files_of_the_state_dir_are_never_opened_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("precious\n")
    for name in ("supervisor.lock", "children.json", "logs/p.log"):
        state = tmp_path / name.replace("/", "_")
        (state / "logs").mkdir(parents=True)
        (state / name).symlink_to(target)
        sup = Supervisor([ProgramSpec("p", SLEEP)], state_dir=state)
        with pytest.raises(UnsafePathError, match="is a symbolic link: refusing to follow it"):
            await sup.start()
        assert target.read_text() == "precious\n"
        assert sup._dir._lock_fd == -1  # a failed start keeps no lock
