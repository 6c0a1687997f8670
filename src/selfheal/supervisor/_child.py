"""One supervised process and its output: spawned on a pipe, drained, reaped.

A `Child` is one instance of a program (``web``, or ``web:1`` of ``numprocs``): its place in
the lifecycle, the process that runs now (if any), the pipe its output comes through, and the
timers and waiters the driver hung on it. What to do next is the driver's; a `Child` only does
the I/O of its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from selfheal.supervisor._expand import instance_spec
from selfheal.supervisor._logs import OutputLog, Tail, log_path, stderr_log_path
from selfheal.supervisor._notify import NotifySocket
from selfheal.supervisor._proc import (
    PROGRAM_ENV,
    RUN_ENV,
    ExitWatch,
    RunAs,
    SwitchUserError,
    proc_start_time,
    resolve_user,
    signal_group,
    spawn,
)
from selfheal.supervisor._spare import Spares
from selfheal.supervisor._spec import ProgramSpec
from selfheal.supervisor._states import Lifecycle, ProcessState

__all__ = ["Child", "build_child", "child_env", "children_of"]

logger = logging.getLogger("selfheal.supervisor")


def child_env(
    spec: ProgramSpec,
    name: str,
    run_id: str,
    notify: NotifySocket | None,
    run_as: RunAs | None = None,
) -> dict[str, str]:
    """Return the environment instance `name` of `spec` runs with.

    The daemon's own (with the user's ``HOME``, ``USER`` and ``LOGNAME`` when it runs as
    another user), the program's ``env``, and the marks by which the daemon finds the process
    and its descendants again (run id, instance name), plus sd_notify's variables.
    """
    env = dict(os.environ)
    if run_as is not None:
        env.update(HOME=run_as.home, USER=run_as.name, LOGNAME=run_as.name)
    env.update(spec.env)
    env[RUN_ENV] = run_id
    if notify is not None:
        env["NOTIFY_SOCKET"] = notify.address
    if spec.watchdog_sec is not None:
        env["WATCHDOG_USEC"] = str(int(spec.watchdog_sec * 1_000_000))
    else:
        env.pop("WATCHDOG_USEC", None)
    env.pop("WATCHDOG_PID", None)
    env[PROGRAM_ENV] = name
    return env


def build_child(
    spec: ProgramSpec,
    name: str,
    number: int,
    *,
    log_dir: Path,
    run_id: str,
    notify: NotifySocket | None,
) -> Child:
    """Return process `number` of `spec`, named `name`: its logs, user, environment.

    A ``user`` that cannot be resolved is kept as the reason the process never starts.
    """
    tail = Tail(spec.log.tail_lines)
    log = OutputLog(log_path(log_dir, name), spec.log, tail)
    err_log = None
    if not spec.redirect_stderr:
        err_log = OutputLog(stderr_log_path(log_dir, name), spec.log, tail)
    run_as: RunAs | None = None
    user_error = ""
    if spec.user is not None:
        try:
            run_as = resolve_user(spec.user)
        except SwitchUserError as exc:
            user_error = str(exc)
    inst = instance_spec(spec, number)
    env = child_env(inst, name, run_id, notify, run_as)
    child = Child(inst, name, log, env, err_log=err_log, run_as=run_as, number=number)
    child.user_error = user_error
    return child


def children_of(children: Mapping[str, Child], program: str) -> list[Child]:
    """Return the instances of `program` among `children`, in their order."""
    return [c for c in children.values() if c.spec.name == program]


class Child:
    """One process of a program and everything the driver knows about it.

    Args:
        spec: The program as this instance runs it (its ``%(process_num)d`` expanded).
        name: The instance name (the program's, or ``program:N``).
        log: Where its output goes (stdout, and stderr unless `err_log` is given).
        env: The complete environment it is started with.
        err_log: Where stderr goes when it is not redirected to `log` (sharing its tail).
        run_as: The user it runs as, if not the daemon's.
        number: Its ``%(process_num)d``.
    """

    def __init__(
        self,
        spec: ProgramSpec,
        name: str,
        log: OutputLog,
        env: dict[str, str],
        *,
        err_log: OutputLog | None = None,
        run_as: RunAs | None = None,
        number: int = 0,
    ) -> None:
        self.spec = spec
        self.name = name
        self.number = number
        self.log = log
        self.err_log = err_log
        self.env = env
        self.run_as = run_as
        #: Why the program's ``user`` could not be resolved (it is then never started).
        self.user_error = ""
        #: The instance name its running process carries in its environment (a reload that
        #: renumbers instances renames the child, not the process).
        self.marked_as = name
        self.life = Lifecycle()
        self.popen: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None
        self.start_time: int | None = None
        self.watch: ExitWatch | None = None
        self.pipes: dict[int, OutputLog] = {}
        self.waiting = False
        #: Why the readiness probe failed last ("" when it passed or has not run).
        self.probe_error = ""
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
        self.log_failed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"Child({self.name!r}, {self.life.state.value}, pid={self.pid})"

    def rename(self, name: str, log_dir: Path) -> None:
        """Take the name `name` (a reload between one process and several: ``web:0``).

        The running process keeps running: its output files are moved (the open descriptors
        follow them); it is found by its old name until it is started again.
        """
        moves = [(self.log, log_path(log_dir, name))]
        if self.err_log is not None:
            moves.append((self.err_log, stderr_log_path(log_dir, name)))
        for log, path in moves:
            with contextlib.suppress(OSError):
                os.replace(log.path, path)
            log.path = path
        self.env[PROGRAM_ENV] = name
        self.name = name

    def report(
        self, now: float, wall: float, waiting_for: list[str], *, tail: int = 0
    ) -> dict[str, Any]:
        """Return the child's status as JSON-ready data (`Supervisor.status`).

        Args:
            now: The clock's monotonic time.
            wall: The clock's wall time at `now`.
            waiting_for: What it waits for before it starts.
            tail: Add this many last lines of output (``tail``).
        """
        life, spec = self.life, self.spec
        entry = {
            "name": self.name,
            "program": spec.name,
            "group": spec.group,
            "state": life.state.value,
            "pid": self.pid,
            "since": wall - (now - life.since),
            "uptime": (now - life.started_at) if self.pid is not None else None,
            "restarts": len(life.restarts),
            "reason": life.reason,
            "exit_code": self.last_exit,
            "status": self.status_text,
            "probe": self.probe_error,
            "waiting_for": waiting_for,
            "autostart": spec.autostart,
            "priority": spec.priority,
            "start_timeout": spec.start_timeout,
            "stop_grace": spec.stop_grace,
            "log": str(self.log.path),
            "stderr_log": str(self.err_log.path) if self.err_log is not None else None,
            "output_lost": self.output_lost,
        }
        if tail > 0:
            entry["tail"] = self.tail()[-tail:]
        return entry

    # -- the process -------------------------------------------------------------------------

    def launch(
        self,
        loop: asyncio.AbstractEventLoop,
        now: float,
        on_exit: Callable[[Child, int], None],
        spares: Spares | None = None,
    ) -> int:
        """Start the process with its output on a pipe that `loop` drains into the log.

        Args:
            loop: Reads the output and learns of the exit.
            now: The clock's monotonic time: the heartbeat deadline counts from here.
            on_exit: Called on the loop with this child and the raw wait status once reaped.
            spares: The program's spare (``preload``): taken when one is waiting, instead of
                a spawn.

        Returns:
            The new process's pid.

        Raises:
            OSError: If the command cannot be executed (also ValueError and
                subprocess.SubprocessError: every one of `SPAWN_ERRORS`), or the daemon
                lacks what a spawn needs (`shortage` says what). Nothing is left open or
                running then.
        """
        spec = self.spec
        if spec.user is not None and self.run_as is None:
            # Never run as the daemon's user (root, often) what was meant to run as another.
            raise SwitchUserError(self.user_error or f"user {spec.user!r} unknown")
        logs = [self.log] if self.err_log is None else [self.log, self.err_log]
        if spares is not None:
            spare = spares.take(
                spec.argv(), spec.cwd, self.env, self.before_reap, lambda st: on_exit(self, st)
            )
            if spare is not None:
                for log, kept in zip(logs, spare.output, strict=True):
                    self._write_log(log, bytes(kept))
                pid = self._running(
                    loop,
                    now,
                    popen=spare.popen,
                    watch=spare.watch,
                    out_fds=spare.out_fds,
                    logs=logs,
                )
                # What /proc shows of its environment is the spare's, for good.
                self.marked_as = spare.marker
                return pid
        pipes: list[tuple[int, int]] = []
        try:
            for _ in logs:  # one at a time: those made are closed if the next one fails
                pipes.append(os.pipe())  # noqa: PERF401
            popen = spawn(
                spec.argv(),
                cwd=spec.cwd,
                env=self.env,
                stdout_fd=pipes[0][1],
                stderr_fd=pipes[1][1] if len(pipes) > 1 else None,
                pdeathsig=spec.pdeathsig,
                run_as=self.run_as,
                umask=spec.umask,
            )
        except BaseException:
            for read_fd, write_fd in pipes:
                os.close(read_fd)
                os.close(write_fd)
            raise
        for _, write_fd in pipes:
            os.close(write_fd)
        pid = popen.pid
        try:
            watch = ExitWatch(loop, pid, self.before_reap, lambda st: on_exit(self, st))
        except BaseException:
            # Nobody could learn of its exit: it must not run. Killed, it is reaped at once.
            for read_fd, _ in pipes:
                os.close(read_fd)
            signal_group(pid, signal.SIGKILL)
            popen.wait()
            raise
        return self._running(
            loop, now, popen=popen, watch=watch, out_fds=[r for r, _ in pipes], logs=logs
        )

    def _running(
        self,
        loop: asyncio.AbstractEventLoop,
        now: float,
        *,
        popen: subprocess.Popen[bytes],
        watch: ExitWatch,
        out_fds: list[int],
        logs: list[OutputLog],
    ) -> int:
        """Take `popen` as this child's process, its output from `out_fds` into `logs`."""
        self._loop = loop
        self.popen, self.pid, self.watch = popen, popen.pid, watch
        self.marked_as = self.name
        self.main_pid, self.status_text, self.probe_error = None, "", ""
        self.last_beat = now
        for log in logs:
            log.clear_tail()
        for read_fd, log in zip(out_fds, logs, strict=True):
            os.set_blocking(read_fd, False)
            self.pipes[read_fd] = log
            loop.add_reader(read_fd, self.read_output, read_fd)
        self.start_time = proc_start_time(popen.pid)
        return popen.pid

    def before_reap(self) -> None:
        """End what is left of the group while the exited leader, a zombie, still holds its id.

        Grandchildren must not outlive it, and the group id cannot have been reused yet.
        """
        if self.pid is not None:
            signal_group(self.pid, signal.SIGKILL)

    def reaped(self, status: int) -> int:
        """Take the exit in: drain the rest of the output, forget the process.

        Args:
            status: The raw wait status.

        Returns:
            The exit code (negative: the signal that ended it).
        """
        code = os.waitstatus_to_exitcode(status)
        if self.popen is not None:
            self.popen.returncode = code
        self.drain_output()
        self.pid = self.popen = self.watch = None
        self.start_time = None
        self.last_exit = code
        return code

    # -- its output --------------------------------------------------------------------------

    def read_output(self, fd: int) -> bool:
        """Move one chunk from pipe `fd` to its log; close the pipe at its end.

        Returns:
            Whether there may be more to read now.
        """
        log = self.pipes.get(fd)
        if log is None:
            return False
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self._close_pipe(fd)
            return False
        self._write_log(log, data)
        return True

    def drain_output(self) -> None:
        """Move everything left in the pipes to the logs (the process has exited)."""
        for fd in list(self.pipes):
            while self.read_output(fd):
                pass

    def close_output(self) -> None:
        """Stop reading the output pipes and close them; safe to call twice."""
        for fd in list(self.pipes):
            self._close_pipe(fd)

    def _close_pipe(self, fd: int) -> None:
        if self.pipes.pop(fd, None) is not None:
            if self._loop is not None:
                self._loop.remove_reader(fd)
            os.close(fd)

    def tail(self) -> list[str]:
        """Return the last lines of output (stdout and stderr, as they came), oldest first."""
        return self.log.tail(*([self.err_log] if self.err_log is not None else []))

    def note(self, line: str) -> None:
        """Write `line` (one of the daemon's, ``[selfheal] ...``) into the output log."""
        self._write_log(self.log, f"[selfheal] {line}\n".encode())

    def _write_log(self, log: OutputLog, data: bytes) -> None:
        # A full disk must not stop the draining: the child would block on a full pipe.
        try:
            log.write(data)
        except OSError as exc:
            if not self.log_failed:
                logger.error("cannot write the output of %s to %s: %s", self.name, log.path, exc)
            self.log_failed = True
        else:
            if self.log_failed:
                logger.warning(
                    "the output of %s is written to %s again (%d bytes lost in all)",
                    self.name,
                    log.path,
                    self.output_lost,
                )
            self.log_failed = False

    @property
    def output_lost(self) -> int:
        """Bytes of its output that never reached its log files."""
        return self.log.lost + (self.err_log.lost if self.err_log is not None else 0)

    # -- timers and waiters ------------------------------------------------------------------

    def cancel_run_tasks(self) -> None:
        """Cancel what watches the current run (probes, deadlines)."""
        for task in self.run_tasks:
            task.cancel()
        self.run_tasks.clear()

    def cancel_all(self) -> None:
        """Cancel every timer and watch, and close the output pipe."""
        self.cancel_run_tasks()
        if self.state_task is not None:
            self.state_task.cancel()
            self.state_task = None
        if self.watch is not None:
            self.watch.close()
        self.close_output()

    async def wait(self, states: frozenset[ProcessState]) -> None:
        """Return once the child is in one of `states` (or is discarded)."""
        if self.life.state in states:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (states, fut)
        self.waiters.append(entry)
        try:
            await fut
        finally:
            self.waiters.remove(entry)

    def wake_waiters(self) -> None:
        """Release whoever waits for the state the child is in now."""
        for states, fut in list(self.waiters):
            if self.life.state in states and not fut.done():
                fut.set_result(None)

    def release_requests(self) -> None:
        """End the start and restart requests waiting on this child: they cannot succeed."""
        for fut in self.requests:
            if not fut.done():
                fut.set_result(None)

    def discard(self) -> None:
        """Forget the child: timers, watches, its log, and whoever waits on it."""
        self.cancel_all()
        self.log.close()
        if self.err_log is not None:
            self.err_log.close()
        for _, fut in self.waiters:
            if not fut.done():
                fut.set_result(None)
        self.release_requests()
