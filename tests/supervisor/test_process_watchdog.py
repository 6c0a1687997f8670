"""`ProcessWatchdog`: the article's synchronous API on the supervisor core."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import selfheal
from selfheal import ProcessWatchdog
from selfheal.events import EventBus
from supervisor_helpers import PY, alive, wait_until

SLEEP = [PY, "-c", "import time; time.sleep(60)"]


def test_exported_from_selfheal() -> None:
    assert selfheal.ProcessWatchdog is ProcessWatchdog


def test_register_start_restart_terminate(tmp_path: Path) -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe("process.*", lambda e: seen.append(e.type))
    wd = ProcessWatchdog(max_restarts=5, restart_interval=60, bus=bus, state_dir=tmp_path)
    wd.register("web_server", SLEEP, working_dir=str(tmp_path), env={"PORT": "8000"})
    wd.register("worker", SLEEP)
    wd.start_all()
    try:
        procs = wd.processes
        assert procs["web_server"]["state"] == "RUNNING"
        assert procs["web_server"]["working_dir"] == str(tmp_path)
        pid = procs["web_server"]["pid"]
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert b"PORT=8000" in environ
        os.kill(pid, signal.SIGKILL)
        # Restarted by the core within milliseconds, with no check_and_restart call.
        assert wait_until(lambda: wd.processes["web_server"]["pid"] not in (None, pid))
        assert wd.processes["web_server"]["state"] == "RUNNING"
        assert seen.count("process.web_server.started") == 2
    finally:
        wd.terminate_all()
    assert not alive(pid)


def test_max_restarts_in_interval_gives_up(tmp_path: Path) -> None:
    bus = EventBus()
    fatal: list[object] = []
    bus.subscribe("process.*.fatal", fatal.append)
    wd = ProcessWatchdog(max_restarts=2, restart_interval=60, bus=bus, state_dir=tmp_path)
    wd.register("crasher", [PY, "-c", "raise SystemExit(1)"])
    wd.start_all()
    try:
        assert wait_until(lambda: wd.processes["crasher"]["state"] == "FATAL")
        assert len(fatal) == 1
        assert wd.check_and_restart() == []  # FATAL stays given up
    finally:
        wd.terminate_all()


def test_check_and_restart_starts_stopped_programs(tmp_path: Path) -> None:
    wd = ProcessWatchdog(state_dir=tmp_path)
    assert wd.check_and_restart() == []
    wd.register("a", SLEEP)
    assert wd.start_process("a") is True
    try:
        wd.stop_process("a")
        assert wd.processes["a"]["state"] == "STOPPED"
        assert wd.check_and_restart() == ["a"]
        assert wd.processes["a"]["state"] == "RUNNING"
        wd.register("late", SLEEP)  # registered while running: starts at once
        assert wait_until(lambda: wd.processes["late"]["state"] == "RUNNING")
    finally:
        wd.terminate_all()
    assert wd.status() == []


def test_bad_registrations() -> None:
    wd = ProcessWatchdog()
    with pytest.raises(ValueError, match="argv list"):
        wd.register("x", "python app.py")  # type: ignore[arg-type]
    wd.register("x", ["true"])
    with pytest.raises(ValueError, match="already registered"):
        wd.register("x", ["true"])
    with pytest.raises(ValueError, match="not registered"):
        wd.start_process("nope")


def test_register_while_running_leaves_the_others_alone(tmp_path: Path) -> None:
    wd = ProcessWatchdog(state_dir=tmp_path)
    wd.register("a", SLEEP)
    wd.start_all()
    try:
        pid_a = wd.processes["a"]["pid"]
        assert pid_a is not None
        wd.register("b", SLEEP)  # starts at once: the watchdog runs
        assert wait_until(lambda: wd.processes["b"]["state"] == "RUNNING", 10)
        assert wd.processes["a"]["pid"] == pid_a  # not restarted by the registration
        assert alive(pid_a)
    finally:
        wd.terminate_all()
