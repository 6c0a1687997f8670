"""The ``selfheal`` command group: each area adds its commands from its own module.

Commands of the supervisor are in ``_supervisor``, of the journal in ``_journal``; this module
only assembles the group and holds the commands that belong to no single area.
"""

from __future__ import annotations

import click

from selfheal.cli import _chaos, _chaos_switch, _experiment, _journal, _supervisor
from selfheal.cli._common import console, fail
from selfheal.errors import ConfigError

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="selfheal")
def main() -> None:
    """Keep services up without a human: supervise, check, recover, and prove it."""


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def check(config: str) -> None:
    """Validate CONFIG (a selfheal.toml) and print every problem with its line."""
    from selfheal.config import load_config

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
# One ``chaos`` group: the proxy, experiments and the kill switch.
for _cmd in (_experiment.experiment_run, *_chaos_switch.commands):
    _chaos.chaos_group.add_command(_cmd)
