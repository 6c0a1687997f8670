"""The daemon's components, built from a `DaemonPlan` and reloaded on SIGHUP.

``selfheal run CONFIG`` runs a supervisor, its journal, its recovery rules and its control
API, in that start order, on one `Runtime`. A reload compiles the new plan in a short-lived
subprocess (``python -m selfheal.cli.daemon compile``), so the daemon never loads pydantic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.errors import ReloadError, StartError
from selfheal.runtime import DaemonPlan, Runtime, compile_plan
from selfheal.store import Journal, JournalOptions, SqliteJournalStore
from selfheal.supervisor import ProgramHealth, Supervisor

if TYPE_CHECKING:
    from selfheal.recovery import RecoveryEngine
    from selfheal.store.redis import FleetLeases

__all__ = ["Daemon", "Recompile", "compile_in_subprocess", "journal_advice"]

logger = logging.getLogger("selfheal.daemon")


#: Compiles a config file into a plan, or raises `ReloadError` with the reasons.
Recompile = Callable[[str], Awaitable[DaemonPlan]]


async def compile_in_subprocess(config_path: str) -> DaemonPlan:
    """Compile `config_path` in a short-lived ``python -m selfheal.cli.daemon compile``.

    Keeps pydantic out of the daemon's memory.

    Raises:
        ReloadError: With the config's problems, or why the compiler failed.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "selfheal.cli.daemon",
        "compile",
        config_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise ReloadError(err.decode(errors="replace").strip() or f"exit {proc.returncode}")
    return DaemonPlan.from_json(out.decode())


class Daemon:
    """What ``selfheal run CONFIG`` runs: a supervisor and its control API, from a plan.

    Args:
        plan: The validated config (`compile_plan`, or `DaemonPlan.from_json`).
        clock: The clock of every component.
        recompile: How `reload` turns the config file into a new plan (by default in a
            subprocess, so the daemon never loads pydantic).
    """

    def __init__(
        self,
        plan: DaemonPlan,
        *,
        clock: Clock = SYSTEM_CLOCK,
        recompile: Recompile = compile_in_subprocess,
    ) -> None:
        self.plan = plan
        self._recompile = recompile
        self.runtime = Runtime(clock=clock)
        self.supervisor: Supervisor = Supervisor(
            plan.programs,
            bus=self.runtime.bus,
            clock=clock,
            state_dir=plan.state_dir,
            log_dir=plan.log_dir,
        )
        self.runtime.add(self.supervisor)
        journal = plan.extra.get("journal") or {}
        self.journal = self._journal(journal, clock)
        if self.journal is not None:
            # Started first and stopped last, so it records the whole run.
            self.runtime.add(self.journal, before=self.supervisor)
        self.leases: FleetLeases | None = None
        if journal.get("enabled", True) and journal.get("url"):
            self._fleet(journal, clock)
        self.recovery = self._recovery(plan.extra, clock)
        if self.recovery is not None:
            # Added after the supervisor, so it stops before it: the programs' deliberate
            # exits at shutdown never trigger a recovery.
            self.runtime.add(self.recovery)
        control = plan.control
        if control.get("enabled", True):
            from selfheal.web.control import ControlServer

            self.runtime.add(
                ControlServer(
                    self.supervisor,
                    state_dir=plan.state_dir,
                    host=control.get("host", "127.0.0.1"),
                    port=control.get("port", 0),
                    socket_path=control.get("socket"),
                    token=control.get("token"),
                    status_requires_token=control.get("status_requires_token", False),
                    reload=self.reload,
                    extra={"config": plan.config_path, "log_dir": plan.log_dir},
                )
            )
        self._pending: set[asyncio.Task[None]] = set()

    def _fleet(self, section: dict[str, Any], clock: Clock) -> None:
        """Add the fleet's journal on Redis, and the leases of fleet recovery rules."""
        from selfheal.store.redis import FleetLeases, RedisJournalStore

        options = JournalOptions(**section.get("options", {}))
        store = RedisJournalStore(section["url"], max_len=options.max_rows)
        fleet = Journal(self.runtime.bus, store, options=options, clock=clock)
        self.runtime.add(fleet, before=self.supervisor)
        self.leases = FleetLeases(section["url"], clock=clock)
        self.runtime.add(self.leases, before=self.supervisor)

    def _journal(self, section: dict[str, Any] | None, clock: Clock) -> Journal | None:
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
        return Journal(self.runtime.bus, store, options=options, clock=clock)

    def _recovery(self, extra: dict[str, Any], clock: Clock) -> RecoveryEngine | None:
        rules = extra.get("recovery") or []
        if not rules:
            return None
        # Only a daemon with recovery rules pays for pydantic (about 13 MiB): the plan holds
        # them as already-validated JSON, and they become Rule objects here.
        from selfheal.recovery import RecoveryEngine
        from selfheal.recovery.config import (
            RecoveryEngineConfig,
            RecoveryRuleConfig,
            rules_from_config,
        )

        engine = RecoveryEngineConfig.model_validate(extra.get("recovery_engine") or {})
        return RecoveryEngine(
            self.runtime.bus,
            rules_from_config([RecoveryRuleConfig.model_validate(r) for r in rules]),
            programs=self.supervisor,
            health=ProgramHealth(self.supervisor),
            clock=clock,
            dry_run=engine.dry_run,
            rate_limit=engine.limit(),
            leases=self.leases,
        )

    @classmethod
    def from_config(cls, config_path: str | os.PathLike[str], **kw: Any) -> Daemon:
        """Compile `config_path` here (needs pydantic) and build the daemon.

        Raises:
            ConfigError: Naming every bad key with its line.
        """
        return cls(compile_plan(config_path), **kw)

    def __repr__(self) -> str:
        return f"Daemon({self.plan.config_path!r})"

    async def reload(self) -> dict[str, Any]:
        """Re-read the config file: apply its programs (only changed ones restart) and rules.

        Recovery rules are replaced when ``[[recovery]]`` or ``[recovery_engine]`` changed
        (running recoveries are cancelled). ``[control]`` and ``[journal]`` changes need a
        restart of the daemon: the answer names them under ``restart_needed``.

        Raises:
            ReloadError: If the file is not a valid config; nothing is changed then.
        """
        plan = await self._recompile(self.plan.config_path)
        old, new = self.plan, plan
        restart_needed = []
        if (new.control, new.state_dir, new.log_dir) != (old.control, old.state_dir, old.log_dir):
            restart_needed.append("control")
        if new.extra.get("journal") != old.extra.get("journal"):
            restart_needed.append("journal")
        if restart_needed:
            logger.warning("reload: %s changes take effect at the next start", restart_needed)
        result: dict[str, Any] = dict((await self.supervisor.apply(plan.programs)).to_dict())
        rule_keys = ("recovery", "recovery_engine")
        if any(new.extra.get(k) != old.extra.get(k) for k in rule_keys):
            engine = self._recovery(plan.extra, self.runtime.clock)
            # After the supervisor, as at start: stopped before it at shutdown.
            await self.runtime.replace(self.recovery, engine, after=self.supervisor)
            self.recovery = engine
            result["recovery_rules"] = len(plan.extra.get("recovery") or [])
        self.plan = plan
        self.runtime.bus.emit("supervisor.reloaded", "supervisor", "info", **result)
        return {**result, "restart_needed": restart_needed}

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM; SIGHUP reloads the config."""
        loop = asyncio.get_running_loop()

        def hup() -> None:
            if self.runtime.stopping:
                logger.warning("reload ignored: the daemon is stopping")
                return
            task = loop.create_task(self._reload_logged())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        await self.runtime.run(on_signal={signal.SIGHUP: hup})

    async def _reload_logged(self) -> None:
        try:
            result = await self.reload()
        except ReloadError as exc:
            logger.error("reload refused: %s", exc)
        else:
            logger.warning("reloaded: %s", result)


def journal_advice(path: Path | str, exc: BaseException) -> str:
    """Return what to say when the journal at `path` cannot be opened or written."""
    return (
        f"cannot open the journal {path}: {exc} (move the file away, or set "
        "[journal] enabled = false)"
    )


def _private_file(path: Path) -> None:
    """Make `path` (and SQLite's ``-wal``/``-shm`` beside it) readable by its owner only.

    The journal holds every event, with the last lines of programs' output. SQLite creates
    its side files with the main file's mode, so creating that one 0600 is enough.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, 0o600)
