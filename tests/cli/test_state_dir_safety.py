"""A second, unprivileged user cannot subvert the daemon's state directory (OpenSSH StrictModes).

The user ``nobody`` plants symlinks in a world-writable directory (mode 1777, as ``/tmp``)
where the root daemon's ``state_dir`` or ``log_dir`` is, pointing at files only root may
change: the token, lock, children, control and log files would all be written through them.
Every such start is refused with a clear error (exit 2) and no target is touched; the CLI
refuses to send its token where a ``control.json`` that ``nobody`` wrote says.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli_helpers import StartDaemon, cli, run_refused
from supervisor_helpers import PY, wait_until

SLEEP = shutil.which("sleep") or "/bin/sleep"
FILES = ("control.token", "supervisor.lock", "children.json", "control.json", "control.json.tmp")

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root (to run the daemon) and setpriv (to act as the user nobody)",
)


def as_nobody(script: str) -> None:
    """Run shell `script` as the unprivileged user ``nobody``."""
    user = pwd.getpwnam("nobody")
    subprocess.run(
        [
            "setpriv",
            f"--reuid={user.pw_uid}",
            f"--regid={user.pw_gid}",
            "--clear-groups",
            "sh",
            "-ec",
            script,
        ],
        check=True,
        timeout=30,
    )


@pytest.fixture
def shared() -> Iterator[Path]:
    """Yield a fresh world-writable directory with the sticky bit, as ``/tmp`` is."""
    path = Path(tempfile.mkdtemp(prefix="selfheal-shared-", dir="/tmp"))
    path.chmod(0o1777)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def victims(tmp_path: Path) -> dict[str, Path]:
    """Root's files the attacks aim at, in a directory only root can enter."""
    out = {}
    for name in (*FILES, "p0.log", "journal.db"):
        target = tmp_path / "victims" / f"{name}.target"
        target.parent.mkdir(exist_ok=True)
        target.write_text("precious\n")
        target.chmod(0o644)
        out[name] = target
    return out


def untouched(victims: dict[str, Path]) -> bool:
    return all(
        p.read_text() == "precious\n" and p.stat().st_mode & 0o7777 == 0o644
        for p in victims.values()
    )


def plant(where: Path, victims: dict[str, Path]) -> str:
    """Return the shell lines that plant a symlink for every daemon file in `where`.

    `where` and its ``logs`` are made (mode 0777) unless they exist.
    """
    logs = where / "logs"
    lines = [f"[ -d {d} ] || {{ mkdir {d}; chmod 777 {d}; }}" for d in (where, logs)]
    lines += [f"ln -s {victims[name]} {where / name}" for name in (*FILES, "journal.db")]
    lines.append(f"ln -s {victims['p0.log']} {logs}/p0.log")
    return "\n".join(lines)


def write_config(d: Path, state: Path, logs: Path | None = None) -> Path:
    lines = ["[control]", f"state_dir = {json.dumps(str(state))}"]
    if logs is not None:
        lines.append(f"log_dir = {json.dumps(str(logs))}")
    lines += ["[programs.p0]", f"command = [{json.dumps(SLEEP)}, '600']"]
    path = d / "selfheal.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def running(config: Path) -> Iterator[Path]:
    """Run ``selfheal run CONFIG`` until the block ends; yield its control file once written."""
    control = config.parent / "state" / "control.json"
    proc = subprocess.Popen(
        [PY, "-m", "selfheal", "run", str(config)],
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        written = lambda: control.exists() and not control.is_symlink()  # noqa: E731
        assert wait_until(lambda: written() or proc.poll() is not None, 20)
        assert proc.poll() is None, proc.communicate()[1]
        yield control
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_a_state_dir_another_user_made_is_refused(
    tmp_path: Path, shared: Path, victims: dict[str, Path]
) -> None:
    state = shared / "state"
    as_nobody(plant(state, victims))
    done = run_refused(write_config(tmp_path, state))
    assert done.returncode == 2, done.stderr
    assert f"{state} belongs to nobody" in done.stderr
    assert "Traceback" not in done.stderr
    assert untouched(victims)


def test_a_state_dir_that_is_another_users_symlink_is_refused(tmp_path: Path, shared: Path) -> None:
    roots = tmp_path / "roots"  # a directory of root's, where the link sends the daemon
    roots.mkdir(mode=0o700)
    as_nobody(f"ln -s {roots} {shared / 'state'}")
    done = run_refused(write_config(tmp_path, shared / "state"))
    assert done.returncode == 2, done.stderr
    assert "belongs to nobody" in done.stderr
    assert "(a symbolic link)" in done.stderr
    assert list(roots.iterdir()) == []


def test_a_root_state_dir_that_others_may_write_is_refused(
    tmp_path: Path, shared: Path, victims: dict[str, Path]
) -> None:
    state = shared / "state"
    state.mkdir()
    state.chmod(0o1777)  # root's, but open to all, as an administrator might leave it
    as_nobody(plant(state, victims))
    done = run_refused(write_config(tmp_path, state))
    assert done.returncode == 2, done.stderr
    assert "can be written by its group and other users (mode 1777)" in done.stderr
    assert "chmod go-w" in done.stderr
    assert untouched(victims)


def test_a_log_dir_of_another_user_is_refused(
    tmp_path: Path, shared: Path, victims: dict[str, Path]
) -> None:
    logs = shared / "logs"
    as_nobody("\n".join([f"mkdir {logs}", f"ln -s {victims['p0.log']} {logs}/p0.log"]))
    done = run_refused(write_config(tmp_path, tmp_path / "state", logs))
    assert done.returncode == 2, done.stderr
    assert f"{logs} belongs to nobody" in done.stderr
    assert untouched(victims)


def test_symlinks_left_in_a_state_dir_made_safe_later_are_never_followed(
    shared: Path, victims: dict[str, Path]
) -> None:
    # The directory was open to all and nobody planted a link; then root made it 0700. The
    # link is still there: each file is opened without following it.
    refused = ("supervisor.lock", "children.json", "journal.db", "logs/p0.log")
    replaced = ("control.token", "control.json", "control.json.tmp")
    for n, name in enumerate((*refused, *replaced)):
        state = shared / str(n) / "state"
        (state / "logs").mkdir(parents=True)
        for d in (state, state / "logs"):
            d.chmod(0o777)
        as_nobody(f"ln -s {victims[Path(name).name]} {state / name}")
        state.chmod(0o700)
        (state / "logs").chmod(0o750)
        config = write_config(state.parent, state)
        if name in refused:
            done = run_refused(config)
            assert done.returncode != 0, (name, done.stderr)
            assert "is a symbolic link: refusing to follow it" in done.stderr, done.stderr
            assert "Traceback" not in done.stderr
        else:
            with running(config) as control:
                assert not control.is_symlink()
                assert json.loads(control.read_text())["pid"]
        assert untouched(victims), name


def test_the_cli_does_not_send_its_token_where_another_users_control_file_says(
    tmp_path: Path, shared: Path, start_daemon: StartDaemon
) -> None:
    config = write_config(tmp_path, tmp_path / "state")
    start_daemon(config)
    real = json.loads((tmp_path / "state" / "control.json").read_text())
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.setblocking(False)
    forged = {
        "pid": os.getpid(),
        "url": f"http://127.0.0.1:{trap.getsockname()[1]}",
        "socket": None,
        "token_file": real["token_file"],
    }
    state = shared / "state"
    as_nobody(
        "\n".join(
            [
                f"mkdir {state}",
                f"ln -s {real['token_file']} {state}/control.token",
                f"cat > {state}/control.json <<'EOF'\n{json.dumps(forged)}\nEOF",
            ]
        )
    )
    try:
        for command in (("stop", "p0"), ("status",)):
            code, out = cli(*command, "--state-dir", str(state))
            assert code != 0, out
            assert "not trusting the daemon's files" in out
            assert f"{state} belongs to nobody" in out
        with pytest.raises(BlockingIOError):
            trap.accept()  # nothing ever connected, so no token was sent
        # Root's own directory, open to all, with nobody's control file: refused too.
        state.chmod(0o755)
        own = shared / "own"
        own.mkdir(mode=0o1777)
        own.chmod(0o1777)
        as_nobody(f"cat > {own}/control.json <<'EOF'\n{json.dumps(forged)}\nEOF")
        code, out = cli("stop", "p0", "--state-dir", str(own))
        assert code != 0
        assert "can be written by its group and other users" in out
        with pytest.raises(BlockingIOError):
            trap.accept()
    finally:
        trap.close()
    # The real daemon, found through its own files, still answers.
    code, out = cli("status", "--state-dir", str(tmp_path / "state"))
    assert code == 0, out
