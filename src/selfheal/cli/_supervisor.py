"""CLI commands of the daemon itself: ``run`` (validate, then exec the lean daemon), ``reload``.

The control commands (status, start, stop...) are in `selfheal.cli._control`, the output
commands (tail, logs) in `selfheal.cli._logs`.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import click

from selfheal.cli._client import connect
from selfheal.cli._common import config_option, console, fail, state_dir_option
from selfheal.errors import ConfigError

__all__ = ["commands"]

_DAEMON_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Log every event (debug level).")
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="How the daemon logs to stderr: lines for people, or one JSON object a line.",
)
def run(config: str, verbose: bool, log_format: str) -> None:
    """Run the daemon in the foreground: supervise CONFIG's programs until SIGINT/SIGTERM.

    SIGHUP (or `selfheal reload`) re-reads CONFIG and restarts only what changed.
    """
    from selfheal.runtime import compile_plan
    from selfheal.supervisor.config import check_privileges

    try:
        plan = compile_plan(config)
    except ConfigError as exc:
        fail(str(exc))
    problems = check_privileges(plan.programs)
    if problems:
        fail("\n  ".join([f"{config}: {len(problems)} problem(s)", *problems]))
    # The validated plan goes to a lean daemon through a memfd; exec keeps the pid, drops
    # click, rich and pydantic from the long-running process.
    fd = os.memfd_create("selfheal-plan", 0)
    os.write(fd, plan.to_json().encode())
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    argv = [sys.executable, "-m", "selfheal.cli.daemon", "daemon", "--plan-fd", str(fd)]
    if verbose:
        argv.append("--verbose")
    if log_format != "text":
        argv += ["--log-format", log_format]
    sys.stdout.flush()
    sys.stderr.flush()
    # The mask survives exec: a SIGINT/SIGTERM while the daemon imports stays pending until
    # it has handlers (`Runtime.run` unblocks them), a clean shutdown instead of a traceback.
    signal.pthread_sigmask(signal.SIG_BLOCK, _DAEMON_SIGNALS)
    os.execv(sys.executable, argv)  # noqa: S606 - an argv list, no shell


def _reload(config: str | None, state_dir: str | None, dry_run: bool) -> None:
    body = connect(config, state_dir).reload(dry_run=dry_run, timeout=75)
    if dry_run:
        _print_preview(body)
        return
    for key in ("added", "removed", "changed", "unchanged"):
        names = body.get(key) or []
        console().print(f"{key}: {', '.join(names) if names else '-'}", markup=False)
    if body.get("scaled"):
        console().print(
            f"scaled: {', '.join(body['scaled'])} ({_scaling(body)}; "
            "the other processes kept running)",
            markup=False,
        )
    if "recovery_rules" in body:
        console().print(f"recovery rules: {body['recovery_rules']} (reloaded)")
    if body.get("restart_needed"):
        console().print(
            f"needs a daemon restart: {', '.join(body['restart_needed'])} "
            "(changed, but applied only when the daemon starts)",
            markup=False,
        )


def _scaling(body: dict[str, Any]) -> str:
    more = [f"+{n}" for n in body.get("processes_added") or []]
    more += [f"-{n}" for n in body.get("processes_removed") or []]
    return ", ".join(more) or "no change"


def _print_preview(body: dict[str, Any]) -> None:
    """Print the lines of supervisorctl's ``reread``: NAME: available, changed, disappeared."""
    lines = [f"{n}: disappeared" for n in body.get("removed") or []]
    lines += [f"{n}: changed" for n in body.get("changed") or []]
    lines += [
        f"{n}: changed (numprocs: {_scaling(body)}; the other processes keep running)"
        for n in body.get("scaled") or []
    ]
    lines += [f"{n}: available" for n in body.get("added") or []]
    if body.get("health_checks_changed"):
        lines.append("[health] checks: changed")
    if body.get("recovery_rules_changed"):
        lines.append("recovery rules: changed")
    lines += [
        f"[{key}]: changed (applied only when the daemon restarts)"
        for key in body.get("restart_needed") or []
    ]
    for line in lines or ["No config updates to processes"]:
        console().print(line, markup=False)


@click.command()
@click.option("--dry-run", is_flag=True, help="Only say what would change; apply nothing.")
@config_option
@state_dir_option
def reload(config: str | None, state_dir: str | None, dry_run: bool) -> None:
    """Re-read the daemon's config; restart only programs whose config changed.

    A program whose numprocs alone changed keeps its processes: new ones start, extra ones
    stop. Recovery rules are reloaded too; [control] and [journal] changes need a daemon
    restart. A config with errors is refused (exit status 1): the daemon keeps the old one.
    With --dry-run, only say what would change (as `selfheal reread`).
    """
    _reload(config, state_dir, dry_run)


@click.command()
@config_option
@state_dir_option
def update(config: str | None, state_dir: str | None) -> None:
    """Apply the changed config (supervisorctl's name for `selfheal reload`)."""
    _reload(config, state_dir, dry_run=False)


@click.command()
@config_option
@state_dir_option
def reread(config: str | None, state_dir: str | None) -> None:
    """Say what `selfheal update` would change, applying nothing (as supervisorctl's reread).

    Each program is listed as available (added), changed or disappeared (removed). A config
    with errors is refused (exit status 1) with its problems.
    """
    _reload(config, state_dir, dry_run=True)


commands: list[click.Command] = [run, reload, reread, update]
