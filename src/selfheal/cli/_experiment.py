"""``selfheal chaos run EXPERIMENT``: run a chaos experiment with a live display.

Exit codes: 0 the steady state held, 1 it deviated, 2 the run was aborted (and rolled back),
or not started because the kill switch (``selfheal chaos stop``) is engaged, 3 the steady
state was not met before the method (nothing was injected), 4 the experiment could not be run
(bad file or arguments, or refused in production).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from selfheal.cli._common import config_option, console, fail, state_dir_option

__all__ = ["EXIT_UNUSABLE", "experiment_run"]

#: Exit code for an experiment that could not be run at all (1, 2 and 3 are outcomes).
EXIT_UNUSABLE = 4

_OUTCOME_STYLE = {"held": "green", "deviated": "red", "aborted": "yellow", "not_met": "yellow"}


class _UnusableError(click.UsageError):
    exit_code = EXIT_UNUSABLE


class _ExperimentCommand(click.Command):
    """A command whose usage errors exit 4: click's usual 2 means "aborted" here."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _UnusableError(exc.format_message(), exc.ctx) from None


def _parse_vars(values: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--var {item!r}: expected KEY=VALUE", EXIT_UNUSABLE)
        out[key] = value
    return out


@click.command(name="run", cls=_ExperimentCommand)
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option(
    "--journal",
    "journal",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write the run record (JSON) to this file.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON, no display.")
@click.option("--seed", type=int, default=None, help="Seed the run's randomness (repeat a run).")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a configuration value (repeatable).",
)
@click.option(
    "--allow-production",
    is_flag=True,
    help="Run even where SELFHEAL_ENV=production.",
)
@config_option
@state_dir_option
def experiment_run(
    *,
    experiment: str,
    journal: str | None,
    as_json: bool,
    seed: int | None,
    variables: tuple[str, ...],
    allow_production: bool,
    config: str | None,
    state_dir: str | None,
) -> None:
    """Run EXPERIMENT (.toml, or a Chaos Toolkit .json/.yaml file) and exit with its outcome.

    Exit codes: 0 held, 1 deviated, 2 aborted (rolled back, or not started while the kill
    switch is engaged), 3 steady state not met before the method, 4 the experiment could not
    be run. Rollbacks run after SIGINT and SIGTERM too, and when `selfheal chaos stop` engages
    the kill switch of the state directory (that of -c/--state-dir, as for `chaos stop`).
    """
    from selfheal.chaos import KillSwitch, Safeguards
    from selfheal.chaos.experiment import (
        ChaosRefusedError,
        ExperimentError,
        ExperimentRunner,
        load_experiment,
        refuse_in_production,
        secret_values,
    )
    from selfheal.cli._client import strict_state_dir
    from selfheal.events import Event, EventBus

    try:
        safeguards = Safeguards(
            allow_production=allow_production,
            kill_switch=KillSwitch(strict_state_dir(config, state_dir)),
        )
    except SystemExit:  # the config's problem is printed; 2 would read as "aborted"
        raise SystemExit(EXIT_UNUSABLE) from None
    # With --json, stdout carries the record alone: what the experiment's modules and processes
    # print (at import, in activities) goes to stderr.
    with _stdout_to_stderr() if as_json else contextlib.nullcontext():
        try:
            # Before loading: loading imports the python providers' modules.
            refuse_in_production(allow=allow_production)
            loaded = load_experiment(experiment, variables=_parse_vars(variables))
        except (ChaosRefusedError, ExperimentError) as exc:
            fail(str(exc), EXIT_UNUSABLE)
        bus = EventBus()
        events: list[dict[str, Any]] = []

        def keep(event: Event) -> None:
            events.append(event.to_dict())

        bus.subscribe("chaos.*", keep)
        display = None if as_json else _Display(secret_values(loaded.secrets))
        runner = ExperimentRunner(
            bus=bus,
            seed=seed,
            on_progress=None if display is None else display.show,
            safeguards=safeguards,
        )
        if display is not None:
            display.header(loaded.title, loaded.source)
        with display.live() if display is not None else contextlib.nullcontext():
            record = runner.run(loaded)
    data = record.to_dict()
    data["events"] = events
    if journal is not None:
        _write_journal(Path(journal), data)
    if display is not None:
        display.summary(data, journal)
    else:
        click.echo(json.dumps(data, indent=2))
    sys.stdout.flush()
    raise SystemExit(record.exit_code)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """Point file descriptor 1 at stderr while inside (child processes inherit it too)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _write_journal(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        click.echo(f"error: cannot write the journal {path}: {exc.strerror}", err=True)


class _Display:
    """Lines for finished steps, and a spinner for the running one when stdout is a terminal."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.console = console()
        self.secrets = secrets
        self.status: Any = None

    def _clean(self, text: str) -> str:
        from rich.markup import escape

        from selfheal.chaos.experiment import scrub

        return escape(str(scrub(text, self.secrets)))

    def header(self, title: str, source: str) -> None:
        self.console.print(f"[bold]{self._clean(title)}[/bold]  [dim]{self._clean(source)}[/dim]")

    def live(self) -> Any:
        if not self.console.is_terminal:
            return contextlib.nullcontext()
        self.status = self.console.status("starting")
        return self.status

    def show(self, step: Any) -> None:
        phase = f"[cyan]{step.phase:<14}[/cyan]"
        if step.kind == "phase":
            self.console.print(f"[bold]▸ {self._clean(step.message)}[/bold]")
        elif step.kind == "start" and self.status is not None:
            self.status.update(f"{step.phase}: {self._clean(step.message)}")
        elif step.kind == "result" and step.result is not None:
            self.console.print(f"  {phase} {self._result_line(step.result)}")
        elif step.kind == "note":
            self.console.print(f"  {phase} [italic]{self._clean(step.message)}[/italic]")

    def _result_line(self, result: Any) -> str:
        if result.status != "succeeded":
            mark = "[red]✗[/red]"
        elif result.tolerance_met is False:
            mark = "[yellow]✗[/yellow]"
        else:
            mark = "[green]✓[/green]"
        line = f"{mark} {self._clean(result.name)} [dim]{self._clean(result.provider)}[/dim]"
        if result.tolerance is not None:
            verdict = "within" if result.tolerance_met else "not within"
            line += f" [dim]{verdict} {self._clean(result.tolerance)}[/dim]"
        if result.error:
            line += f" [red]{self._clean(result.error)}[/red]"
        return f"{line} [dim]({result.duration:.2f}s)[/dim]"

    def summary(self, data: dict[str, Any], journal: str | None) -> None:
        outcome = data["outcome"] or "aborted"
        style = _OUTCOME_STYLE.get(outcome, "yellow")
        self.console.print(
            f"[bold {style}]{outcome.upper()}[/bold {style}] {self._clean(data['reason'])} "
            f"(exit {data['exit_code']})"
        )
        for key, label in (("time_to_detect", "detected"), ("time_to_recover", "recovered")):
            if data[key] is not None:
                self.console.print(f"  {label} after {data[key]:.2f}s")
        if data["ignored_signals"]:
            self.console.print(f"  ignored during rollbacks: {', '.join(data['ignored_signals'])}")
        if journal is not None:
            self.console.print(f"  journal: {self._clean(journal)}")
