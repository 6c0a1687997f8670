"""A reload's compile subprocess is bounded and never outlives the daemon that started it.

The config is compiled in ``python -m selfheal.cli.daemon compile``; a config that makes it
hang (here a rule's ``call`` whose module sleeps as it is imported) once left that process
behind when the reload gave up or the daemon stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from cli_helpers import RunningDaemon
from health_helpers import until
from selfheal.cli._daemon import compile_in_subprocess
from selfheal.errors import ReloadError
from selfheal.testing import FakeClock
from supervisor_helpers import wait_until

SLOW_IMPORT = "import time\ntime.sleep(300)\n\ndef fn(event):\n    pass\n"
RULE = '[[recovery]]\non = "process.*.exited"\naction = { call = "slowimport:fn" }\n'


def _compilers(config: Path) -> list[int]:
    """Pids of the compile subprocesses of `config` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"compile" in argv and str(config).encode() in argv:
            found.append(int(entry.name))
    return found


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "slowimport.py").write_text(SLOW_IMPORT)
    path = tmp_path / "selfheal.toml"
    path.write_text('[control]\nstate_dir = "state"\n[journal]\nenabled = false\n')
    return path


def _kill_left(config: Path) -> None:
    for pid in _compilers(config):
        os.kill(pid, signal.SIGKILL)


def test_stopping_the_daemon_ends_a_reload_s_compile(config: Path) -> None:
    try:
        with RunningDaemon(config) as daemon:
            assert wait_until((config.parent / "state" / "control.json").exists, 30)
            config.write_text(config.read_text() + RULE)
            assert daemon.proc is not None
            daemon.proc.send_signal(signal.SIGHUP)
            assert wait_until(lambda: bool(_compilers(config)), 20)
        assert daemon.returncode == 0, daemon.err
        assert wait_until(lambda: not _compilers(config), 10), "the compile outlived the daemon"
    finally:
        _kill_left(config)


@pytest.fixture
def slow_config(config: Path) -> Path:
    config.write_text(config.read_text() + RULE)
    return config


@pytest.mark.anyio
async def test_a_compile_that_takes_too_long_is_ended_and_refused(
    slow_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(slow_config.parent)  # the compiler imports slowimport from here
    clock = FakeClock()
    try:
        task = asyncio.ensure_future(
            compile_in_subprocess(str(slow_config), clock=clock, timeout=30)
        )
        # The compiler is a real process: its start is waited for, then its deadline.
        await until(lambda: bool(_compilers(slow_config)) and clock.pending_sleepers > 0, 20)
        clock.advance(30)
        with pytest.raises(ReloadError, match="did not finish within 30 s"):
            await task
        assert not _compilers(slow_config)
    finally:
        _kill_left(slow_config)
