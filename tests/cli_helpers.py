"""Helpers of the CLI tests: run a ``selfheal`` command in-process, as a person would type it."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from click.testing import CliRunner

from selfheal.cli import main

#: The `start_daemon` fixture (tests/cli/conftest.py): starts ``selfheal run [OPTIONS] CONFIG``.
StartDaemon = Callable[..., subprocess.Popen[bytes]]


def cli(*args: str) -> tuple[int, str]:
    """Run ``selfheal ARGS``; return the exit status and what it printed (stdout and stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def cli_streams(*args: str) -> tuple[int, str, str]:
    """Run ``selfheal ARGS``; return the exit status, stdout and stderr apart."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def run_refused(config: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    """Run ``PREFIX selfheal run CONFIG`` in its directory to its exit (a start that fails).

    Bounded to 60 s; stdout and stderr are captured as text.
    """
    return subprocess.run(
        [*prefix, sys.executable, "-m", "selfheal", "run", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class RunningDaemon:
    """``[PREFIX...] selfheal run CONFIG`` in the config's directory while the block runs.

    Its stderr goes to ``daemon.err`` beside the config (a pipe nobody reads could fill up
    and stall the daemon's logging); on leaving the block the daemon gets SIGTERM and is
    waited for, and `err` and `returncode` say how it ended.

    Args:
        config: The selfheal.toml.
        prefix: A command the daemon runs under, e.g. ``("prlimit", "--fsize=65536")``.
    """

    def __init__(self, config: Path, *, prefix: Sequence[str] = ()) -> None:
        self.config = config
        self.prefix = tuple(prefix)
        self.log = config.parent / "daemon.err"
        self.proc: subprocess.Popen[bytes] | None = None
        self.err = ""
        self.returncode: int | None = None

    def __enter__(self) -> RunningDaemon:
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", "selfheal", "run", str(self.config)],
                cwd=self.config.parent,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        self.returncode = self.proc.wait(timeout=60)
        self.err = self.log.read_text(errors="replace")
