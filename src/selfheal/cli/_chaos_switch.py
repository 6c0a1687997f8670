"""``selfheal chaos stop`` / ``chaos resume``: the kill switch of every chaos tool, as a file.

The commands belong to the ``chaos`` group (``commands`` is attached to it); they engage or
release ``<state_dir>/chaos.stop``. Running monkeys see it within their poll interval and roll
every fault back; nothing new starts while it exists.
"""

from __future__ import annotations

import click

from selfheal.chaos import KillSwitch
from selfheal.cli._client import strict_state_dir
from selfheal.cli._common import config_option, console, fail, state_dir_option

__all__ = ["commands", "resume_command", "stop_command"]


@click.command("stop")
@config_option
@state_dir_option
@click.option("--reason", default="selfheal chaos stop", help="Recorded with the switch.")
def stop_command(config: str | None, state_dir: str | None, reason: str) -> None:
    """Engage the chaos kill switch: roll back every fault, start no new one."""
    switch = KillSwitch(strict_state_dir(config, state_dir))
    try:
        switch.engage(reason)
    except OSError as exc:  # also UnsafePathError: a state dir another user controls
        fail(f"cannot engage the kill switch {switch.path}: {exc}")
    console().print(
        f"[red]chaos stopped[/red]: kill switch {switch.path} engaged; running chaos rolls "
        "back within its poll interval. 'selfheal chaos resume' lifts it."
    )


@click.command("resume")
@config_option
@state_dir_option
def resume_command(config: str | None, state_dir: str | None) -> None:
    """Release the chaos kill switch, so chaos may start again."""
    switch = KillSwitch(strict_state_dir(config, state_dir))
    if switch.release():
        console().print(f"[green]chaos may run again[/green]: {switch.path} removed")
    else:
        console().print(f"the kill switch was not engaged ({switch.path} does not exist)")


commands = [stop_command, resume_command]
