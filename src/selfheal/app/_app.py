"""`SelfHealingApp`: the article's whole system, wired once, from code or from a config file.

One clock, one bus, one journal, one health monitor, the supervisor, the feature manager, the
recovery manager and engine, a synthetic tester and a chaos monkey, started in order on one
`Runtime` and stopped in reverse, readiness draining first. ``selfheal run`` runs the same
wiring (`from_plan`), with the control API on top.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.app._optional import (
    ChaosMonkeyLike,
    SyntheticTesterLike,
    as_component,
    chaos_allowed,
    make_chaos_monkey,
    make_synthetic_tester,
)
from selfheal.app._sources import HealthSources
from selfheal.app._wiring import (
    add_scenarios_from_plan,
    fleet_from_plan,
    journal_from_plan,
    recovery_engine_from_plan,
)
from selfheal.events import EventBus
from selfheal.features import FeatureManager
from selfheal.health import HealthMonitor
from selfheal.interfaces import Component, HealthSource, JournalStore, RecoveryLeases
from selfheal.recovery import RecoveryEngine, RecoveryManager, Rule
from selfheal.runtime import DaemonPlan, Runtime, compile_plan, register_checks
from selfheal.store import Journal
from selfheal.supervisor import ProgramHealth, ProgramSpec, Supervisor

__all__ = ["DEFAULT_APP_URL", "SelfHealingApp"]

logger = logging.getLogger("selfheal.app")

#: The base URL of the app when neither `app_url` nor ``APP_URL`` says (the article's).
DEFAULT_APP_URL = "http://localhost:8000"


@checked_keywords
class SelfHealingApp:
    """The article's `SelfHealingApp`: every self-healing component of one service, wired.

    Attributes (the article's names): `health_monitor`, `feature_manager`, `event_bus`,
    `recovery_manager`, `synthetic_tester`, `chaos_monkey`; and `clock`, `app_url`,
    `supervisor` (None without programs), `recovery_engine` (None without rules),
    `journal` (None without one), `health_source` (checks and programs by name, for
    verification and chaos steady-state checks), `runtime` and `running`.

    `start()` runs until SIGINT/SIGTERM (`handle_shutdown`) or `stop()`, then shuts down in
    order: readiness drains first (``/readyz`` fails for `drain_seconds`), then the chaos
    monkey (rolling back its faults), the synthetic tester, recovery, the supervisor (its
    programs), the health monitor and the journal. In async code, ``await app.run()`` or
    ``async with app:``. Signal handlers are installed by `start` and `run` (in the main
    thread), never by the constructor.

    Args:
        app_name: Shown in logs.
        clock: The one clock of every component (`FakeClock` in tests).
        app_url: The app's base URL for synthetic scenarios (default: ``APP_URL``, else
            ``http://localhost:8000``).
        chaos: Enable the chaos monkey; None (the default) reads ``ENABLE_CHAOS``. Never
            enabled where ``SELFHEAL_ENV=production``.
        drain_seconds: How long readiness fails before the rest shuts down.
        programs: Programs to supervise; None (the default) runs no supervisor.
        state_dir: The supervisor's state directory.
        log_dir: The programs' output files (default ``<state_dir>/logs``).
        rules: Recovery rules for a `RecoveryEngine` (none: no engine).
        journal: Where events and incidents are kept: a `JournalStore` or a SQLite path;
            None (the default) keeps no journal.
        synthetic_tester: Used instead of a `selfheal.synthetic.SyntheticTester`.
        chaos_monkey: Used instead of a `selfheal.chaos.ChaosMonkey`.
        environ: Read instead of `os.environ` (``APP_URL``, ``ENABLE_CHAOS``,
            ``SELFHEAL_ENV``).
    """

    def __init__(
        self,
        app_name: str,
        *,
        clock: Clock = SYSTEM_CLOCK,
        app_url: str | None = None,
        chaos: bool | None = None,
        drain_seconds: float = 0.0,
        programs: Iterable[ProgramSpec] | None = None,
        state_dir: str | os.PathLike[str] = ".selfheal",
        log_dir: str | os.PathLike[str] | None = None,
        rules: Iterable[Rule] = (),
        journal: JournalStore | str | os.PathLike[str] | None = None,
        synthetic_tester: SyntheticTesterLike | None = None,
        chaos_monkey: ChaosMonkeyLike | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = os.environ if environ is None else environ
        if drain_seconds < 0:
            raise ValueError(f"SelfHealingApp: drain_seconds must be >= 0, got {drain_seconds!r}")
        self.app_name = app_name
        self.clock = clock
        self.app_url = app_url or env.get("APP_URL") or DEFAULT_APP_URL
        self.drain_seconds = float(drain_seconds)
        self.event_bus = EventBus(clock=clock)
        bus = self.event_bus
        self.health_monitor = HealthMonitor(clock=clock, bus=bus)
        self.feature_manager = FeatureManager(clock=clock, bus=bus)
        self.recovery_manager = RecoveryManager(bus, clock=clock)
        self.supervisor = (
            Supervisor(programs, bus=bus, clock=clock, state_dir=state_dir, log_dir=log_dir)
            if programs is not None
            else None
        )
        sources: list[tuple[HealthSource, Callable[[], Iterable[str]] | None]] = [
            (self.health_monitor, self.health_monitor.names)
        ]
        if self.supervisor is not None:
            sources.append((ProgramHealth(self.supervisor), None))
        self.health_source = HealthSources(sources)
        self.journal = _journal(journal, bus, clock)
        #: A fleet's journal on Redis and its recovery leases (`from_plan`, with a Redis url).
        self.fleet_journal: Journal | None = None
        self.leases: RecoveryLeases | None = None
        self.chaos_enabled = chaos_allowed(chaos, env)
        self._synthetic: SyntheticTesterLike | None = None
        if synthetic_tester is not None:
            self._use_tester(synthetic_tester)
        self._chaos = chaos_monkey
        #: The article's flag: True while the app runs, False once shutdown began.
        self.running = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._prepared = False
        components: list[Component] = []
        if self.journal is not None:
            components.append(self.journal)  # first: it records the whole run
        components.append(self.health_monitor)
        if self.supervisor is not None:
            components.append(self.supervisor)
        components.append(self.recovery_manager)
        self.runtime = Runtime(components, clock=clock, bus=bus)
        self.recovery_engine: RecoveryEngine | None = None
        rules = tuple(rules)
        if rules:
            self._use_engine(
                RecoveryEngine(
                    bus,
                    rules,
                    programs=self.supervisor,
                    health=self.health_source,
                    features=self.feature_manager,
                    clock=clock,
                )
            )

    def __repr__(self) -> str:
        return f"SelfHealingApp({self.app_name!r}, running={self.running})"

    # -- from a config file --------------------------------------------------------------------

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], **kw: Any) -> SelfHealingApp:
        """Return the app a ``selfheal.toml`` describes: what ``selfheal run`` would run.

        Args:
            path: The config file (validated here; needs pydantic).
            **kw: Passed to `from_plan` (``app_name``, ``clock``, ``chaos``...).

        Raises:
            ConfigError: Naming every bad key with its line.
            StartError: If the journal cannot be opened.
        """
        return cls.from_plan(compile_plan(path), **kw)

    @classmethod
    def from_plan(
        cls, plan: DaemonPlan, *, app_name: str | None = None, **kw: Any
    ) -> SelfHealingApp:
        """Return the app of a compiled config (a `DaemonPlan`), without pydantic.

        Its programs, ``[health]`` checks and drain, ``[synthetic.NAME]`` scenarios (on
        `app_url` unless they name their own), ``[journal]`` (with a Redis ``url``: the fleet's
        journal and recovery leases too) and ``[[recovery]]`` rules come from the plan.

        Args:
            plan: The compiled config.
            app_name: Default: the name of the config file's directory.
            **kw: The other constructor arguments (``clock``, ``chaos``, ``app_url``...).
        """
        clock: Clock = kw.pop("clock", SYSTEM_CLOCK)
        health = plan.extra.get("health") or {}
        app = cls(
            app_name or Path(plan.config_path).parent.name or "selfheal",
            clock=clock,
            programs=plan.programs,
            state_dir=plan.state_dir,
            log_dir=plan.log_dir,
            drain_seconds=float(health.get("drain_seconds", 0.0)),
            **kw,
        )
        register_checks(app.health_monitor, list(health.get("checks", [])), clock=clock)
        scenarios = plan.extra.get("synthetic") or {}
        if scenarios:
            add_scenarios_from_plan(app.synthetic_tester, scenarios)
        section = plan.extra.get("journal")
        first = app.runtime.components[0]
        journal = journal_from_plan(section, bus=app.event_bus, clock=clock)
        if journal is not None:
            app.journal = journal
            # Started first and stopped last, so it records the whole run.
            app.runtime.add(journal, before=first)
        fleet = fleet_from_plan(section, bus=app.event_bus, clock=clock)
        if fleet is not None:
            fleet_journal, leases = fleet
            app.fleet_journal, app.leases = fleet_journal, leases
            app.runtime.add(fleet_journal, before=first)
            app.runtime.add(leases, before=first)
        app._use_engine(app.recovery_engine_from(plan))
        return app

    def recovery_engine_from(self, plan: DaemonPlan) -> RecoveryEngine | None:
        """Return an engine for the plan's rules on this app's bus, programs and health."""
        return recovery_engine_from_plan(
            plan.extra,
            bus=self.event_bus,
            clock=self.clock,
            programs=self.supervisor,
            health=self.health_source,
            features=self.feature_manager,
            leases=self.leases,
        )

    def _use_engine(self, engine: RecoveryEngine | None) -> None:
        if self.recovery_engine is not None:
            self.runtime.components.remove(self.recovery_engine)
        if engine is not None:
            # After the supervisor, so it stops before it: the programs' deliberate exits at
            # shutdown never trigger a recovery.
            self.runtime.add(engine, before=self.recovery_manager)
        self.recovery_engine = engine

    async def replace_recovery_engine(self, engine: RecoveryEngine | None) -> None:
        """Swap the recovery engine, also while running (running recoveries are cancelled)."""
        old = self.recovery_engine
        if old is None and engine is not None:
            await self.runtime.replace(None, engine, after=self.supervisor or self.health_monitor)
        else:
            await self.runtime.replace(old, engine)
        self.recovery_engine = engine

    # -- the optional components ----------------------------------------------------------------

    @property
    def synthetic_tester(self) -> SyntheticTesterLike:
        """Return the synthetic tester (made on first use, for `app_url`)."""
        if self._synthetic is None:
            self._use_tester(
                make_synthetic_tester(self.app_url, clock=self.clock, bus=self.event_bus)
            )
        assert self._synthetic is not None
        return self._synthetic

    @synthetic_tester.setter
    def synthetic_tester(self, tester: SyntheticTesterLike) -> None:
        self._check_not_started("synthetic_tester")
        self._use_tester(tester)

    def _use_tester(self, tester: SyntheticTesterLike) -> None:
        self._synthetic = tester
        names = getattr(tester, "names", None)
        if isinstance(tester, HealthSource) and callable(names):
            # Scenarios are health checks too: a rule can verify that a user journey works.
            self.health_source.add(tester, names)

    @property
    def chaos_monkey(self) -> ChaosMonkeyLike:
        """Return the chaos monkey (made on first use; enabled as `chaos_enabled` says)."""
        if self._chaos is None:
            self._chaos = make_chaos_monkey(
                self.chaos_enabled,
                clock=self.clock,
                bus=self.event_bus,
                steady_state=self.health_monitor.is_healthy,
            )
        return self._chaos

    @chaos_monkey.setter
    def chaos_monkey(self, monkey: ChaosMonkeyLike) -> None:
        self._check_not_started("chaos_monkey")
        self._chaos = monkey

    def _check_not_started(self, what: str) -> None:
        if self._prepared:
            raise RuntimeError(f"SelfHealingApp.{what}: set it before the app starts")

    # -- running --------------------------------------------------------------------------------

    def _prepare(self) -> None:
        """Add what was made after construction: tester, monkey, and the drain (once)."""
        if self._prepared:
            return
        self._prepared = True
        anchor: Component = self.recovery_manager
        # Only what was used: an app that never touched them imports neither package.
        for obj in (self._synthetic, self._chaos):
            if obj is not None:
                component = as_component(obj)
                self.runtime.add(component, after=anchor)
                anchor = component
        # Last in the start order, so first to stop: readiness fails before anything goes.
        self.runtime.add(_Drain(self))

    async def __aenter__(self) -> SelfHealingApp:
        self._loop = asyncio.get_running_loop()
        self._prepare()
        logger.info("starting %s with self-healing capabilities", self.app_name)
        self.running = True
        try:
            await self.runtime.start()
        except BaseException:
            self.running = False
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.running = False
        try:
            await self.runtime.stop()
        finally:
            self._loop = None
        logger.info("%s stopped", self.app_name)

    async def run(self, *, on_signal: Mapping[int, Callable[[], object]] | None = None) -> None:
        """Start everything, run until SIGINT/SIGTERM or `stop()`, then shut down in order.

        Args:
            on_signal: More signals and what each does (the daemon reloads on SIGHUP).
                Signals are only handled in the main thread.
        """
        self._loop = asyncio.get_running_loop()
        self._prepare()
        handlers: dict[int, Callable[[], object]] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = functools.partial(self.handle_shutdown, sig, None)
            handlers.update(on_signal or {})
        logger.info("starting %s with self-healing capabilities", self.app_name)
        self.running = True
        try:
            await self.runtime.run(stop_signals=(), on_signal=handlers)
        finally:
            self.running = False
            self._loop = None
        logger.info("%s stopped", self.app_name)

    def start(self) -> None:
        """Run the app in this thread until SIGINT/SIGTERM or `stop()` (the article's call).

        Raises:
            RuntimeError: If called from a running event loop (use ``await app.run()``).
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "SelfHealingApp.start() blocks until shutdown; in async code use "
                "'await app.run()' or 'async with app:'"
            )
        asyncio.run(self.run())

    def stop(self) -> None:
        """Ask the app to shut down; returns at once (from any thread or a signal handler)."""
        loop = self._loop
        if loop is None:
            self.runtime.request_stop()
            return
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if here is loop:
            self.runtime.request_stop()
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: it stopped
                loop.call_soon_threadsafe(self.runtime.request_stop)

    def handle_shutdown(self, sig: int, frame: FrameType | None) -> None:
        """Handle a shutdown signal gracefully (the article's handler): stop the app."""
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        logger.info("%s received: stopping %s", name, self.app_name)
        self.running = False
        self.stop()


class _Drain:
    """The readiness drain as the last `Component`, so that its `stop` runs first."""

    __slots__ = ("app",)

    def __init__(self, app: SelfHealingApp) -> None:
        self.app = app

    def __repr__(self) -> str:
        return f"Drain({self.app.drain_seconds:g} s)"

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Fail readiness, then wait out the drain period on the app's clock."""
        monitor = self.app.health_monitor
        monitor.start_draining(self.app.drain_seconds)
        await monitor.wait_drained()


def _journal(
    journal: JournalStore | str | os.PathLike[str] | None, bus: EventBus, clock: Clock
) -> Journal | None:
    if journal is None:
        return None
    if isinstance(journal, str | os.PathLike):
        return Journal(bus, Path(journal), clock=clock)
    return Journal(bus, journal, clock=clock)
