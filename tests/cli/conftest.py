"""Fixtures of the CLI tests: real ``selfheal run`` daemons, stopped at the end of each test."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli_helpers import StartDaemon
from supervisor_helpers import PY, wait_until


@pytest.fixture
def start_daemon() -> Iterator[StartDaemon]:
    """Return ``start(config, *options, prefix=())``: run ``selfheal run OPTIONS CONFIG`` there.

    `prefix` goes before the command (``("prlimit", "--nofile=64")``).

    It returns once the daemon wrote ``state/control.json`` (the configs here use
    ``state_dir = "state"``), with its stderr in ``daemon.err`` beside the config. Daemons
    still running when the test ends get SIGTERM and are waited for.
    """
    started: list[subprocess.Popen[bytes]] = []

    def start(config: Path, *options: str, prefix: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
        control = config.parent / "state" / "control.json"
        control.unlink(missing_ok=True)
        log = config.parent / "daemon.err"
        with log.open("ab") as err:
            proc = subprocess.Popen(
                [*prefix, PY, "-m", "selfheal", "run", *options, str(config)],
                cwd=config.parent,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        started.append(proc)
        assert wait_until(lambda: control.exists() or proc.poll() is not None, 20)
        assert proc.poll() is None, log.read_text()
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
