"""`Supervisor`: the programs a daemon keeps running, as a Component and a ProgramControl.

The facade: it takes the state directory, builds one `Child` per process of each program,
answers queries, applies reloads, and hands every start, stop and wait to its `Driver`. The
control commands (``selfheal start worker:* db``) come in through `select` and the
``*_processes`` methods, which take several names and say what else they acted on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.events import EventBus, Severity
from selfheal.supervisor._child import Child, build_child, children_of
from selfheal.supervisor._deps import blockers, dependents, stop_order
from selfheal.supervisor._driver import Driver
from selfheal.supervisor._expand import instance_spec
from selfheal.supervisor._notify import NotifySocket
from selfheal.supervisor._reload import ReloadResult, preview_reload
from selfheal.supervisor._select import select
from selfheal.supervisor._spec import ProgramSpec
from selfheal.supervisor._statedir import StateDir
from selfheal.supervisor._states import ACTIVE, IDLE, ProcessState, Trigger

__all__ = ["ReloadResult", "Supervisor"]

logger = logging.getLogger("selfheal.supervisor")


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
        self._dir = StateDir(self.state_dir, clock, leftover_grace, log_dir=self.log_dir)
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
            UnsafePathError: If another user could subvert the state or log directory.
        """
        if self._running:
            return
        loop = self._driver.loop = asyncio.get_running_loop()
        self._driver.spares.stopping = False
        self._dir.lock()
        try:
            for name, pids in (await self._dir.end_leftovers()).items():
                self._driver.emit(
                    "supervisor.leftovers.ended", Severity.WARNING, instance=name, pids=pids
                )
            self._notify = NotifySocket(self.state_dir / "notify.sock", self._driver.on_notify)
            self._notify.attach(loop)
            for spec in self._specs.values():
                self._add_children(spec)  # opens the logs: refused through a symlink
        except BaseException:
            self._release(record=False)
            raise
        self._running = True
        # Lower priorities first: a program waits for those of lower priority being started.
        for spec in sorted(self._specs.values(), key=lambda s: s.priority):
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
        driver.spares.keep(None)  # first: a spare is no program's, nor a leftover to sweep
        count = len(driver.children)
        for batch in stop_order(self._specs, driver.children):
            await asyncio.gather(*(driver.stop_and_wait(c, sweep=False) for c in batch))
        # One sweep for all: what left its group (setsid) but still carries our run id.
        await driver.end_escapees(None)
        await driver.tasks.close()
        self._release()
        self._running = False
        driver.flush()
        logger.info("stopped: every program (%d process(es))", count)

    def _release(self, *, record: bool = True) -> None:
        """Forget the children, close the notify socket, record that none runs, unlock."""
        driver = self._driver
        driver.spares.keep(None)
        for child in driver.children.values():
            child.discard()
        driver.children.clear()
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        if record:  # not after a failed start: a dead daemon's record is still needed
            driver.save_children()
        self._dir.close()

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
        await self.start_processes([name])

    async def stop_program(self, name: str) -> None:
        """Stop `name`: stop signal to its process group, SIGKILL after the grace period.

        The programs that depend on it are stopped first (systemd's ``BindsTo=``).

        Raises:
            KeyError: For an unknown name.
        """
        await self.stop_processes([name])

    async def restart_program(self, name: str) -> None:
        """Stop `name` if it runs, then start it; returns as `start_program` does.

        The programs that depend on it are stopped first and started again once it is ready.

        Raises:
            KeyError: For an unknown name.
        """
        await self.restart_processes([name])

    # -- control: several names, patterns, what else was acted on ---------------------------

    def select(self, names: Iterable[str]) -> list[str]:
        """Return the processes `names` stand for, each once, in order.

        A name is ``all``, a program (``web``), a process (``worker:1``), every process of a
        program or a group (``worker:*``, ``GROUP:*``) or a program of a group
        (``GROUP:web``).

        Raises:
            KeyError: For a name that matches nothing (the message lists what would).
        """
        return [c.name for c in self._select(names)]

    async def start_processes(self, names: Iterable[str], *, wait: bool = True) -> list[str]:
        """Start the processes `names` stand for; see `start_program` for when it returns.

        Args:
            names: As `select` takes them.
            wait: False returns as soon as the starts are under way.

        Returns:
            The processes started (or already running).

        Raises:
            KeyError: For an unknown name.
        """
        children = self._select(names)
        for child in sorted(children, key=lambda c: c.spec.priority):
            self._driver.want(child)
        self._driver.flush()
        if wait:
            await asyncio.gather(*(self._driver.request(c) for c in children))
        return [c.name for c in children]

    async def stop_processes(self, names: Iterable[str]) -> list[str]:
        """Stop the processes `names` stand for, and first what depends on them.

        Returns:
            Every process stopped: the named ones and their dependents (systemd's
            ``BindsTo=``), whose status says why.

        Raises:
            KeyError: For an unknown name.
        """
        children = self._select(names)
        bound = self._bound(children, include_waiting=True)
        why = self._because(children, "stopped")
        everything = {c.name: c for c in [*bound, *children]}
        for batch in stop_order(self._specs, everything):
            await asyncio.gather(
                *(self._driver.stop_and_wait(c, reason=why if c in bound else "") for c in batch)
            )
        self._driver.spares.drop_idle(self._driver.children.values())
        return [c.name for c in self._driver.children.values() if c.name in everything]

    async def restart_processes(self, names: Iterable[str], *, wait: bool = True) -> list[str]:
        """Restart the processes `names` stand for; their running dependents with them.

        The dependents stop first and start again once what they depend on is ready (after
        systemd's ``BindsTo=``). Returns as `start_processes` does.

        Returns:
            Every process restarted: the named ones and their dependents.

        Raises:
            KeyError: For an unknown name.
        """
        children = self._select(names)
        driver = self._driver
        bound = self._bound(children, include_waiting=False)
        why = self._because(children, "restarted")
        for batch in stop_order(self._specs, {c.name: c for c in bound}):
            await asyncio.gather(*(driver.stop_and_wait(c, reason=why) for c in batch))
        for child in children:
            if child.life.state in IDLE or child.life.state is ProcessState.BACKOFF:
                driver.want(child)
            else:
                driver.fire(child, Trigger.RESTART, "restart requested")
        for child in bound:
            driver.want(child)
        driver.flush()
        if wait:
            await asyncio.gather(*(driver.request(c) for c in [*children, *bound]))
        return [c.name for c in driver.children.values() if c in children or c in bound]

    def signal_processes(
        self, names: Iterable[str], sig: int, *, group: bool = False
    ) -> dict[str, int | None]:
        """Send `sig` to the processes `names` stand for (or to their process groups).

        Returns:
            Each process and the pid that got the signal (None: it was not running).

        Raises:
            KeyError: For an unknown name.
        """
        out: dict[str, int | None] = {}
        for child in self._select(names):
            pid = child.pid
            out[child.name] = pid if self._driver.send_signal(child, sig, group=group) else None
        return out

    def _bound(self, children: list[Child], *, include_waiting: bool) -> list[Child]:
        """Return the dependents of `children` that are running or on their way."""
        programs = {c.spec.name for c in children}
        return [
            c
            for c in dependents(programs, self._driver.children)
            if c not in children
            and (
                c.life.state in ACTIVE
                or c.life.state in (ProcessState.BACKOFF, ProcessState.STOPPING)
                or (include_waiting and c.waiting)
            )
        ]

    @staticmethod
    def _because(children: list[Child], verb: str) -> str:
        names = ", ".join(dict.fromkeys(c.spec.name for c in children))
        return f"{verb} with {names}, which it depends on"

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

    def status(self, names: Iterable[str] | None = None, *, tail: int = 0) -> list[dict[str, Any]]:
        """Return one JSON-ready dict per process: state, pid, uptime, restarts, reason.

        Args:
            names: Only the processes these stand for (as `select` takes them); all if None.
            tail: Add this many last lines of each process's output (``tail``).

        Raises:
            KeyError: For an unknown name.
        """
        now, wall = self.clock.monotonic(), self.clock.time()
        children = self._driver.children
        chosen = children.values() if names is None else self._select(names)
        return [
            c.report(now, wall, blockers(c, children) if c.waiting else [], tail=tail)
            for c in chosen
        ]

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
        plan = preview_reload(old, programs)
        for name in (*plan.removed, *plan.changed):
            await self._discard(self._children_of(name))
        for name in plan.scaled:
            keep = {num for _, num in new[name].instances()}
            await self._discard([c for c in self._children_of(name) if c.number not in keep])
        self._specs = new
        driver.spares.keep(new)
        if self._running:
            # Keep the dict in config order: rebuild it from the new order.
            kept = dict(driver.children)
            driver.children.clear()
            for spec in new.values():
                if spec.name in plan.unchanged:
                    for cname in spec.instance_names():
                        driver.children[cname] = kept[cname]
                elif spec.name in plan.scaled:
                    self._rescale(spec, kept)
                else:
                    self._add_children(spec)
            fresh = [c for n in (*plan.added, *plan.changed) for c in self._children_of(n)]
            fresh += [driver.children[n] for n in plan.processes_added]
            for child in sorted(fresh, key=lambda c: c.spec.priority):
                if child.spec.autostart:
                    driver.want(child)
            driver.flush()
        return plan

    async def _discard(self, children: list[Child]) -> None:
        driver = self._driver
        await asyncio.gather(*(driver.stop_and_wait(c) for c in children))
        for child in children:
            child.discard()
            del driver.children[child.name]

    def _rescale(self, spec: ProgramSpec, kept: dict[str, Child]) -> None:
        """Put `spec`'s processes back: those kept (renamed if need be), new ones added."""
        mine = {c.number: c for c in kept.values() if c.spec.name == spec.name}
        for cname, num in spec.instances():
            child = mine.get(num)
            if child is None:
                self._add_child(spec, cname, num)
                continue
            if child.name != cname:  # between 1 and several: "web" <-> "web:0"
                child.rename(cname, self.log_dir)
            child.spec = instance_spec(spec, num)
            self._driver.children[cname] = child

    # -- the children ------------------------------------------------------------------------

    def _add_children(self, spec: ProgramSpec) -> None:
        for cname, num in spec.instances():
            self._add_child(spec, cname, num)

    def _add_child(self, spec: ProgramSpec, cname: str, num: int) -> None:
        driver = self._driver
        driver.children[cname] = build_child(
            spec, cname, num, log_dir=self.log_dir, run_id=driver.run_id, notify=self._notify
        )

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
        return self._select([name])

    def _select(self, names: Iterable[str]) -> list[Child]:
        return select(names, self._specs, self._driver.children)
