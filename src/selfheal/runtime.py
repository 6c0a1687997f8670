"""The daemon's wiring: one clock, one bus, components started in order, stopped in reverse.

`Runtime` is generic: anything with ``async start()`` / ``async stop()`` (a `Component`) can
be added: the supervisor, its control API, later a journal or a recovery engine. `Daemon`
builds the runtime ``selfheal run CONFIG`` runs from a config file and knows how to reload it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._component import Component
from selfheal.events import EventBus

if TYPE_CHECKING:
    from selfheal.config import SelfhealConfig
    from selfheal.supervisor import ProgramSpec, Supervisor

__all__ = ["Daemon", "Runtime"]

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

    def request_stop(self) -> None:
        """Make `run` return (after stopping everything); safe from signal handlers."""
        if self._stop_requested is not None:
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
        try:
            await self.start()
            await self._stop_requested.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
            await self.stop()


class Daemon:
    """What ``selfheal run CONFIG`` runs: a supervisor and its control API, from a file.

    Relative paths in the config (``state_dir``, ``log_dir``, programs' ``cwd``) are relative
    to the config file's directory; a program without ``cwd`` runs there too.

    Args:
        config_path: The ``selfheal.toml``.
        clock: The clock of every component.
    """

    def __init__(self, config_path: str | os.PathLike[str], *, clock: Clock = SYSTEM_CLOCK):
        from selfheal.supervisor import Supervisor

        self.config_path = Path(config_path).resolve()
        self.base_dir = self.config_path.parent
        self.config = load_daemon_config(self.config_path)
        control = self.config.control
        self.state_dir = self.base_dir / control.state_dir
        self.log_dir = self.base_dir / (control.log_dir or f"{control.state_dir}/logs")
        self.runtime = Runtime(clock=clock)
        self.supervisor: Supervisor = Supervisor(
            self.specs(self.config),
            bus=self.runtime.bus,
            clock=clock,
            state_dir=self.state_dir,
            log_dir=self.log_dir,
        )
        self.runtime.add(self.supervisor)
        if control.enabled:
            from selfheal.web.control import ControlServer

            socket_path = self.base_dir / control.socket if control.socket else None
            self.runtime.add(
                ControlServer(
                    self.supervisor,
                    state_dir=self.state_dir,
                    host=control.host,
                    port=control.port,
                    socket_path=socket_path,
                    token=control.token,
                    status_requires_token=control.status_requires_token,
                    reload=self.reload,
                    extra={"config": str(self.config_path), "log_dir": str(self.log_dir)},
                )
            )

    def __repr__(self) -> str:
        return f"Daemon({str(self.config_path)!r})"

    def specs(self, config: SelfhealConfig) -> list[ProgramSpec]:
        """Return the programs of `config` as specs, paths made relative to the config dir."""
        specs = []
        for name, prog in config.programs.items():
            spec = prog.to_spec(name, base_dir=self.base_dir)
            if spec.cwd is None:
                from dataclasses import replace

                spec = replace(spec, cwd=str(self.base_dir))
            specs.append(spec)
        return specs

    async def reload(self) -> dict[str, Any]:
        """Re-read the config file and apply its programs (only changed ones restart).

        Raises:
            ReloadError: If the file is not a valid config; nothing is changed then.
        """
        from selfheal.config import ConfigError
        from selfheal.web.control import ReloadError

        try:
            config = load_daemon_config(self.config_path)
        except ConfigError as exc:
            raise ReloadError(str(exc)) from None
        if config.control != self.config.control:
            logger.warning("reload: [control] changes take effect at the next start")
        result = await self.supervisor.apply(self.specs(config))
        self.config = config
        self.runtime.bus.emit("supervisor.reloaded", "supervisor", "info", **result.to_dict())
        return result.to_dict()

    async def run(self) -> None:
        """Run until SIGINT or SIGTERM; SIGHUP reloads the config."""
        loop = asyncio.get_running_loop()

        def hup() -> None:
            task = loop.create_task(self._reload_logged())
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

        self._pending: set[asyncio.Task[None]] = set()
        await self.runtime.run(on_signal={signal.SIGHUP: hup})

    async def _reload_logged(self) -> None:
        from selfheal.web.control import ReloadError

        try:
            result = await self.reload()
        except ReloadError as exc:
            logger.error("reload refused: %s", exc)
        else:
            logger.warning("reloaded: %s", result)


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
