"""The components a plan's sections describe: the journal and the recovery engine.

Shared by `SelfHealingApp.from_plan` and the daemon's reloads, so a config file gives the same
components whoever reads it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfheal._clock import Clock
from selfheal._safepath import open_private, safe_dir
from selfheal.errors import StartError
from selfheal.events import EventBus
from selfheal.recovery import RecoveryEngine, rate_limit_from_dict, rule_from_dict
from selfheal.store import Journal, JournalOptions, SqliteJournalStore

if TYPE_CHECKING:
    from selfheal.interfaces import Degradable, HealthSource, ProgramControl, RecoveryLeases
    from selfheal.store.redis import FleetLeases

__all__ = [
    "add_scenarios_from_plan",
    "fleet_from_plan",
    "journal_advice",
    "journal_from_plan",
    "recovery_engine_from_plan",
]


def journal_from_plan(
    section: Mapping[str, Any] | None, *, bus: EventBus, clock: Clock
) -> Journal | None:
    """Return the journal of a plan's ``[journal]`` section, or None when it is disabled.

    Raises:
        StartError: If its file cannot be created or opened (the message says what to do).
    """
    if not section or not section.get("enabled", True):
        return None
    if section.get("url") and not section.get("local_copy"):
        return None  # the fleet's journal on Redis only
    path = Path(section["path"])
    try:
        _private_file(path)
        store = SqliteJournalStore(path, synchronous=section["synchronous"])
    except (OSError, sqlite3.Error) as exc:
        raise StartError(journal_advice(path, exc)) from exc
    options = JournalOptions(**section.get("options", {}))
    return Journal(bus, store, options=options, clock=clock)


def fleet_from_plan(
    section: Mapping[str, Any] | None, *, bus: EventBus, clock: Clock
) -> tuple[Journal, FleetLeases] | None:
    """Return the fleet's journal on Redis and its recovery leases, for a Redis ``url``.

    None when the ``[journal]`` section names no Redis ``url`` (one machine, no fleet).
    """
    if not section or not section.get("enabled", True) or not section.get("url"):
        return None
    from selfheal.store.redis import FleetLeases, RedisJournalStore

    options = JournalOptions(**section.get("options", {}))
    store = RedisJournalStore(section["url"], max_len=options.max_rows)
    journal = Journal(bus, store, options=options, clock=clock)
    return journal, FleetLeases(section["url"], clock=clock)


def recovery_engine_from_plan(
    extra: Mapping[str, Any],
    *,
    bus: EventBus,
    clock: Clock,
    programs: ProgramControl | None,
    health: HealthSource | None,
    features: Degradable | None,
    leases: RecoveryLeases | None = None,
) -> RecoveryEngine | None:
    """Return the engine of a plan's ``[[recovery]]`` rules, or None when there are none.

    Rules with ``fleet = true`` run on one node of the fleet when `leases` are given.
    """
    rules = extra.get("recovery") or []
    if not rules:
        return None
    # Validated when the plan was compiled: built here with the standard library only.
    engine = extra.get("recovery_engine") or {}
    return RecoveryEngine(
        bus,
        [rule_from_dict(r) for r in rules],
        programs=programs,
        health=health,
        features=features,
        clock=clock,
        dry_run=bool(engine.get("dry_run", False)),
        rate_limit=rate_limit_from_dict(engine),
        leases=leases,
    )


def add_scenarios_from_plan(tester: object, scenarios: Mapping[str, Any]) -> list[str]:
    """Register a plan's ``[synthetic.NAME]`` scenarios on `tester`; return their names.

    The plan holds the tables as validated; `selfheal.synthetic.config` builds them, with
    pydantic (it has no plain-data builder yet), so only a daemon with scenarios loads it.
    """
    from selfheal.synthetic.config import ScenarioConfig, add_scenarios

    table = {name: ScenarioConfig.model_validate(s) for name, s in scenarios.items()}
    return add_scenarios(tester, table)  # type: ignore[arg-type]


def journal_advice(path: Path | str, exc: BaseException) -> str:
    """Return what to say when the journal at `path` cannot be opened or written."""
    return (
        f"cannot open the journal {path}: {exc} (move the file away, or set "
        "[journal] enabled = false)"
    )


def _private_file(path: Path) -> None:
    """Make `path` (and SQLite's ``-wal``/``-shm`` beside it) readable by its owner only.

    The journal holds every event, with the last lines of programs' output. SQLite creates
    its side files with the main file's mode, so creating that one 0600 is enough. Its
    directory is checked and no symlink is followed: never a chmod of another user's target.
    """
    safe_dir(path.parent, 0o700)
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        flags = os.O_WRONLY | (os.O_CREAT if p == path else 0)
        with contextlib.suppress(FileNotFoundError):
            fd = open_private(p, flags, 0o600)
            try:
                os.fchmod(fd, 0o600)
            finally:
                os.close(fd)
