"""Helpers of the CLI tests: run a ``selfheal`` command in-process, as a person would type it."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from selfheal.cli import main

#: The `start_daemon` fixture (tests/cli/conftest.py): starts ``selfheal run CONFIG``.
StartDaemon = Callable[[Path], subprocess.Popen[bytes]]


def cli(*args: str) -> tuple[int, str]:
    """Run ``selfheal ARGS``; return the exit status and what it printed (stdout and stderr)."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def cli_streams(*args: str) -> tuple[int, str, str]:
    """Run ``selfheal ARGS``; return the exit status, stdout and stderr apart."""
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr
