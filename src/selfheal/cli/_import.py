"""``selfheal import FILE``: convert a supervisord.conf (or a circus ini file) to selfheal.toml.

Everything that cannot be converted is listed, at the top of the output (as comments) and on
stderr; the result is then checked as ``selfheal check`` would.
"""

from __future__ import annotations

import configparser
from pathlib import Path

import click

from selfheal._bounds import read_config_bytes
from selfheal.cli._common import err_console, fail
from selfheal.cli._convert import Conversion, to_toml
from selfheal.cli._from_circus import from_circus, is_circus
from selfheal.cli._from_supervisord import from_supervisord
from selfheal.errors import ConfigError

__all__ = ["commands"]


@click.command(name="import")
@click.argument("source", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the selfheal.toml here (default: stdout); an existing file needs --force.",
)
@click.option("--force", is_flag=True, help="Overwrite the output file.")
@click.option(
    "--from",
    "kind",
    type=click.Choice(["auto", "supervisord", "circus"]),
    default="auto",
    show_default=True,
    help="The format of SOURCE (auto: circus if it has [circus] or [watcher:x] sections).",
)
def import_command(source: str, output: str | None, force: bool, kind: str) -> None:
    """Convert SOURCE (a supervisord.conf or a circus .ini) into a selfheal.toml.

    Exit status: 0 converted (what could not be is listed), 1 the result does not pass
    `selfheal check` on this machine (it is written anyway), 2 SOURCE cannot be read.
    """
    path = Path(source)
    try:
        read_config_bytes(path)  # a regular file of at most 1 MiB, before anyone parses it
    except ConfigError as exc:
        fail(f"cannot read {source}: {exc.issues[0].message}")
    if kind == "auto":
        kind = "circus" if is_circus(path) else "supervisord"
    try:
        conv = from_circus(path) if kind == "circus" else from_supervisord(path)
    except OSError as exc:
        fail(f"cannot read {source}: {exc.strerror or exc}")
    except (configparser.Error, UnicodeDecodeError) as exc:
        fail(f"{source} is not an ini file: {' '.join(str(exc).split())}")
    if not conv.programs:
        fail(f"{source}: no [program:x] or [watcher:x] section to convert")
    text = to_toml(conv)
    if output is None:
        click.echo(text, nl=False)
    else:
        out = Path(output)
        if out.exists() and not force:
            fail(f"{output} exists; --force overwrites it")
        out.write_text(text, encoding="utf-8")
    _tell(conv, output)
    problems = _check(text, output or "<converted>")
    if problems:
        err_console().print(
            f"the converted file does not pass selfheal check yet:\n{problems}", markup=False
        )
        raise SystemExit(1)


def _tell(conv: Conversion, output: str | None) -> None:
    err = err_console()
    where = output or "stdout"
    err.print(
        f"converted {len(conv.programs)} program(s) from {conv.source} to {where}", markup=False
    )
    if conv.skipped:
        err.print(f"not converted ({len(conv.skipped)}):", markup=False)
        for line in conv.skipped:
            err.print(f"  {line}", markup=False)
    if conv.notes:
        err.print(f"converted with a difference ({len(conv.notes)}):", markup=False)
        for line in conv.notes:
            err.print(f"  {line}", markup=False)


def _check(text: str, source: str) -> str:
    from selfheal.config import parse_config

    try:
        parse_config(text, source=source)
    except ConfigError as exc:
        return str(exc)
    return ""


commands: list[click.Command] = [import_command]
