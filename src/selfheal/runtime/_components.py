"""Components started in order and stopped in reverse, sharing one clock and one bus.

`Runtime` is generic: anything with ``async start()`` / ``async stop()`` (a `Component`) can
be added: the journal, the supervisor, its control API, the recovery engine.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import EventBus
from selfheal.interfaces import Component

__all__ = ["Runtime"]

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
