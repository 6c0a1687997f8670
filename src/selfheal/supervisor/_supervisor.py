"""`Supervisor`: the programs a daemon keeps running, as a Component and a ProgramControl.

The facade: it takes the state directory, builds one `Child` per process of each program,
answers queries, applies reloads, and hands every start, stop and wait to its `Driver`.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import EventBus, Severity
from selfheal.supervisor._child import Child, child_env, children_of
from selfheal.supervisor._deps import levels, unready_deps
from selfheal.supervisor._driver import Driver
from selfheal.supervisor._logs import OutputLog, log_path
from selfheal.supervisor._notify import NotifySocket
from selfheal.supervisor._spec import ProgramSpec
from selfheal.supervisor._statedir import StateDir
from selfheal.supervisor._states import IDLE, ProcessState, Trigger

__all__ = ["ReloadResult", "Supervisor"]


@dataclass(frozen=True, slots=True)
class ReloadResult:
    """What `Supervisor.apply` did, by program name."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]

    def to_dict(self) -> dict[str, list[str]]:
        """Return a JSON-ready dict."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "changed": list(self.changed),
            "unchanged": list(self.unchanged),
        }


class Supervisor:
    """Keeps programs running: restarts on exit, probe failure or missed heartbeat.

    A `Component` (``await start()`` / ``await stop()``) and a `ProgramControl`. Every change
    is published on `bus`: ``process.<name>.started``, ``.ready``, ``.exited`` (with the last
    lines of output), ``.backoff``, ``.fatal``, ``.unhealthy``.

    Args:
        programs: What to supervise, in order (the order of groups and of shutdown).
        bus: Where events go (a private bus if None).
        clock: Times backoff, grace periods, probes and heartbeats.
        state_dir: Holds the lock, the children file, the notify socket and (by default) logs.
        log_dir: Where output files go (default ``<state_dir>/logs``).
        leftover_grace: Seconds between SIGTERM and SIGKILL for what a dead daemon left.
        rand: Uniform [0, 1) samples for backoff jitter.
    """

    def __init__(
        self,
        programs: Iterable[ProgramSpec] = (),
        *,
        bus: EventBus | None = None,
        clock: Clock = SYSTEM_CLOCK,
        state_dir: str | os.PathLike[str] = ".selfheal",
        log_dir: str | os.PathLike[str] | None = None,
        leftover_grace: float = 2.0,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.clock = clock
        self.bus = bus if bus is not None else EventBus(clock=clock)
        self.state_dir = Path(state_dir)
        self.log_dir = Path(log_dir) if log_dir is not None else self.state_dir / "logs"
        self._specs: dict[str, ProgramSpec] = {}
        for spec in programs:
            if spec.name in self._specs:
                raise ValueError(f"Supervisor: program {spec.name!r} is given twice")
            self._specs[spec.name] = spec
        self._dir = StateDir(self.state_dir, clock, leftover_grace)
        self._driver = Driver(
            clock=clock,
            bus=self.bus,
            rand=rand,
            run_id=os.urandom(8).hex(),
            state_dir=self._dir,
            leftover_grace=leftover_grace,
        )
        self._notify: NotifySocket | None = None
        self._running = False
        # Reloads (SIGHUP and the API at once) must not interleave their stops and swaps.
        self._apply_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Supervisor(programs={list(self._specs)}, state_dir={str(self.state_dir)!r})"

    # -- Component ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Take the state dir, end what a dead daemon left behind, start autostart programs.

        Raises:
            StateDirLockedError: If another live supervisor uses the same state directory.
        """
        if self._running:
            return
        loop = self._driver.loop = asyncio.get_running_loop()
        self._dir.lock()
        try:
            for name, pids in (await self._dir.end_leftovers()).items():
                self._driver.emit(
                    "supervisor.leftovers.ended", Severity.WARNING, instance=name, pids=pids
                )
            self._notify = NotifySocket(self.state_dir / "notify.sock", self._driver.on_notify)
            self._notify.attach(loop)
        except BaseException:
            self._dir.unlock()
            raise
        self._running = True
        for spec in self._specs.values():
            self._add_children(spec)
        for spec in self._specs.values():
            if spec.autostart:
                for child in self._children_of(spec.name):
                    self._driver.want(child)
        self._driver.flush()

    async def stop(self) -> None:
        """Stop every program (dependents first), then release the state dir; safe twice.

        A reload in progress finishes first: otherwise it could start its new processes
        after everything was stopped, and they would outlive the daemon.
        """
        if not self._running:
            return
        async with self._apply_lock:
            if self._running:
                await self._stop_all()

    async def _stop_all(self) -> None:
        driver = self._driver
        for level in reversed(levels(self._specs, driver.children)):
            await asyncio.gather(*(driver.stop_and_wait(c, sweep=False) for c in level))
        # One sweep for all: what left its group (setsid) but still carries our run id.
        await driver.end_escapees(None)
        for child in driver.children.values():
            child.discard()
        driver.children.clear()
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        driver.save_children()
        self._running = False
        self._dir.close()
        driver.flush()

    # -- ProgramControl ----------------------------------------------------------------------

    def program_names(self) -> list[str]:
        """Return the configured programs' names, in config order."""
        return list(self._specs)

    async def start_program(self, name: str) -> None:
        """Start `name` (a program or one instance ``name:N``) unless it runs.

        Returns once it is ready, or failed to start (BACKOFF: the restart policy goes on;
        EXITED, FATAL), or waits for dependencies that nobody is starting (then it starts
        by itself once they are ready).

        Raises:
            KeyError: For an unknown name.
        """
        children = self._resolve(name)
        for child in children:
            self._driver.want(child)
        self._driver.flush()
        await asyncio.gather(*(self._driver.request(c) for c in children))

    async def stop_program(self, name: str) -> None:
        """Stop `name`: stop signal to its process group, SIGKILL after the grace period.

        Raises:
            KeyError: For an unknown name.
        """
        await asyncio.gather(*(self._driver.stop_and_wait(c) for c in self._resolve(name)))

    async def restart_program(self, name: str) -> None:
        """Stop `name` if it runs, then start it; returns as `start_program` does.

        Raises:
            KeyError: For an unknown name.
        """
        children = self._resolve(name)
        for child in children:
            if child.life.state in IDLE or child.life.state is ProcessState.BACKOFF:
                self._driver.want(child)
            else:
                self._driver.fire(child, Trigger.RESTART, "restart requested")
        self._driver.flush()
        await asyncio.gather(*(self._driver.request(c) for c in children))

    # -- queries -----------------------------------------------------------------------------

    def state(self, name: str) -> ProcessState:
        """Return the state of instance (or single-process program) `name`.

        Raises:
            KeyError: For an unknown name.
        """
        return self._child(name).life.state

    def spec(self, name: str) -> ProgramSpec:
        """Return the spec of program (or instance) `name`.

        Raises:
            KeyError: For an unknown name.
        """
        spec = self._specs.get(name)
        return spec if spec is not None else self._child(name).spec

    def instance_names(self, name: str) -> list[str]:
        """Return the process names a program (or instance) `name` stands for.

        Raises:
            KeyError: For an unknown name; the message lists the known ones.
        """
        return [c.name for c in self._resolve(name)]

    def pid(self, name: str) -> int | None:
        """Return the pid of instance `name`, None when no process runs."""
        return self._child(name).pid

    def status(self) -> list[dict[str, Any]]:
        """Return one JSON-ready dict per process: state, pid, uptime, restarts, reason."""
        now = self.clock.monotonic()
        wall = self.clock.time()
        children = self._driver.children
        out = []
        for child in children.values():
            life = child.life
            out.append(
                {
                    "name": child.name,
                    "program": child.spec.name,
                    "state": life.state.value,
                    "pid": child.pid,
                    "since": wall - (now - life.since),
                    "uptime": (now - life.started_at) if child.pid is not None else None,
                    "restarts": len(life.restarts),
                    "reason": life.reason,
                    "exit_code": child.last_exit,
                    "status": child.status_text,
                    "waiting_for": unready_deps(child, children) if child.waiting else [],
                    "log": str(child.log.path),
                }
            )
        return out

    async def wait_for(self, name: str, *states: ProcessState) -> ProcessState:
        """Wait until instance `name` is in one of `states` (bound it with `asyncio.timeout`).

        Returns:
            The state reached.

        Raises:
            KeyError: For an unknown name.
        """
        child = self._child(name)
        await child.wait(frozenset(states))
        return child.life.state

    # -- reload ------------------------------------------------------------------------------

    async def apply(self, programs: Iterable[ProgramSpec]) -> ReloadResult:
        """Reconfigure: stop removed programs, restart changed ones, start added ones.

        Programs whose spec is unchanged are not touched. Overlapping calls run one after
        the other, each against what the previous one left.

        Args:
            programs: The new complete list.

        Returns:
            What was added, removed, changed and left alone.
        """
        programs = list(programs)
        async with self._apply_lock:
            return await self._apply(programs)

    async def _apply(self, programs: list[ProgramSpec]) -> ReloadResult:
        driver = self._driver
        new = {p.name: p for p in programs}
        old = self._specs
        removed = [n for n in old if n not in new]
        added = [n for n in new if n not in old]
        changed = [n for n in new if n in old and old[n] != new[n]]
        unchanged = [n for n in new if n in old and old[n] == new[n]]
        for name in (*removed, *changed):
            children = self._children_of(name)
            await asyncio.gather(*(driver.stop_and_wait(c) for c in children))
            for child in children:
                child.discard()
                del driver.children[child.name]
        self._specs = new
        if self._running:
            # Keep the dict in config order: rebuild it from the new order.
            kept = dict(driver.children)
            driver.children.clear()
            for spec in new.values():
                if spec.name in unchanged:
                    for cname in spec.instance_names():
                        driver.children[cname] = kept[cname]
                else:
                    self._add_children(spec)
            for name in (*added, *changed):
                if new[name].autostart:
                    for child in self._children_of(name):
                        driver.want(child)
            driver.flush()
        return ReloadResult(tuple(added), tuple(removed), tuple(changed), tuple(unchanged))

    # -- the children ------------------------------------------------------------------------

    def _add_children(self, spec: ProgramSpec) -> None:
        for cname in spec.instance_names():
            log = OutputLog(log_path(self.log_dir, cname), spec.log)
            env = child_env(spec, cname, self._driver.run_id, self._notify)
            self._driver.children[cname] = Child(spec, cname, log, env)

    def _children_of(self, program: str) -> list[Child]:
        return children_of(self._driver.children, program)

    def _child(self, name: str) -> Child:
        children = self._driver.children
        try:
            return children[name]
        except KeyError:
            known = [*self._specs, *(c for c in children if c not in self._specs)]
            valid = ", ".join(known) or "none configured"
            raise KeyError(f"no program or process {name!r}; known: {valid}") from None

    def _resolve(self, name: str) -> list[Child]:
        if name in self._specs:
            children = self._children_of(name)
            if children:
                return children
        return [self._child(name)]
