"""The daemon's wiring: one clock, one bus, components started in order, stopped in reverse.

`Runtime` is generic: anything with ``async start()`` / ``async stop()`` (a `Component`) can
be added: the journal, the supervisor, its control API, the recovery engine. `Daemon`
builds the runtime ``selfheal run CONFIG`` runs, from a `DaemonPlan`.

A plan is the validated config in standard-library objects. ``selfheal run`` validates the
file (pydantic), writes the plan to a memfd and execs ``python -m selfheal.runtime daemon``:
the long-running process never imports pydantic, click or rich, which keeps its memory near
supervisord's. A reload compiles the new plan in a short-lived subprocess for the same reason.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.errors import StartError, StateDirLockedError
from selfheal.events import EventBus
from selfheal.interfaces import Component
from selfheal.supervisor._spec import ProgramSpec, spec_from_dict, spec_to_dict

if TYPE_CHECKING:
    from selfheal.config import SelfhealConfig
    from selfheal.recovery import RecoveryEngine
    from selfheal.store._journal import Journal
    from selfheal.store.redis import FleetLeases
    from selfheal.supervisor import Supervisor

__all__ = ["Daemon", "DaemonPlan", "Runtime", "StartError", "compile_plan", "main"]

logger = logging.getLogger("selfheal.runtime")


class Runtime:
    """Starts components in order and stops them in reverse, sharing one clock and one bus.

    If a component fails to start, the ones already started are stopped (in reverse) and the
    error is raised. Use as ``async with runtime:`` or call `start`/`stop`.

    Args:
        components: In start order.
        clock: The clock every component should be given.
        bus: The bus every component should publish on (a new one if None).
    """

    def __init__(
        self,
        components: Iterable[Component] = (),
        *,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
    ) -> None:
        self.clock = clock
        self.bus = bus if bus is not None else EventBus(clock=clock)
        self.components: list[Component] = list(components)
        self._started: list[Component] = []
        self._stop_requested: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"Runtime(components={self.components!r})"

    def add(self, component: Component, *, before: Component | None = None) -> None:
        """Add `component` at the end (or just before `before`) of the start order."""
        if before is None:
            self.components.append(component)
        else:
            self.components.insert(self.components.index(before), component)

    async def replace(
        self, old: Component | None, new: Component | None, *, after: Component | None = None
    ) -> None:
        """Swap `old` for `new` at its place in the order, stopping and starting as needed.

        Args:
            old: A component of this runtime, or None to add `new`.
            new: Its replacement, or None to remove `old`.
            after: Where `new` goes when there is no `old` (at the end if None).
        """
        running = old in self._started if old is not None else bool(self._started)
        if old is not None:
            at = self.components.index(old)
            if old in self._started:
                await old.stop()
                self._started.remove(old)
            self.components.remove(old)
        else:
            at = self.components.index(after) + 1 if after is not None else len(self.components)
        if new is None:
            return
        self.components.insert(at, new)
        if running:
            await new.start()
            started = [c for c in self.components if c in self._started or c is new]
            self._started = started

    async def start(self) -> None:
        """Start every component in order; on failure stop the started ones and raise."""
        for component in self.components:
            try:
                await component.start()
            except BaseException:
                await self.stop()
                raise
            self._started.append(component)

    async def stop(self) -> None:
        """Stop the started components in reverse order; errors are logged, not raised."""
        while self._started:
            component = self._started.pop()
            try:
                await component.stop()
            except Exception:
                logger.exception("stopping %r failed", component)

    async def __aenter__(self) -> Runtime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def stopping(self) -> bool:
        """Whether `run` was asked to stop (it may still be stopping components)."""
        return self._stop_requested is not None and self._stop_requested.is_set()

    def request_stop(self) -> None:
        """Make `run` return (after stopping everything); safe from signal handlers."""
        if self._stop_requested is None:
            return
        if self._stop_requested.is_set():
            logger.warning("already stopping: waiting for the programs to stop")
        self._stop_requested.set()

    async def run(
        self,
        *,
        stop_signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM),
        on_signal: dict[int, Any] | None = None,
    ) -> None:
        """Start, wait for a stop signal (or `request_stop`), stop.

        Args:
            stop_signals: Signals that end the run cleanly.
            on_signal: Other signals and a callable each (e.g. SIGHUP -> reload).
        """
        loop = asyncio.get_running_loop()
        self._stop_requested = asyncio.Event()
        installed: list[int] = []
        for sig in stop_signals:
            loop.add_signal_handler(sig, self.request_stop)
            installed.append(sig)
        for sig, handler in (on_signal or {}).items():
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
        # `selfheal run` blocks them across its exec so that none is lost or fatal while the
        # daemon starts: handled now, they may come (a pending one is delivered at once).
        signal.pthread_sigmask(signal.SIG_UNBLOCK, installed)
        try:
            await self.start()
            await self._stop_requested.wait()
        finally:
            # Stop with the handlers still installed: a second Ctrl-C or SIGTERM while the
            # programs take their grace period must not kill us and leave them running.
            self._stop_requested.set()
            await self.stop()
            for sig in installed:
                loop.remove_signal_handler(sig)


@dataclass(frozen=True, slots=True)
class DaemonPlan:
    """The validated config of a daemon, in standard-library objects, paths resolved.

    Attributes:
        config_path: The absolute path of the ``selfheal.toml`` (reloads re-read it).
        state_dir: Lock, children file, notify socket, control files.
        log_dir: Programs' output files.
        programs: What to supervise, in config order.
        control: The ``[control]`` table as plain data (``enabled``, ``host``, ``port``,
            ``socket`` (absolute or None), ``token``, ``status_requires_token``).
        extra: The rest of the config (``recovery``, ``journal``...) as plain data, for the
            components that other areas add.
    """

    config_path: str
    state_dir: str
    log_dir: str
    programs: tuple[ProgramSpec, ...]
    control: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the plan as JSON (`from_json` reads it back)."""
        return json.dumps(
            {
                "config_path": self.config_path,
                "state_dir": self.state_dir,
                "log_dir": self.log_dir,
                "programs": [spec_to_dict(p) for p in self.programs],
                "control": self.control,
                "extra": self.extra,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> DaemonPlan:
        """Return the plan `to_json` wrote."""
        data = json.loads(text)
        return cls(
            config_path=data["config_path"],
            state_dir=data["state_dir"],
            log_dir=data["log_dir"],
            programs=tuple(spec_from_dict(p) for p in data["programs"]),
            control=dict(data.get("control", {})),
            extra=dict(data.get("extra", {})),
        )


def compile_plan(config_path: str | os.PathLike[str]) -> DaemonPlan:
    """Read, validate and resolve a config file into a `DaemonPlan` (needs pydantic).

    Relative paths (``state_dir``, ``log_dir``, ``socket``, programs' ``cwd``) are relative
    to the config file's directory; a program without ``cwd`` runs there.

    Raises:
        ConfigError: Naming every bad key with its line.
    """
    from dataclasses import replace

    path = Path(config_path).resolve()
    base = path.parent
    config = load_daemon_config(path)
    control = config.control
    programs = []
    for name, prog in config.programs.items():
        spec = prog.to_spec(name, base_dir=base)
        programs.append(spec if spec.cwd is not None else replace(spec, cwd=str(base)))
    return DaemonPlan(
        config_path=str(path),
        state_dir=str(base / control.state_dir),
        log_dir=str(base / (control.log_dir or f"{control.state_dir}/logs")),
        programs=tuple(programs),
        control={
            "enabled": control.enabled,
            "host": control.host,
            "port": control.port,
            "socket": str(base / control.socket) if control.socket else None,
            "token": control.token,
            "status_requires_token": control.status_requires_token,
        },
        extra={
            # Only what the user set: re-validating a dump of defaults can trip validators
            # that reject keys given together (a step's `shell` without `command`).
            **config.model_dump(
                mode="json", exclude={"programs", "control", "journal"}, exclude_unset=True
            ),
            "journal": {
                "enabled": config.journal.enabled,
                "path": str(config.journal_path(base)),
                "url": config.journal.fleet_url,
                "local_copy": config.journal.local_copy,
                "synchronous": config.journal.synchronous,
                "options": dataclasses.asdict(config.journal.options()),
            },
        },
    )


def load_daemon_config(path: str | os.PathLike[str]) -> SelfhealConfig:
    """Load and validate a config file, including the checks that span programs.

    Raises:
        ConfigError: Naming every bad key with its line.
    """
    import tomllib

    from selfheal.config import load_config, validate_model
    from selfheal.supervisor.config import ProgramsTable

    config = load_config(Path(path))
    text = Path(path).read_text(encoding="utf-8")
    with contextlib.suppress(tomllib.TOMLDecodeError):
        validate_model(ProgramsTable, tomllib.loads(text), text=text, source=str(path))
    return config


#: Compiles a config file into a plan, or raises `ReloadError` with the reasons.
Recompile = Callable[[str], Awaitable[DaemonPlan]]


async def compile_in_subprocess(config_path: str) -> DaemonPlan:
    """Compile `config_path` in a short-lived ``python -m selfheal.runtime compile``.

    Keeps pydantic out of the daemon's memory.

    Raises:
        ReloadError: With the config's problems, or why the compiler failed.
    """
    from selfheal.web.control import ReloadError

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "selfheal.runtime",
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
        from selfheal.supervisor import Supervisor

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
        from selfheal.store._journal import Journal, JournalOptions
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
        import sqlite3

        from selfheal.store._journal import Journal, JournalOptions
        from selfheal.store._sqlite import SqliteJournalStore

        path = Path(section["path"])
        try:
            _private_file(path)
            store = SqliteJournalStore(path, synchronous=section["synchronous"])
        except (OSError, sqlite3.Error) as exc:
            raise StartError(_journal_advice(path, exc)) from exc
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
        from selfheal.supervisor import ProgramHealth

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
        from selfheal.web.control import ReloadError

        try:
            result = await self.reload()
        except ReloadError as exc:
            logger.error("reload refused: %s", exc)
        else:
            logger.warning("reloaded: %s", result)


def _journal_advice(path: Path | str, exc: BaseException) -> str:
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


#: Exit status of a daemon that found another one on its state dir.
EXIT_LOCKED = 3
EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m selfheal.runtime``: ``daemon --plan-fd N`` or ``compile CONFIG``.

    Returns:
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m selfheal.runtime")
    sub = parser.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("daemon", help="run a daemon from a plan (what `selfheal run` execs)")
    d.add_argument("--plan-fd", type=int, required=True)
    d.add_argument("-v", "--verbose", action="store_true")
    c = sub.add_parser("compile", help="print the plan of CONFIG as JSON, or its problems")
    c.add_argument("config")
    args = parser.parse_args(argv)
    if args.mode == "compile":
        from selfheal.config import ConfigError

        try:
            sys.stdout.write(compile_plan(args.config).to_json())
        except ConfigError as exc:
            sys.stderr.write(f"{exc}\n")
            return EXIT_CONFIG
        return 0
    with os.fdopen(args.plan_fd, "r") as f:
        plan = DaemonPlan.from_json(f.read())
    return run_daemon(plan, verbose=args.verbose)


def run_daemon(plan: DaemonPlan, *, verbose: bool = False) -> int:
    """Run a daemon in the foreground, logging to stderr, until SIGINT/SIGTERM.

    Returns:
        0, or `EXIT_LOCKED` if another daemon uses the state dir.
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # probes would log every request
    import sqlite3

    try:
        daemon = Daemon(plan)
    except StartError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    events = logging.getLogger("selfheal.events")

    def log_event(event: Any) -> None:
        level = logging.INFO
        if event.severity in ("warning", "error", "critical"):
            level = logging.WARNING
        if events.isEnabledFor(level):
            data = " ".join(f"{k}={v!r}" for k, v in event.data.items() if k != "tail")
            events.log(level, "%s %s", event.type, data)

    daemon.runtime.bus.subscribe("*", log_event)
    try:
        asyncio.run(daemon.run())
    except StateDirLockedError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_LOCKED
    except OSError as exc:  # e.g. the control port is taken: say so, no traceback
        sys.stderr.write(f"error: cannot run the daemon: {exc}\n")
        return 1
    except sqlite3.Error as exc:  # the journal failed as it started (disk full, locked...)
        path = (plan.extra.get("journal") or {}).get("path", "")
        sys.stderr.write(f"error: {_journal_advice(path, exc)}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
