"""What every CLI command shares: one console, one way to fail, the daemon's options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click
from rich.console import Console

__all__ = ["config_option", "console", "err_console", "fail", "state_dir_option"]

F = TypeVar("F", bound=Callable[..., object])


@functools.cache
def console() -> Console:
    """Return the shared rich console (stdout)."""
    # soft_wrap: a long line stays one line (a person's terminal wraps it; a log must not).
    return Console(highlight=False, soft_wrap=True)


@functools.cache
def err_console() -> Console:
    """Return the console of progress and notes (stderr), apart from what scripts read."""
    return Console(highlight=False, stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `message` to stderr and exit with `code`: the CLI's only way to report bad input."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def config_option(func: F) -> F:
    """Add ``-c/--config`` (the daemon's selfheal.toml) to a command."""
    return click.option(
        "-c",
        "--config",
        "config",
        type=click.Path(dir_okay=False),
        default=None,
        help="The selfheal.toml of the daemon (default: ./selfheal.toml). Only its "
        "[control] state_dir is read: a typo elsewhere does not matter here.",
    )(func)


def state_dir_option(func: F) -> F:
    """Add ``--state-dir`` to a command."""
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="The daemon's state directory (default: from the config, else ./.selfheal).",
    )(func)
