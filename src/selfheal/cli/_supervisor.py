"""CLI commands of the supervisor: run, status, start, stop, restart, reload, logs."""

from __future__ import annotations

import click

__all__ = ["commands"]

commands: list[click.Command] = []
