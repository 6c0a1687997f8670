"""The ``selfheal`` command line (needs the ``server`` extra: click, rich, pydantic).

Each area adds its commands from its own module (``_supervisor``, ``_journal``), so this file
only assembles the group and holds the commands that belong to no single area.
"""

from __future__ import annotations

import sys

import click

from selfheal.cli import _chaos, _journal, _supervisor
from selfheal.cli._common import console, fail

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="selfheal")
def main() -> None:
    """Keep services up without a human: supervise, check, recover, and prove it."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def check(config: str) -> None:
    """Validate CONFIG (a selfheal.toml) and print every problem with its line."""
    from selfheal.config import ConfigError, load_config

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    console().print(
        f"[green]ok[/green] {config}: {len(cfg.programs)} program(s), "
        f"{len(cfg.recovery)} recovery rule(s)"
    )


for _cmd in (*_supervisor.commands, *_journal.commands, *_chaos.commands):
    main.add_command(_cmd)

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
