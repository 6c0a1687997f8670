"""`ProcessWatchdog`: the article's simple synchronous API, on the supervisor's core.

The article polls every five seconds with ``time.sleep(5)``; this one runs the asyncio
`Supervisor` on a background thread, so a crashed process is restarted within milliseconds of
its exit and nothing wakes up while all is well.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import tempfile
import threading
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from selfheal._calls import checked_keywords
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import EventBus
from selfheal.supervisor._spec import BackoffSpec, IntensitySpec, ProgramSpec
from selfheal.supervisor._states import ProcessState
from selfheal.supervisor._supervisor import Supervisor

__all__ = ["ProcessWatchdog"]

logger = logging.getLogger("selfheal.supervisor")
T = TypeVar("T")


@checked_keywords
class ProcessWatchdog:
    """Start programs and restart them when they exit, at most `max_restarts` per interval.

    ::

        watchdog = ProcessWatchdog()
        watchdog.register("web_server", ["python", "web_server.py"], working_dir="/app/server")
        watchdog.run_monitor()   # blocks until Ctrl-C, then terminates everything

    Args:
        max_restarts: Restarts allowed within `restart_interval` before a program is given up
            (FATAL, event ``process.<name>.fatal``).
        restart_interval: The window, in seconds.
        bus: Where the supervisor's events go (a private bus if None).
        clock: The clock of the supervisor.
        state_dir: Where logs, the lock and the children file go (a temporary directory if
            None).
        stop_grace: Seconds between SIGTERM and SIGKILL on terminate.
    """

    def __init__(
        self,
        max_restarts: int = 5,
        restart_interval: float = 3600,
        *,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        state_dir: str | os.PathLike[str] | None = None,
        stop_grace: float = 10.0,
    ) -> None:
        self.max_restarts = max_restarts
        self.restart_interval = restart_interval
        self.bus = bus if bus is not None else EventBus(clock=clock)
        self.clock = clock
        self._state_dir = state_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._stop_grace = stop_grace
        self._specs: dict[str, ProgramSpec] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._supervisor: Supervisor | None = None
        self._stopped = threading.Event()

    def __repr__(self) -> str:
        return f"ProcessWatchdog(programs={list(self._specs)}, max_restarts={self.max_restarts})"

    @property
    def processes(self) -> dict[str, dict[str, Any]]:
        """Return name -> ``{"cmd", "working_dir", "env", "pid", "state"}``."""
        states = {s["name"]: s for s in self.status()}
        return {
            name: {
                "cmd": list(spec.command),
                "working_dir": spec.cwd,
                "env": dict(spec.env),
                "pid": states.get(name, {}).get("pid"),
                "state": states.get(name, {}).get("state", ProcessState.STOPPED.value),
            }
            for name, spec in self._specs.items()
        }

    def register(
        self,
        name: str,
        cmd: Sequence[str],
        working_dir: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Add a program; it starts with `start_all` (or at once if already running).

        Args:
            name: Unique name.
            cmd: argv list (never run through a shell).
            working_dir: Working directory.
            env: Variables set over the inherited environment.

        Raises:
            ValueError: If `cmd` is empty or a string, or `name` is taken.
        """
        if isinstance(cmd, str) or not cmd:
            raise ValueError(
                f"ProcessWatchdog.register: cmd must be an argv list like ['python', 'app.py'], "
                f"got {cmd!r}"
            )
        if name in self._specs:
            raise ValueError(f"ProcessWatchdog.register: {name!r} is already registered")
        self._specs[name] = ProgramSpec(
            name=name,
            command=tuple(cmd),
            cwd=working_dir,
            env=tuple(sorted((env or {}).items())),
            restart="always",
            backoff=BackoffSpec(initial=0.5, maximum=30.0, reset_after=60.0),
            intensity=IntensitySpec(max_restarts=self.max_restarts, window=self.restart_interval),
            stop_grace=self._stop_grace,
        )
        if self._supervisor is not None:
            # The specs the supervisor runs are the no-autostart ones `boot` applied: the same
            # here, or every running program would count as changed and be restarted.
            self._call(self._supervisor.apply(_no_autostart(self._specs.values())))
            self._call(self._supervisor.start_program(name))

    def start_all(self) -> None:
        """Start the supervisor thread and every registered program; returns once started."""
        if self._supervisor is None:
            self._stopped.clear()
            ready: concurrent.futures.Future[None] = concurrent.futures.Future()
            self._thread = threading.Thread(
                target=self._run_loop, args=(ready,), name="selfheal-watchdog", daemon=True
            )
            self._thread.start()
            ready.result()
        sup = self._supervisor
        assert sup is not None
        for name in self._specs:
            self._call(sup.start_program(name))

    def start_process(self, name: str) -> bool:
        """Start `name` now; return whether it is running.

        Raises:
            ValueError: If `name` is not registered.
        """
        if name not in self._specs:
            raise ValueError(f"Process {name} not registered")
        if self._supervisor is None:
            self.start_all()
        sup = self._supervisor
        assert sup is not None
        self._call(sup.start_program(name))
        return sup.state(name) is ProcessState.RUNNING

    def stop_process(self, name: str) -> None:
        """Stop `name` (SIGTERM to its process group, SIGKILL after the grace period).

        Raises:
            ValueError: If `name` is not registered.
        """
        if name not in self._specs:
            raise ValueError(f"Process {name} not registered")
        if self._supervisor is not None:
            self._call(self._supervisor.stop_program(name))

    def check_and_restart(self) -> list[str]:
        """Start any registered program that is not running and not given up (FATAL).

        Restarts after a crash already happen on their own, within milliseconds; this is for
        programs stopped by hand or exited under a restart policy.

        Returns:
            The names started.
        """
        sup = self._supervisor
        if sup is None:
            return []
        started = []
        for name in self._specs:
            if sup.state(name) in (ProcessState.STOPPED, ProcessState.EXITED):
                self._call(sup.start_program(name))
                started.append(name)
        return started

    def status(self) -> list[dict[str, Any]]:
        """Return the supervisor's status, one dict per process ([] before `start_all`)."""
        sup = self._supervisor
        if sup is None or self._loop is None:
            return []

        async def get() -> list[dict[str, Any]]:
            return sup.status()

        return self._call(get())

    def run_monitor(self) -> None:
        """Start everything and block until Ctrl-C or `terminate_all`, then stop everything."""
        try:
            self.start_all()
            # Waits on an Event, not a sleep loop: zero wake-ups while all is well (on POSIX a
            # signal interrupts the wait, so Ctrl-C still gets through).
            self._stopped.wait()
        except KeyboardInterrupt:
            logger.info("interrupted: terminating all processes")
        finally:
            self.terminate_all()

    def terminate_all(self) -> None:
        """Stop every program (SIGTERM, SIGKILL after the grace period) and the thread."""
        sup, loop, thread = self._supervisor, self._loop, self._thread
        if sup is not None and loop is not None and thread is not None:
            self._call(sup.stop())
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
        self._supervisor = self._loop = self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        self._stopped.set()

    def _run_loop(self, ready: concurrent.futures.Future[None]) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        state_dir = self._state_dir
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="selfheal-watchdog-")
            state_dir = self._tmp.name
        sup = Supervisor(
            [],
            bus=self.bus,
            clock=self.clock,
            state_dir=state_dir,
        )

        async def boot() -> None:
            await sup.start()
            await sup.apply(_no_autostart(self._specs.values()))

        try:
            loop.run_until_complete(boot())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
            ready.set_exception(exc)
            loop.close()
            return
        self._supervisor = sup
        ready.set_result(None)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._loop
        assert loop is not None
        return asyncio.run_coroutine_threadsafe(coro, loop).result()


def _no_autostart(specs: Iterable[ProgramSpec]) -> list[ProgramSpec]:
    # `start_all` starts them, one by one and in order, and waits for each.
    return [replace(s, autostart=False) for s in specs]
