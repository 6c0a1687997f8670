"""What every CLI command shares: one console, one way to fail without a traceback."""

from __future__ import annotations

import functools
from typing import NoReturn

import click
from rich.console import Console

__all__ = ["console", "fail"]


@functools.cache
def console() -> Console:
    """Return the shared rich console (stdout)."""
    return Console(highlight=False)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `message` to stderr and exit with `code`: the CLI's only way to report bad input."""
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)
