"""The ``selfheal`` command group: each area adds its commands from its own module.

Commands of the daemon are in ``_supervisor``, the control commands in ``_control``, the
output commands in ``_logs``, the journal's in ``_journal``, ``import`` in ``_import``; this
module assembles the group and holds the commands that belong to no single area (``check``,
``help``).
"""

from __future__ import annotations

from typing import Any

import click

from selfheal.cli import (
    _chaos,
    _chaos_switch,
    _control,
    _demo,
    _experiment,
    _help,
    _import,
    _journal,
    _logs,
    _supervisor,
)
from selfheal.cli._common import console, fail
from selfheal.errors import ConfigError

__all__ = ["main"]


class _Selfheal(click.Group):
    """The group, saying in one line which extra a command needs when one is missing."""

    def invoke(self, ctx: click.Context) -> Any:
        from selfheal._extras import extra_of

        try:
            return super().invoke(ctx)
        except ImportError as exc:
            missing = extra_of(exc)
            if missing is None:
                raise
            command = ctx.invoked_subcommand or "this command"
            fail(
                f"selfheal {command} needs the {missing.extra!r} extra: pip install "
                f"'selfheal[{missing.extra}]' (missing module: {missing.module})"
            )


@click.group(cls=_Selfheal, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_help.version(), "--version", "-V", message="selfheal %(version)s")
def main() -> None:
    """Keep services up without a human: supervise, check, recover, and prove it.

    The documentation ships with the package: selfheal help [TOPIC].
    """


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
def check(config: str) -> None:
    """Validate CONFIG (a selfheal.toml) and print every problem with its line."""
    from rich.text import Text

    from selfheal.config import config_warnings, load_config

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        fail(str(exc))
    for warning in config_warnings(cfg):
        click.echo(f"warning: {warning}", err=True)
    summary = f" {config}: {len(cfg.programs)} program(s), {len(cfg.recovery)} recovery rule(s)"
    console().print(Text("ok", style="green") + Text(summary))


@main.command(name="help")
@click.argument("topic", required=False)
@click.pass_context
def help_command(ctx: click.Context, topic: str | None) -> None:
    """Show the documentation of TOPIC (supervisor, configuration...), or of a command."""
    if topic is None:
        click.echo(_help.usage())
        return
    group = ctx.parent.command if ctx.parent is not None else main
    command = group.get_command(ctx, topic) if isinstance(group, click.Group) else None
    if command is not None:
        with click.Context(command, info_name=topic, parent=ctx.parent) as sub:
            click.echo(command.get_help(sub))
        return
    try:
        _, text = _help.page(topic)
    except LookupError as exc:
        fail(str(exc))
    click.echo(text)


for _cmd in (
    *_supervisor.commands,
    *_control.commands,
    *_logs.commands,
    *_journal.commands,
    *_import.commands,
    *_chaos.commands,
    *_demo.commands,
):
    main.add_command(_cmd)
# One ``chaos`` group: the proxy, experiments and the kill switch.
for _cmd in (_experiment.experiment_run, *_chaos_switch.commands):
    _chaos.chaos_group.add_command(_cmd)
