"""supervisord's per-process keys on real processes: user, umask, stderr apart or merged."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from selfheal.supervisor import ProcessState, ProgramSpec
from selfheal.supervisor.config import ProgramConfig, check_privileges
from supervisor_helpers import PY, make

pytestmark = pytest.mark.anyio
S = ProcessState
WHO = ("/bin/sh", "-c", "exec sleep 60")

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@root_only
async def test_a_program_runs_as_its_user_with_its_umask(tmp_path: Path) -> None:
    tell = ("/bin/sh", "-c", "echo uid=$(id -u) gid=$(id -g) umask=$(umask) home=$HOME")
    spec = ProgramSpec("who", tell, cwd="/", user="nobody:nogroup", umask=0o027, restart="never")
    sup, rec = make(tmp_path, spec)
    await sup.start()
    try:
        exited = await rec.wait("process.who.exited")
    finally:
        await sup.stop()
    assert exited.data["exit_code"] == 0
    assert exited.data["tail"] == ["uid=65534 gid=65534 umask=0027 home=/nonexistent"]


async def test_a_daemon_that_is_not_root_says_why_it_cannot_switch_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 4321)
    spec = ProgramSpec("who", WHO, cwd="/", user="nobody", autostart=False)
    assert check_privileges([spec]) == [
        "programs.who.user: cannot run as user 'nobody': selfheal runs as '4321' (uid 4321), "
        "and only root can switch users; start selfheal as root, or remove 'user'"
    ]
    sup, _ = make(tmp_path, spec)
    await sup.start()
    try:
        await sup.start_program("who")
        (status,) = sup.status()
    finally:
        await sup.stop()
    assert status["state"] == "BACKOFF"  # never started as the daemon's own user
    assert status["pid"] is None
    assert "cannot run who: cannot run as user 'nobody'" in status["reason"]


def test_unknown_users_and_bad_umasks_are_config_errors() -> None:
    # pydantic's ValidationError is a ValueError; the message names the bad value.
    with pytest.raises(ValueError, match="no such user 'no-such-user-here' on this machine"):
        ProgramConfig.model_validate({"command": ["x"], "user": "no-such-user-here"})
    with pytest.raises(ValueError, match="no such group 'no-such-group'"):
        ProgramConfig.model_validate({"command": ["x"], "user": "nobody:no-such-group"})
    with pytest.raises(ValueError, match="must be octal digits like '022' or 0o022"):
        ProgramConfig.model_validate({"command": ["x"], "umask": "0x22"})
    assert ProgramConfig.model_validate({"command": ["x"], "umask": "022"}).umask == 0o022
    assert ProgramConfig.model_validate({"command": ["x"], "umask": 0o077}).umask == 0o077


async def test_stderr_apart_keeps_one_tail_in_the_order_lines_came(tmp_path: Path) -> None:
    both = "import sys, time\nfor i in range(3):\n"
    both += "    print(f'out {i}', flush=True); time.sleep(0.02)\n"
    both += "    print(f'err {i}', file=sys.stderr, flush=True); time.sleep(0.02)\n"
    apart = ProgramSpec("apart", (PY, "-c", both), restart="never", redirect_stderr=False)
    merged = ProgramSpec("merged", (PY, "-c", both), restart="never")
    sup, rec = make(tmp_path, apart, merged)
    await sup.start()
    try:
        exits = {n: await rec.wait(f"process.{n}.exited") for n in ("apart", "merged")}
    finally:
        await sup.stop()
    logs = tmp_path / "state" / "logs"
    assert (logs / "apart.log").read_text() == "out 0\nout 1\nout 2\n"
    assert (logs / "apart.stderr.log").read_text() == "err 0\nerr 1\nerr 2\n"
    assert not (logs / "merged.stderr.log").exists()
    assert (logs / "merged.log").read_text().splitlines() == [
        "out 0", "err 0", "out 1", "err 1", "out 2", "err 2"
    ]  # fmt: skip
    for name in ("apart", "merged"):
        assert exits[name].data["tail"] == ["out 0", "err 0", "out 1", "err 1", "out 2", "err 2"]
