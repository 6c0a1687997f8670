"""CLI commands of the journal: ``selfheal events`` and ``selfheal incidents``.

Both read the journal through a read-only SQLite connection, so they work while the daemon
is writing it. The journal is found with ``--db PATH``, else the ``[journal]`` url of
``--config FILE``, else ``.selfheal/journal.db``.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
from rich.table import Table
from rich.text import Text

from selfheal._clock import SYSTEM_CLOCK
from selfheal._json import dumps
from selfheal.cli._common import console, fail
from selfheal.errors import ConfigError, JournalError
from selfheal.events import check_pattern
from selfheal.store import (
    DEFAULT_PATH,
    Incident,
    JournalNotFoundError,
    JournalStore,
    MttrSummary,
    SqliteJournalStore,
    StoredEvent,
)

__all__ = ["commands"]

#: Seconds between polls of ``events --follow``.
FOLLOW_INTERVAL = 0.5
# SQLite integers are 64-bit; a larger --limit would end in an OverflowError.
_MAX_LIMIT = 1_000_000_000

_db_option = click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help=f"Journal file (default: {DEFAULT_PATH}), or a fleet's redis:// URL.",
)
_config_option = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="A selfheal.toml whose [journal] url names the journal.",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")

P = ParamSpec("P")
R = TypeVar("R")


def _readable(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn SQLite errors (not a journal, a corrupt file) into one clear line."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            fail(f"cannot read the journal: {exc} (is it a selfheal journal?)")
        except JournalError as exc:  # a fleet's journal on Redis that does not answer
            fail(str(exc))

    return wrapper


def _open_store(db: str | None, config_path: str | None) -> JournalStore:
    if db and config_path:
        fail("give --db or --config, not both")
    if config_path:
        from selfheal.config import load_config

        try:
            config = load_config(config_path)
        except ConfigError as exc:
            fail(str(exc))
        if config.journal.fleet_url is not None:
            return _fleet_store(config.journal.fleet_url)
        path = config.journal_path(Path(config_path).resolve().parent)
    elif db and "://" in db and not db.startswith("sqlite:"):
        return _fleet_store(db)
    else:
        path = Path(db) if db else DEFAULT_PATH
    try:
        return SqliteJournalStore(path, readonly=True)
    except JournalNotFoundError:
        fail(
            f"no journal at {path} (the daemon creates it on start; "
            "pass --db PATH or --config FILE to read another one)"
        )
    except OSError as exc:  # a directory this user cannot enter, a file it cannot read
        fail(f"cannot read the journal at {path}: {exc.strerror or exc}")


def _fleet_store(url: str) -> JournalStore:
    from selfheal.store.redis import RedisJournalStore

    try:
        return RedisJournalStore(url, readonly=True)
    except ValueError as exc:
        fail(str(exc))


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        # Supervised restarts take milliseconds; "0.00s" would hide them.
        return f"{seconds * 1000:.1f}ms"
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _data_text(data: dict[str, Any], width: int = 80) -> str:
    text = dumps(data, separators=(",", ":"), default=str)
    return text if len(text) <= width else text[: width - 3] + "..."


_SEVERITY_STYLE = {"critical": "bold red", "error": "red", "warning": "yellow", "debug": "dim"}


def _event_line(event: StoredEvent) -> Text:
    line = Text(f"{_when(event.timestamp)} ")
    line.append(f"{event.severity:<8} ", style=_SEVERITY_STYLE.get(event.severity, ""))
    line.append(event.type, style="bold")
    line.append(f" [{event.source}] " if event.source else " ")
    line.append(_data_text(dict(event.data), 120), style="dim")
    return line


def _check_pattern(pattern: str | None) -> None:
    if pattern is not None:
        try:
            check_pattern(pattern)
        except ValueError as exc:
            fail(f"--type {exc}")


@click.command("events")
@_db_option
@_config_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until Ctrl-C.")
@_json_option
@click.option("--type", "type_pattern", default=None, help="Only types matching, e.g. 'health.*'.")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1, max=_MAX_LIMIT),
    default=50,
    show_default=True,
    help="How many of the newest events to show.",
)
@_readable
def events_command(  # noqa: PLR0917 - click passes each option as an argument
    db: str | None,
    config_path: str | None,
    follow: bool,
    as_json: bool,
    type_pattern: str | None,
    limit: int,
) -> None:
    """Show the newest events of the journal (JSON: one object per line)."""
    _check_pattern(type_pattern)
    store = _open_store(db, config_path)
    out = console()
    rows = store.events(type=type_pattern, limit=limit)

    def show(batch: list[StoredEvent]) -> None:
        for event in batch:
            if as_json:
                click.echo(dumps(event.to_dict(), default=str))
            else:
                out.print(_event_line(event), soft_wrap=True)

    show(rows)
    if not follow:
        if not rows and not as_json:
            out.print("no events")
        return
    last = rows[-1].seq if rows else _last_seq(store)
    try:
        while True:
            SYSTEM_CLOCK.sleep(FOLLOW_INTERVAL)
            batch = store.events(type=type_pattern, limit=1000, after_seq=last)
            if batch:
                show(batch)
                last = batch[-1].seq
    except KeyboardInterrupt:
        return


def _last_seq(store: JournalStore) -> int:
    newest = store.events(limit=1)
    return newest[-1].seq if newest else 0


def _incident_table(incidents: list[Incident]) -> Table:
    table = Table(title="Incidents (newest first)", title_justify="left")
    table.add_column("#", no_wrap=True, justify="right")
    table.add_column("subject", overflow="fold")
    table.add_column("opened (UTC)", no_wrap=True)
    table.add_column("opened by / closed by", overflow="fold")
    table.add_column("TTD", no_wrap=True, justify="right")
    table.add_column("TTR", no_wrap=True, justify="right")
    table.add_column("state", no_wrap=True)
    for i in incidents:
        by = Text(i.opened_by)
        by.append("\n" + (i.closed_by or "-"), style="dim")
        table.add_row(
            str(i.id),
            Text(i.subject),
            _when(i.opened_at),
            by,
            _duration(i.ttd),
            _duration(i.ttr),
            Text("open", style="bold red") if i.is_open else Text("closed", style="green"),
        )
    return table


def _mttr_table(summary: list[MttrSummary]) -> Table:
    table = Table(title="MTTR per subject", title_justify="left")
    for name in ("subject", "incidents", "open", "MTTR", "max TTR", "MTTD", "last opened (UTC)"):
        left = name == "subject"
        table.add_column(
            name, justify="left" if left else "right", no_wrap=not left, overflow="fold"
        )
    for s in summary:
        table.add_row(
            Text(s.subject),
            str(s.incidents),
            Text(str(s.open), style="bold red" if s.open else ""),
            _duration(s.mttr),
            _duration(s.max_ttr),
            _duration(s.mttd),
            _when(s.last_opened_at),
        )
    return table


@click.command("incidents")
@_db_option
@_config_option
@_json_option
@click.option("--open", "open_only", is_flag=True, help="Only incidents still open.")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1, max=_MAX_LIMIT),
    default=50,
    show_default=True,
    help="How many of the newest incidents to list.",
)
@_readable
def incidents_command(
    db: str | None, config_path: str | None, as_json: bool, open_only: bool, limit: int
) -> None:
    """List incidents with time to detect and to recover, and MTTR per subject."""
    store = _open_store(db, config_path)
    incidents = store.incidents(open_only=open_only, limit=limit)
    summary = store.mttr_by_subject()
    if as_json:
        click.echo(
            dumps(
                {
                    "incidents": [i.to_dict() for i in incidents],
                    "mttr": [s.to_dict() for s in summary],
                },
                indent=2,
            )
        )
        return
    out = console()
    if not incidents:
        out.print("no incidents" + (" open" if open_only else ""))
    else:
        out.print(_incident_table(incidents))
    if summary:
        out.print(_mttr_table(summary))


commands: list[click.Command] = [events_command, incidents_command]
