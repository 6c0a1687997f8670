"""The daemon under real descriptor limits (``prlimit``) and idle clients: it keeps supervising.

Each test runs ``selfheal run`` as a real process with its ``RLIMIT_NOFILE`` set by
``prlimit``: a daemon of programs that cannot fit refuses to start and says why; one that
fits raises its soft limit, and idle connections held open to its control API take none of
the descriptors its restarts need.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli_helpers import StartDaemon, cli, run_refused
from supervisor_helpers import wait_until

SLEEP = shutil.which("sleep") or "/bin/sleep"
pytestmark = pytest.mark.skipif(shutil.which("prlimit") is None, reason="needs util-linux prlimit")


def write_config(d: Path, programs: int, control: str = "") -> Path:
    lines = ["[control]", 'state_dir = "state"', control, "[journal]", "enabled = false"]
    for i in range(programs):
        lines += [f"[programs.p{i}]", f"command = [{json.dumps(SLEEP)}, '600']"]
    path = d / "selfheal.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def status(state: Path) -> dict[str, dict[str, object]]:
    code, out = cli("status", "--json", "--state-dir", str(state))
    assert code == 0, out
    return {p["name"]: p for p in json.loads(out)["processes"]}


@contextmanager
def idle_clients(url: str, count: int) -> Iterator[list[socket.socket]]:
    """Open `count` connections to `url` that never send a byte (not waiting for the accept)."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.setblocking(False)
            assert s.connect_ex((host, int(port))) in (0, errno.EINPROGRESS)
            socks.append(s)
        yield socks
    finally:
        for s in socks:
            s.close()


def test_under_64_descriptors_idle_clients_do_not_stop_the_restarts(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = write_config(tmp_path, 4)
    daemon = start_daemon(config, prefix=("prlimit", "--nofile=64"))
    state = tmp_path / "state"
    info = json.loads((state / "control.json").read_text())
    with idle_clients(info["url"], 150):
        before = status(state)  # the control API still answers
        assert all(p["state"] == "RUNNING" for p in before.values())
        for _ in range(3):
            for p in before.values():
                os.kill(int(p["pid"]), signal.SIGKILL)  # type: ignore[call-overload]

            def restarted(old: dict[str, dict[str, object]] = before) -> bool:
                now = status(state)
                return all(
                    now[n]["state"] == "RUNNING" and now[n]["pid"] not in (None, old[n]["pid"])
                    for n in old
                )

            assert wait_until(restarted, 30), status(state)
            before = status(state)
            assert len(os.listdir(f"/proc/{daemon.pid}/fd")) <= 64
        assert all(p["restarts"] == 3 for p in before.values())
    err = (tmp_path / "daemon.err").read_text()
    assert "Traceback" not in err
    assert "Too many open files" not in err


def test_programs_that_cannot_fit_in_the_hard_limit_are_refused_at_start(tmp_path: Path) -> None:
    config = write_config(tmp_path, 400)
    done = run_refused(config, "prlimit", "--nofile=1024")
    assert done.returncode == 2, done.stderr
    assert "400 program(s)" in done.stderr
    assert "1024" in done.stderr
    assert "Traceback" not in done.stderr
    minfds = write_config(tmp_path, 1, "minfds = 4096")
    done = run_refused(minfds, "prlimit", "--nofile=1024")
    assert done.returncode == 2, done.stderr
    assert "minfds = 4096" in done.stderr


def test_400_programs_under_a_soft_limit_of_1024_all_run(
    tmp_path: Path, start_daemon: StartDaemon
) -> None:
    config = write_config(tmp_path, 400)
    daemon = start_daemon(config, prefix=("prlimit", "--nofile=1024:4096"))
    limits = Path(f"/proc/{daemon.pid}/limits").read_text()
    assert any(
        line.startswith("Max open files") and "4096" in line.split()[3]
        for line in limits.splitlines()
    )
    state = tmp_path / "state"
    assert wait_until(
        lambda: all(p["state"] == "RUNNING" and p["pid"] for p in status(state).values()), 60
    )
    assert len(status(state)) == 400
