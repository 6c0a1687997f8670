"""Process faults: kill, stop (SIGSTOP) and resume (SIGCONT) a program.

The target is a pid (or a function returning one), or a program of a `ProgramControl` (the
`Supervisor`) that can tell its pid. Both faults are `Disruption`s: register them on a
`ChaosMonkey` with `register_fault`, or use their ``inject``/``rollback`` in a test.

A stopped process stays stopped if whoever stopped it dies: so `StopProcess` starts a tiny
guardian process before it sends SIGSTOP, which sends SIGCONT once the fault's time limit
(plus a grace period) has passed, whatever became of the injector (a dead-man switch). A
normal rollback resumes the process and ends the guardian. SIGCONT to a running process does
nothing, so a guardian firing late, or at a recycled pid, does no harm.

Safety: pid 0, 1 and negative pids, this process and this process's group are refused.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from selfheal.chaos._args import positive_seconds
from selfheal.interfaces import ProgramControl

__all__ = ["KillProcess", "ProgramPids", "StopProcess"]

# Runs with `python -I -S -c`: nothing but the standard library, started in ~10 ms.
_GUARDIAN = """
import os, signal, sys, time
pid, delay, group = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3] == "1"
time.sleep(delay)
try:
    (os.killpg if group else os.kill)(pid, signal.SIGCONT)
except OSError:
    pass
"""


@runtime_checkable
class ProgramPids(ProgramControl, Protocol):
    """A `ProgramControl` that can also tell a program's pid (the `Supervisor` can)."""

    def pid(self, name: str) -> int | None:
        """Return the pid of program (instance) `name`, None when it is not running."""
        ...


class _ProcessFault:
    """What both process faults share: finding the pid and signalling it safely."""

    def __init__(
        self,
        pid: int | Callable[[], int | None] | None = None,
        *,
        program: str | None = None,
        control: ProgramPids | None = None,
        group: bool = False,
    ) -> None:
        if (pid is None) == (program is None):
            raise TypeError(f"{type(self).__name__}: give exactly one of pid= and program=")
        if program is not None and not isinstance(control, ProgramPids):
            raise TypeError(
                f"{type(self).__name__}(program={program!r}): control= must be a ProgramControl "
                "with a pid(name) method, such as selfheal.supervisor.Supervisor"
            )
        self.pid = pid
        self.program = program
        self.control = control
        self.group = group

    def __repr__(self) -> str:
        what = f"program={self.program!r}" if self.program is not None else f"pid={self.pid!r}"
        return f"{type(self).__name__}({what}, group={self.group})"

    def target_pid(self) -> int:
        """Return the pid to signal now.

        Raises:
            ProcessLookupError: If the program has no running process.
            PermissionError: For a pid this process must never signal (itself, init...).
        """
        if self.program is not None and self.control is not None:
            pid = self.control.pid(self.program)
        else:
            pid = self.pid() if callable(self.pid) else self.pid
        if pid is None:
            raise ProcessLookupError(f"{self!r}: no running process")
        if pid <= 1 or pid == os.getpid():
            raise PermissionError(f"{self!r}: refusing to signal pid {pid}")
        if self.group and os.getpgid(pid) == os.getpgrp():
            raise PermissionError(f"{self!r}: pid {pid} is in this process's own group")
        return pid

    def _send(self, pid: int, sig: signal.Signals) -> None:
        if self.group:
            os.killpg(os.getpgid(pid), sig)
        else:
            os.kill(pid, sig)


class KillProcess(_ProcessFault):
    """SIGKILL a process; the rollback starts a supervised program again if it is not running.

    Args:
        pid: The pid, or a function returning it (None: not running).
        program: A program of `control` instead of a pid.
        control: The `ProgramControl` (with ``pid(name)``, a `ProgramPids`) running
            `program`.
        group: Signal the process's whole group.

    Raises:
        TypeError: Unless exactly one of `pid` and `program` is given (with a `control`).
    """

    async def inject(self, limit: float | None = None) -> None:
        """Send SIGKILL (`limit` is unused: a kill is over at once)."""
        self._send(self.target_pid(), signal.SIGKILL)

    async def rollback(self) -> None:
        """Start the program if its supervisor has not already (nothing for a bare pid)."""
        if self.program is not None and self.control is not None:
            await self.control.start_program(self.program)


class StopProcess(_ProcessFault):
    """SIGSTOP a process; SIGCONT on rollback, or from a guardian once the limit has passed.

    Args:
        pid: The pid, or a function returning it (None: not running).
        program: A program of `control` instead of a pid.
        control: The `ProgramControl` (with ``pid(name)``) that runs `program`.
        group: Signal the process's whole group.
        limit: Default time limit when `inject` is given none, in seconds.
        grace: The guardian waits this much longer than the limit, so that a live injector
            normally resumes the process itself.

    Raises:
        TypeError: Unless exactly one of `pid` and `program` is given (with a `control`).
        ValueError: For a limit or grace that is not a positive number.
    """

    def __init__(
        self,
        pid: int | Callable[[], int | None] | None = None,
        *,
        program: str | None = None,
        control: ProgramPids | None = None,
        group: bool = False,
        limit: float = 300.0,
        grace: float = 5.0,
    ) -> None:
        super().__init__(pid, program=program, control=control, group=group)
        self.limit = positive_seconds("limit", limit)
        self.grace = positive_seconds("grace", grace)
        self.stopped: int | None = None  # the pid stopped by the last inject
        self.guardian: subprocess.Popen[bytes] | None = None

    async def inject(self, limit: float | None = None) -> None:
        """Arm the guardian for `limit` (+ grace) seconds, then send SIGSTOP."""
        pid = self.target_pid()
        seconds = self.limit if limit is None else positive_seconds("limit", limit)
        self._end_guardian()
        # The guardian first: were this process to die right after SIGSTOP, it still resumes.
        # Popen returns once the guardian is exec'd (~1 ms); it is never waited for here.
        self.guardian = subprocess.Popen(  # noqa: ASYNC220
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                _GUARDIAN,
                str(pid),
                repr(seconds + self.grace),
                "1" if self.group else "0",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C to the injector's group must not end it
        )
        self.stopped = pid
        self._send(pid, signal.SIGSTOP)

    async def rollback(self) -> None:
        """Send SIGCONT (always, even if nothing was stopped) and end the guardian."""
        pid = self.stopped
        if pid is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                pid = self.target_pid()
        try:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    self._send(pid, signal.SIGCONT)
        finally:
            self.stopped = None
            self._end_guardian()

    def _end_guardian(self) -> None:
        guardian, self.guardian = self.guardian, None
        if guardian is not None:
            guardian.kill()  # our own child, by its Popen: never by name
            guardian.wait()
