"""The asyncio supervisor: the driver of `transition`, doing the I/O each state asks for.

Nothing here polls. A child's exit arrives through its pidfd, output through its pipe,
sd_notify datagrams through the notify socket; timers exist only while something is timed
(a backoff, a stop grace period, a probe interval, a heartbeat deadline). With nothing to do
the daemon makes no wake-ups at all.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import random
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._deadline import timeout_after
from selfheal.errors import StateDirLockedError
from selfheal.events import EventBus, Severity
from selfheal.supervisor._logs import OutputLog, log_path
from selfheal.supervisor._notify import NotifySocket
from selfheal.supervisor._proc import (
    RUN_ENV,
    ChildRecord,
    ExitWatch,
    StateFile,
    end_processes,
    find_leftovers,
    find_marked,
    proc_session,
    proc_start_time,
    signal_group,
    spawn,
)
from selfheal.supervisor._spec import ProbeSpec, ProgramSpec
from selfheal.supervisor._states import Lifecycle, ProcessState, Trigger, transition

__all__ = ["ReloadResult", "Supervisor"]

logger = logging.getLogger("selfheal.supervisor")

_ACTIVE = frozenset({ProcessState.STARTING, ProcessState.RUNNING})
_IDLE = frozenset({ProcessState.STOPPED, ProcessState.EXITED, ProcessState.FATAL})
_STARTED_OR_GAVE_UP = frozenset({ProcessState.RUNNING, ProcessState.EXITED, ProcessState.FATAL})
# A start request is answered at its first failure too (BACKOFF): a command that cannot run
# is reported at once, not after the whole backoff ladder has ended in FATAL.
_REQUEST_DONE = _STARTED_OR_GAVE_UP | {ProcessState.BACKOFF}


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


class _Instance:
    """One process of a program and everything the driver knows about it."""

    def __init__(self, spec: ProgramSpec, name: str, log: OutputLog) -> None:
        self.spec = spec
        self.name = name
        self.log = log
        self.life = Lifecycle()
        self.popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.start_time: int | None = None
        self.watch: ExitWatch | None = None
        self.out_fd = -1
        self.waiting = False
        self.last_exit: int | None = None
        self.status_text = ""
        self.main_pid: int | None = None
        self.last_beat = 0.0
        self.state_task: asyncio.Future[Any] | asyncio.Handle | None = None
        self.run_tasks: list[asyncio.Future[Any]] = []
        self.waiters: list[tuple[frozenset[ProcessState], asyncio.Future[None]]] = []
        # Futures of start/restart requests: released when the request can no longer
        # succeed (stopped meanwhile, replaced by a reload, dependencies nobody starts).
        self.requests: list[asyncio.Future[None]] = []
        self.env: dict[str, str] = {}
        self.log_failed = False


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
        self._leftover_grace = leftover_grace
        self._rand = rand
        self._specs: dict[str, ProgramSpec] = {}
        for spec in programs:
            if spec.name in self._specs:
                raise ValueError(f"Supervisor: program {spec.name!r} is given twice")
            self._specs[spec.name] = spec
        self._instances: dict[str, _Instance] = {}
        self._by_pid: dict[int, _Instance] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notify: NotifySocket | None = None
        self._state_file = StateFile(self.state_dir / "children.json")
        self._lock_fd = -1
        self._run_id = os.urandom(8).hex()
        self._events: list[tuple[str, str, dict[str, Any]]] = []
        self._running = False
        # Reloads (SIGHUP and the API at once) must not interleave their stops and swaps.
        self._apply_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Supervisor(programs={list(self._specs)}, state_dir={str(self.state_dir)!r})"

    # -- Component ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Take the state dir, end what a dead daemon left behind, start autostart programs.

        Raises:
            RuntimeError: If another live supervisor uses the same state directory.
        """
        if self._running:
            return
        self._loop = asyncio.get_running_loop()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._lock()
        try:
            await self._end_leftovers()
            self._notify = NotifySocket(self.state_dir / "notify.sock", self._on_notify)
            self._notify.attach(self._loop)
        except BaseException:
            self._unlock()
            raise
        self._running = True
        for spec in self._specs.values():
            self._add_instances(spec)
        for spec in self._specs.values():
            if spec.autostart:
                for inst in self._instances_of(spec.name):
                    self._want(inst)
        self._flush()

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
        for level in reversed(self._levels()):
            await asyncio.gather(*(self._stop_and_wait(i, sweep=False) for i in level))
        # One sweep for all: what left its group (setsid) but still carries our run id.
        await self._end_escapees(None)
        for inst in self._instances.values():
            self._discard(inst)
        self._instances.clear()
        if self._notify is not None:
            self._notify.close()
            self._notify = None
        self._save_children()
        self._state_file.close()
        self._running = False
        self._unlock()
        self._flush()

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
        insts = self._resolve(name)
        for inst in insts:
            self._want(inst)
        self._flush()
        await asyncio.gather(*(self._request(i) for i in insts))

    async def stop_program(self, name: str) -> None:
        """Stop `name`: stop signal to its process group, SIGKILL after the grace period.

        Raises:
            KeyError: For an unknown name.
        """
        await asyncio.gather(*(self._stop_and_wait(i) for i in self._resolve(name)))

    async def restart_program(self, name: str) -> None:
        """Stop `name` if it runs, then start it; returns as `start_program` does.

        Raises:
            KeyError: For an unknown name.
        """
        insts = self._resolve(name)
        for inst in insts:
            if inst.life.state in _IDLE or inst.life.state is ProcessState.BACKOFF:
                self._want(inst)
            else:
                self._fire(inst, Trigger.RESTART, "restart requested")
        self._flush()
        await asyncio.gather(*(self._request(i) for i in insts))

    # -- queries -----------------------------------------------------------------------------

    def state(self, name: str) -> ProcessState:
        """Return the state of instance (or single-process program) `name`.

        Raises:
            KeyError: For an unknown name.
        """
        return self._instance(name).life.state

    def spec(self, name: str) -> ProgramSpec:
        """Return the spec of program (or instance) `name`.

        Raises:
            KeyError: For an unknown name.
        """
        spec = self._specs.get(name)
        return spec if spec is not None else self._instance(name).spec

    def instance_names(self, name: str) -> list[str]:
        """Return the process names a program (or instance) `name` stands for.

        Raises:
            KeyError: For an unknown name; the message lists the known ones.
        """
        return [i.name for i in self._resolve(name)]

    def pid(self, name: str) -> int | None:
        """Return the pid of instance `name`, None when no process runs."""
        return self._instance(name).pid

    def status(self) -> list[dict[str, Any]]:
        """Return one JSON-ready dict per process: state, pid, uptime, restarts, reason."""
        now = self.clock.monotonic()
        wall = self.clock.time()
        out = []
        for inst in self._instances.values():
            life = inst.life
            out.append(
                {
                    "name": inst.name,
                    "program": inst.spec.name,
                    "state": life.state.value,
                    "pid": inst.pid,
                    "since": wall - (now - life.since),
                    "uptime": (now - life.started_at) if inst.pid is not None else None,
                    "restarts": len(life.restarts),
                    "reason": life.reason,
                    "exit_code": inst.last_exit,
                    "status": inst.status_text,
                    "waiting_for": self._unready_deps(inst) if inst.waiting else [],
                    "log": str(inst.log.path),
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
        inst = self._instance(name)
        await self._wait(inst, frozenset(states))
        return inst.life.state

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
        new = {p.name: p for p in programs}
        old = self._specs
        removed = [n for n in old if n not in new]
        added = [n for n in new if n not in old]
        changed = [n for n in new if n in old and old[n] != new[n]]
        unchanged = [n for n in new if n in old and old[n] == new[n]]
        for name in (*removed, *changed):
            insts = self._instances_of(name)
            await asyncio.gather(*(self._stop_and_wait(i) for i in insts))
            for inst in insts:
                self._discard(inst)
                del self._instances[inst.name]
        self._specs = new
        if self._running:
            # Keep the dict in config order: rebuild it from the new order.
            kept = self._instances
            self._instances = {}
            for spec in new.values():
                if spec.name in unchanged:
                    for iname in spec.instance_names():
                        self._instances[iname] = kept[iname]
                else:
                    self._add_instances(spec)
            for name in (*added, *changed):
                if new[name].autostart:
                    for inst in self._instances_of(name):
                        self._want(inst)
            self._flush()
        return ReloadResult(tuple(added), tuple(removed), tuple(changed), tuple(unchanged))

    # -- internals: instances ----------------------------------------------------------------

    def _add_instances(self, spec: ProgramSpec) -> None:
        for iname in spec.instance_names():
            log = OutputLog(log_path(self.log_dir, iname), spec.log)
            inst = _Instance(spec, iname, log)
            env = dict(os.environ)
            env.update(spec.env)
            env[RUN_ENV] = self._run_id
            if self._notify is not None:
                env["NOTIFY_SOCKET"] = self._notify.address
            if spec.watchdog_sec is not None:
                env["WATCHDOG_USEC"] = str(int(spec.watchdog_sec * 1_000_000))
            else:
                env.pop("WATCHDOG_USEC", None)
            env.pop("WATCHDOG_PID", None)
            env["SELFHEAL_PROGRAM"] = iname
            inst.env = env
            self._instances[iname] = inst

    def _discard(self, inst: _Instance) -> None:
        """Forget a stopped instance: timers, watches, its log, and whoever waits on it."""
        self._cancel_all(inst)
        inst.log.close()
        for _, fut in inst.waiters:
            if not fut.done():
                fut.set_result(None)
        self._release_requests(inst)

    def _instances_of(self, program: str) -> list[_Instance]:
        return [i for i in self._instances.values() if i.spec.name == program]

    def _instance(self, name: str) -> _Instance:
        try:
            return self._instances[name]
        except KeyError:
            known = [*self._specs, *(i for i in self._instances if i not in self._specs)]
            valid = ", ".join(known) or "none configured"
            raise KeyError(f"no program or process {name!r}; known: {valid}") from None

    def _resolve(self, name: str) -> list[_Instance]:
        if name in self._specs:
            insts = self._instances_of(name)
            if insts:
                return insts
        return [self._instance(name)]

    def _levels(self) -> list[list[_Instance]]:
        """Group instances by dependency depth: level 0 depends on nothing."""
        depth: dict[str, int] = {}

        def depth_of(name: str, seen: frozenset[str]) -> int:
            if name not in depth:
                spec = self._specs.get(name)
                deps = [d for d in (spec.depends_on if spec else ()) if d not in seen]
                depth[name] = 1 + max((depth_of(d, seen | {name}) for d in deps), default=-1)
            return depth[name]

        levels: dict[int, list[_Instance]] = {}
        for inst in self._instances.values():
            levels.setdefault(depth_of(inst.spec.name, frozenset()), []).append(inst)
        return [levels[k] for k in sorted(levels)]

    # -- internals: the state machine driver -------------------------------------------------

    def _fire(self, inst: _Instance, trigger: Trigger, reason: str = "") -> None:
        old = inst.life
        new = transition(old, trigger, self.clock.monotonic(), inst.spec, rand=self._rand())
        if new is old:
            return
        if reason and new.state is not old.state:
            new = replace(new, reason=reason)
        inst.life = new
        if new.state is not old.state:
            self._enter(inst, old, new)
        for states, fut in list(inst.waiters):
            if inst.life.state in states and not fut.done():
                fut.set_result(None)
        if new.state in _IDLE:
            # A dependency that stopped or gave up may strand start requests of dependents.
            self._release_stranded()

    def _enter(self, inst: _Instance, old: Lifecycle, new: Lifecycle) -> None:
        if inst.state_task is not None:
            inst.state_task.cancel()
            inst.state_task = None
        if new.state not in _ACTIVE:
            self._cancel_run_tasks(inst)
        state = new.state
        name = inst.spec.name
        if state is ProcessState.STARTING:
            self._spawn(inst)
        elif state is ProcessState.RUNNING:
            self._emit(f"process.{name}.ready", Severity.INFO, instance=inst.name, pid=inst.pid)
            if inst.spec.liveness is not None:
                inst.run_tasks.append(
                    self._task(self._probe(inst, inst.spec.liveness, liveness=True))
                )
            self._start_waiting()
        elif state is ProcessState.BACKOFF:
            self._emit(
                f"process.{name}.backoff",
                Severity.WARNING,
                instance=inst.name,
                delay=new.delay,
                attempt=new.attempt,
                restarts=len(new.restarts),
                reason=new.reason,
            )
            self._group_restart(inst)
            if new.delay <= 0:
                # call_soon, not a direct call: a spawn that keeps failing must not recurse.
                loop = self._loop
                assert loop is not None
                inst.state_task = loop.call_soon(self._backoff_elapsed, inst, new)
            else:
                inst.state_task = self._task(self._backoff(inst, new))
        elif state is ProcessState.STOPPING:
            if inst.pid is not None:
                signal_group(inst.pid, inst.spec.stop_signal)
                inst.state_task = self._task(self._kill_after_grace(inst))
            else:  # nothing to wait for
                loop = self._loop
                assert loop is not None
                inst.state_task = loop.call_soon(self._gone, inst)
        elif state is ProcessState.FATAL:
            self._emit(
                f"process.{name}.fatal",
                Severity.CRITICAL,
                instance=inst.name,
                reason=new.reason,
                restarts=len(new.restarts),
                exit_code=inst.last_exit,
            )
            self._group_restart(inst)

    def _gone(self, inst: _Instance) -> None:
        self._fire(inst, Trigger.EXIT_SUCCESS)
        self._flush()

    def _backoff_elapsed(self, inst: _Instance, life: Lifecycle) -> None:
        if inst.life is life:
            self._fire(inst, Trigger.BACKOFF_ELAPSED)
            self._flush()

    async def _backoff(self, inst: _Instance, life: Lifecycle) -> None:
        await self.clock.asleep(life.delay)
        self._backoff_elapsed(inst, life)

    async def _kill_after_grace(self, inst: _Instance) -> None:
        await self.clock.asleep(inst.spec.stop_grace)
        if inst.pid is not None and inst.life.state is ProcessState.STOPPING:
            logger.warning("%s did not stop in %g s: SIGKILL", inst.name, inst.spec.stop_grace)
            signal_group(inst.pid, signal.SIGKILL)

    def _spawn(self, inst: _Instance) -> None:
        spec = inst.spec
        if inst.pid is not None:  # never two processes for one instance
            return
        loop = self._loop
        assert loop is not None
        read_fd, write_fd = os.pipe()
        try:
            popen = spawn(
                spec.argv(),
                cwd=spec.cwd,
                env=inst.env,
                stdout_fd=write_fd,
                pdeathsig=spec.pdeathsig,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            os.close(read_fd)
            os.close(write_fd)
            message = f"cannot execute {spec.argv()[0]!r}: {exc}"
            inst.log.write(f"[selfheal] {message}\n".encode())
            self._emit(
                f"process.{spec.name}.exited",
                Severity.ERROR,
                instance=inst.name,
                pid=None,
                exit_code=None,
                error=message,
                tail=[message],
            )
            self._fire(inst, Trigger.SPAWN_FAILED, message)
            return
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        pid = popen.pid
        inst.popen, inst.pid, inst.out_fd = popen, pid, read_fd
        inst.main_pid, inst.status_text = None, ""
        inst.last_beat = self.clock.monotonic()
        inst.log.clear_tail()
        self._by_pid[pid] = inst
        loop.add_reader(read_fd, self._read_output, inst)
        inst.watch = ExitWatch(
            loop, pid, lambda: self._before_reap(inst), lambda st: self._on_exit(inst, st)
        )
        inst.start_time = proc_start_time(pid)
        self._save_children()
        self._emit(
            f"process.{spec.name}.started",
            Severity.INFO,
            instance=inst.name,
            pid=pid,
            attempt=inst.life.attempt,
        )
        if spec.watchdog_sec is not None:
            inst.run_tasks.append(self._task(self._heartbeat_deadline(inst)))
        if spec.ready == "spawn":
            self._fire(inst, Trigger.READY)
            return
        if spec.ready == "probe" and spec.readiness is not None:
            inst.run_tasks.append(self._task(self._probe(inst, spec.readiness, liveness=False)))
        if spec.start_timeout is not None:
            inst.run_tasks.append(self._task(self._start_deadline(inst, spec.start_timeout)))

    def _read_output(self, inst: _Instance) -> None:
        fd = inst.out_fd
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self._write_log(inst, data)
        else:
            self._close_output(inst)

    def _write_log(self, inst: _Instance, data: bytes) -> None:
        # A full disk must not stop the draining: the child would block on a full pipe.
        try:
            inst.log.write(data)
        except OSError as exc:
            if not inst.log_failed:
                logger.error(
                    "cannot write the output of %s to %s: %s", inst.name, inst.log.path, exc
                )
            inst.log_failed = True
        else:
            inst.log_failed = False

    def _drain_output(self, inst: _Instance) -> None:
        while inst.out_fd >= 0:
            try:
                data = os.read(inst.out_fd, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._close_output(inst)
                return
            self._write_log(inst, data)

    def _close_output(self, inst: _Instance) -> None:
        if inst.out_fd >= 0 and self._loop is not None:
            self._loop.remove_reader(inst.out_fd)
            os.close(inst.out_fd)
        inst.out_fd = -1

    def _before_reap(self, inst: _Instance) -> None:
        # The leader is a zombie and holds its pid, so this group id is still ours: end
        # whatever it left running (grandchildren must not outlive it).
        if inst.pid is not None:
            signal_group(inst.pid, signal.SIGKILL)

    def _on_exit(self, inst: _Instance, status: int) -> None:
        code = os.waitstatus_to_exitcode(status)
        pid = inst.pid
        if inst.popen is not None:
            inst.popen.returncode = code
        if pid is not None:
            self._by_pid.pop(pid, None)
        self._drain_output(inst)
        was = inst.life.state
        uptime = self.clock.monotonic() - inst.life.started_at
        inst.pid = inst.popen = inst.watch = None
        inst.start_time = None
        inst.last_exit = code
        self._save_children()
        success = code in inst.spec.exit_codes
        expected = was is ProcessState.STOPPING
        self._emit(
            f"process.{inst.spec.name}.exited",
            Severity.INFO if expected or success else Severity.ERROR,
            instance=inst.name,
            pid=pid,
            exit_code=code,
            signal=signal.Signals(-code).name if code < 0 and -code in _SIGNUMS else None,
            expected=expected,
            uptime=round(uptime, 6),
            tail=inst.log.tail(),
        )
        self._fire(inst, Trigger.EXIT_SUCCESS if success else Trigger.EXIT_FAILURE)
        self._flush()

    # -- internals: requests, dependencies, groups -------------------------------------------

    def _want(self, inst: _Instance) -> None:
        state = inst.life.state
        if state in _IDLE:
            # A dependent waits (not started, not failed) until its dependencies are ready.
            inst.waiting = bool(self._unready_deps(inst))
            if not inst.waiting:
                self._fire(inst, Trigger.START)
        elif state in (ProcessState.BACKOFF, ProcessState.STOPPING):
            self._fire(inst, Trigger.START, "start requested")

    def _unready_deps(self, inst: _Instance) -> list[str]:
        return [
            dep
            for dep in inst.spec.depends_on
            if any(i.life.state is not ProcessState.RUNNING for i in self._instances_of(dep))
        ]

    def _start_waiting(self) -> None:
        for inst in list(self._instances.values()):
            if inst.waiting and inst.life.state in _IDLE and not self._unready_deps(inst):
                inst.waiting = False
                self._fire(inst, Trigger.START, "dependencies ready")

    def _group_restart(self, failed: _Instance) -> None:
        spec = failed.spec
        if spec.group is None or spec.strategy == "one_for_one":
            return
        members = [i for i in self._instances.values() if i.spec.group == spec.group]
        if spec.strategy == "rest_for_one":
            members = members[members.index(failed) + 1 :]
        for inst in members:
            if inst is not failed and inst.life.state in _ACTIVE:
                self._fire(inst, Trigger.RESTART, f"group {spec.group}: {failed.name} failed")

    def _deps_coming(self, inst: _Instance, seen: frozenset[str] = frozenset()) -> bool:
        """Whether every unready dependency of `inst` is on its way to being ready."""
        for dep in self._unready_deps(inst):
            for d in self._instances_of(dep):
                life = d.life
                if life.state in (ProcessState.STARTING, ProcessState.BACKOFF):
                    continue
                if life.state is ProcessState.STOPPING and life.then_start:
                    continue
                if d.waiting and d.name not in seen and self._deps_coming(d, seen | {inst.name}):
                    continue
                if life.state is ProcessState.RUNNING:
                    continue
                return False
        return True

    def _release_requests(self, inst: _Instance) -> None:
        for fut in inst.requests:
            if not fut.done():
                fut.set_result(None)

    def _release_stranded(self) -> None:
        for inst in self._instances.values():
            if inst.requests and inst.waiting and not self._deps_coming(inst):
                self._release_requests(inst)

    async def _request(self, inst: _Instance) -> None:
        """Wait for a start or restart of `inst` to succeed or fail.

        It also ends when the request can no longer succeed: the instance was stopped or
        replaced meanwhile, or it waits for dependencies that nobody is starting.
        """
        if inst.life.state in _REQUEST_DONE and not inst.waiting:
            return
        if inst.waiting and not self._deps_coming(inst):
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        inst.requests.append(fut)
        waiter = asyncio.ensure_future(self._wait(inst, _REQUEST_DONE))
        try:
            await asyncio.wait([fut, waiter], return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            inst.requests.remove(fut)

    async def _stop_and_wait(self, inst: _Instance, *, sweep: bool = True) -> None:
        inst.waiting = False
        self._release_requests(inst)
        # Also after a crash (BACKOFF, EXITED, FATAL): what escaped that run is still about.
        swept_before = inst.life.state is ProcessState.STOPPED
        self._fire(inst, Trigger.STOP)
        self._flush()
        await self._wait(inst, _IDLE)
        if sweep and not swept_before:
            await self._end_escapees(inst)

    async def _end_escapees(self, inst: _Instance | None) -> None:
        """End descendants that left the process group (``setsid``) but carry our run id.

        Not on the crash path (a /proc scan costs milliseconds): after a deliberate stop of
        `inst`, or of everything (None) at shutdown.
        """
        if inst is not None and inst.life.state not in _IDLE:
            return  # started again meanwhile: what carries its name is its new run's
        pids = find_marked(self._run_id, inst.name if inst is not None else None)
        pids = [p for p in pids if p not in self._by_pid]
        if not pids:
            return
        what = inst.name if inst is not None else "the stopped programs"
        logger.warning("ending %d process(es) of %s that left the group: %s", len(pids), what, pids)
        await end_processes(pids, self._leftover_grace, self.clock.asleep)
        self._emit(
            "supervisor.leftovers.ended",
            Severity.WARNING,
            instance=inst.name if inst is not None else None,
            pids=pids,
        )
        self._flush()

    async def _wait(self, inst: _Instance, states: frozenset[ProcessState]) -> None:
        if inst.life.state in states:
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        entry = (states, fut)
        inst.waiters.append(entry)
        try:
            await fut
        finally:
            inst.waiters.remove(entry)

    # -- internals: health -------------------------------------------------------------------

    async def _probe(self, inst: _Instance, probe: ProbeSpec, *, liveness: bool) -> None:
        check = _build_check(probe, inst.spec.cwd)
        kind = "liveness" if liveness else "readiness"
        if probe.initial_delay > 0:
            await self.clock.asleep(probe.initial_delay)
        failures = 0
        while True:
            error = ""
            try:
                async with timeout_after(probe.timeout, self.clock, name=kind):
                    await check()
            except TimeoutError:
                error = f"timed out after {probe.timeout:g} s"
            except Exception as exc:  # noqa: BLE001 - any failure of the check is a failure
                error = f"{type(exc).__name__}: {exc}"
            if not liveness and not error:
                self._fire(inst, Trigger.READY, "readiness probe passed")
                self._flush()
                return
            failures = failures + 1 if error else 0
            if liveness and failures >= probe.failure_threshold:
                reason = f"liveness probe failed {failures} times: {error}"
                self._unhealthy(inst, kind, reason)
                return
            await self.clock.asleep(probe.interval)

    def _unhealthy(self, inst: _Instance, probe: str, reason: str) -> None:
        """Restart `inst` as unhealthy (counted for backoff and intensity), saying why."""
        self._emit(
            f"process.{inst.spec.name}.unhealthy",
            Severity.ERROR,
            instance=inst.name,
            pid=inst.pid,
            probe=probe,
            reason=reason,
        )
        self._fire(inst, Trigger.UNHEALTHY, reason)
        self._flush()

    async def _start_deadline(self, inst: _Instance, limit: float) -> None:
        # Cancelled with the run's other tasks when the process exits or is stopped.
        await self.clock.asleep(limit)
        if inst.life.state is not ProcessState.STARTING:
            return
        reason = f"not ready within {limit:g} s"
        self._unhealthy(inst, "start", reason)

    async def _heartbeat_deadline(self, inst: _Instance) -> None:
        limit = inst.spec.watchdog_sec
        assert limit is not None
        while True:
            left = inst.last_beat + limit - self.clock.monotonic()
            if left <= 0:
                break
            await self.clock.asleep(left)
        reason = f"no sd_notify WATCHDOG=1 for {limit:g} s"
        self._unhealthy(inst, "watchdog", reason)

    def _on_notify(self, pid: int | None, fields: Mapping[str, str]) -> None:
        inst = self._by_pid.get(pid) if pid is not None else None
        if inst is None and pid is not None:
            sid = proc_session(pid)
            inst = self._by_pid.get(sid) if sid is not None else None
        if inst is None:
            logger.debug("sd_notify datagram from unknown pid %s dropped", pid)
            return
        if "STATUS" in fields:
            inst.status_text = fields["STATUS"][:500]
        if "MAINPID" in fields and fields["MAINPID"].isdigit():
            inst.main_pid = int(fields["MAINPID"])
        if fields.get("WATCHDOG") == "1":
            inst.last_beat = self.clock.monotonic()
        if fields.get("READY") == "1":
            self._fire(inst, Trigger.READY, "READY=1")
        if fields.get("WATCHDOG") == "trigger":
            self._fire(inst, Trigger.UNHEALTHY, "WATCHDOG=trigger")
        self._flush()

    # -- internals: plumbing -----------------------------------------------------------------

    def _task(self, coro: Awaitable[None]) -> asyncio.Future[None]:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_log_crash)
        return task

    def _cancel_run_tasks(self, inst: _Instance) -> None:
        for task in inst.run_tasks:
            task.cancel()
        inst.run_tasks.clear()

    def _cancel_all(self, inst: _Instance) -> None:
        self._cancel_run_tasks(inst)
        if inst.state_task is not None:
            inst.state_task.cancel()
            inst.state_task = None
        if inst.watch is not None:
            inst.watch.close()
        self._close_output(inst)

    def _emit(self, type_: str, severity: Severity, **data: Any) -> None:
        self._events.append((type_, str(severity), data))

    def _flush(self) -> None:
        # Events are published after the I/O of a step (the respawn first, then the news),
        # in the order they happened.
        while self._events:
            events, self._events = self._events, []
            for type_, severity, data in events:
                self.bus.emit(type_, "supervisor", severity, **data)

    def _save_children(self) -> None:
        records = [
            ChildRecord(i.name, i.pid, i.start_time, self._run_id)
            for i in self._instances.values()
            if i.pid is not None
        ]
        try:
            self._state_file.write(records)
        except OSError as exc:
            logger.warning("cannot write %s: %s", self._state_file.path, exc)

    def _lock(self) -> None:
        path = self.state_dir / "supervisor.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            pid = int(other) if other.isdigit() else None
            raise StateDirLockedError(str(self.state_dir), pid) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    async def _end_leftovers(self) -> None:
        records = self._state_file.read()
        if not records:
            return
        found = find_leftovers(records)
        if found:
            pids = [p for ps in found.values() for p in ps]
            logger.warning("ending %d process(es) left by a previous run: %s", len(pids), found)
            await end_processes(pids, self._leftover_grace, self.clock.asleep)
            for name, ps in found.items():
                self._emit("supervisor.leftovers.ended", Severity.WARNING, instance=name, pids=ps)
        self._state_file.write([])


_SIGNUMS = frozenset(int(s) for s in signal.Signals)


def _log_crash(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("supervisor task failed", exc_info=task.exception())


def _build_check(probe: ProbeSpec, cwd: str | None) -> Callable[[], Awaitable[Any]]:
    from selfheal.health.checks import command_check, http_check, tcp_check

    if probe.kind == "http":
        return http_check(probe.target)
    if probe.kind == "tcp":
        host, _, port = probe.target.rpartition(":")
        return tcp_check(host.strip("[]"), int(port))
    return command_check(probe.argv, cwd=cwd)
