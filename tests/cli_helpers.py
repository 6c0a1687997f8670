"""Helpers of the CLI tests: run a ``selfheal`` command in-process, as a person would type it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
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
