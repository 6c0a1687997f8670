"""One supervised process and its output: spawned on a pipe, drained, reaped.

A `Child` is one instance of a program (``web``, or ``web:1`` of ``numprocs``): its place in
the lifecycle, the process that runs now (if any), the pipe its output comes through, and the
timers and waiters the driver hung on it. What to do next is the driver's; a `Child` only does
the I/O of its own process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from selfheal.supervisor._logs import OutputLog
from selfheal.supervisor._notify import NotifySocket
from selfheal.supervisor._proc import (
    PROGRAM_ENV,
    RUN_ENV,
    ExitWatch,
    proc_start_time,
    signal_group,
    spawn,
)
from selfheal.supervisor._spec import ProgramSpec
from selfheal.supervisor._states import Lifecycle, ProcessState

__all__ = ["SPAWN_ERRORS", "Child", "child_env", "children_of"]

logger = logging.getLogger("selfheal.supervisor")

#: What `Child.launch` raises when the command cannot be run (a failed start, not a crash).
SPAWN_ERRORS = (OSError, ValueError, subprocess.SubprocessError)


def child_env(
    spec: ProgramSpec, name: str, run_id: str, notify: NotifySocket | None
) -> dict[str, str]:
    """Return the environment instance `name` of `spec` runs with.

    The daemon's own, the program's ``env``, and the marks by which the daemon finds the
    process and its descendants again (run id, instance name), plus sd_notify's variables.
    """
    env = dict(os.environ)
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


def children_of(children: Mapping[str, Child], program: str) -> list[Child]:
    """Return the instances of `program` among `children`, in their order."""
    return [c for c in children.values() if c.spec.name == program]


class Child:
    """One process of a program and everything the driver knows about it.

    Args:
        spec: The program.
        name: The instance name (the program's, or ``program:N``).
        log: Where its output goes.
        env: The complete environment it is started with.
    """

    def __init__(self, spec: ProgramSpec, name: str, log: OutputLog, env: dict[str, str]) -> None:
        self.spec = spec
        self.name = name
        self.log = log
        self.env = env
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
        self.log_failed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"Child({self.name!r}, {self.life.state.value}, pid={self.pid})"

    # -- the process -------------------------------------------------------------------------

    def launch(
        self,
        loop: asyncio.AbstractEventLoop,
        now: float,
        on_exit: Callable[[Child, int], None],
    ) -> int:
        """Start the process with its output on a pipe that `loop` drains into the log.

        Args:
            loop: Reads the output and learns of the exit.
            now: The clock's monotonic time: the heartbeat deadline counts from here.
            on_exit: Called on the loop with this child and the raw wait status once reaped.

        Returns:
            The new process's pid.

        Raises:
            OSError: If the command cannot be executed (also ValueError and
                subprocess.SubprocessError: every one of `SPAWN_ERRORS`).
        """
        spec = self.spec
        read_fd, write_fd = os.pipe()
        try:
            popen = spawn(
                spec.argv(),
                cwd=spec.cwd,
                env=self.env,
                stdout_fd=write_fd,
                pdeathsig=spec.pdeathsig,
            )
        except SPAWN_ERRORS:
            os.close(read_fd)
            os.close(write_fd)
            raise
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        pid = popen.pid
        self._loop = loop
        self.popen, self.pid, self.out_fd = popen, pid, read_fd
        self.main_pid, self.status_text = None, ""
        self.last_beat = now
        self.log.clear_tail()
        loop.add_reader(read_fd, self.read_output)
        self.watch = ExitWatch(loop, pid, self.before_reap, lambda st: on_exit(self, st))
        self.start_time = proc_start_time(pid)
        return pid

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

    def read_output(self) -> bool:
        """Move one chunk from the pipe to the log; close the pipe at its end.

        Returns:
            Whether there may be more to read now.
        """
        try:
            data = os.read(self.out_fd, 65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            self.close_output()
            return False
        self._write_log(data)
        return True

    def drain_output(self) -> None:
        """Move everything left in the pipe to the log (the process has exited)."""
        while self.out_fd >= 0 and self.read_output():
            pass

    def close_output(self) -> None:
        """Stop reading the output pipe and close it; safe to call twice."""
        if self.out_fd >= 0 and self._loop is not None:
            self._loop.remove_reader(self.out_fd)
            os.close(self.out_fd)
        self.out_fd = -1

    def _write_log(self, data: bytes) -> None:
        # A full disk must not stop the draining: the child would block on a full pipe.
        try:
            self.log.write(data)
        except OSError as exc:
            if not self.log_failed:
                logger.error(
                    "cannot write the output of %s to %s: %s", self.name, self.log.path, exc
                )
            self.log_failed = True
        else:
            self.log_failed = False

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
        for _, fut in self.waiters:
            if not fut.done():
                fut.set_result(None)
        self.release_requests()
