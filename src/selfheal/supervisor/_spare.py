"""Spares: one pre-imported standby process per Python program with ``preload``.

A restart is the supervisor's few milliseconds plus the program's own start, and for a Python
web process most of that start is imports (a second or more on a busy machine). With
``preload = ["module", ...]`` the supervisor keeps one spare of the program waiting: started
with ``python -m selfheal._standby`` (the program's own interpreter), it has done those
imports and blocks on its stdin. An instance that has to start takes the spare if there is
one (the spare receives the instance's environment on stdin and runs the program as
``__main__``); otherwise it is spawned as usual. Either way the process is the supervisor's
child, in a session of its own, with its output on the instance's pipes.

A new spare is started `refill_delay` seconds after one is taken, so that its imports do not
compete for the CPU with the instance that is starting. A spare that dies before it is taken
(a preload that fails to import...) is logged with its last output and tried again later, each
time twice as late (up to `_MAX_DELAY`); instances meanwhile start the usual way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from selfheal._clock import Clock
from selfheal._standby import go_message
from selfheal.supervisor._proc import PROGRAM_ENV, ExitWatch, RunAs, signal_group, spawn
from selfheal.supervisor._spec import ProgramSpec

__all__ = ["ProgramSpares", "Spare", "Spares"]

logger = logging.getLogger("selfheal.supervisor")

_MAX_DELAY = 60.0
_OUTPUT_KEPT = 16384  # bytes of a waiting spare's output kept (a failed import's traceback)


@dataclass(eq=False)
class Spare:
    """A standby process waiting to become an instance."""

    popen: Any  # subprocess.Popen[bytes]
    pid: int
    argv: list[str]
    cwd: str | None
    go_fd: int  # the write end of its stdin
    out_fds: list[int]  # read ends of its stdout (and stderr) pipes
    watch: ExitWatch
    output: bytearray = field(default_factory=bytearray)


class Spares:
    """The spare of one program: started, handed to an instance, started again.

    Args:
        spec: The program (its `ProgramSpec.preload` names the modules to import).
        loop: The supervisor's loop.
        clock: Times the refills.
        env: The environment the spare imports with (an instance's; replaced at hand-over).
        run_as: The user to run as (as the program's instances).
        split_stderr: Whether instances have a separate stderr pipe.
        refill_delay: Seconds after a hand-over before the next spare starts.
    """

    def __init__(
        self,
        spec: ProgramSpec,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        *,
        env: dict[str, str],
        run_as: RunAs | None,
        split_stderr: bool,
        refill_delay: float = 1.0,
    ) -> None:
        self.spec = spec
        self.loop = loop
        self.clock = clock
        self.env = env
        self.run_as = run_as
        self.split_stderr = split_stderr
        self.refill_delay = refill_delay
        self.spare: Spare | None = None
        self.handed_over = 0
        self._delay = refill_delay
        self._timer: asyncio.Task[None] | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"Spares({self.spec.name!r}, spare={self.spare.pid if self.spare else None})"

    # -- the spare's life ------------------------------------------------------------------------

    def refill_soon(self, delay: float | None = None) -> None:
        """Start a spare in `delay` seconds (default: the current delay) unless one exists."""
        if self._closed or self.spare is not None or self._timer is not None:
            return
        wait = self._delay if delay is None else delay
        self._timer = self.loop.create_task(self._refill(wait), name=f"spare-{self.spec.name}")

    async def _refill(self, wait: float) -> None:
        await self.clock.asleep(wait)
        self._timer = None
        if self._closed or self.spare is not None:
            return
        try:
            self.spare = self._start()
        except (OSError, ValueError) as exc:  # a shortage, a missing interpreter...
            logger.warning("preload: cannot start a spare of %s: %s", self.spec.name, exc)
            self._later()

    def _start(self) -> Spare:
        argv = self.spec.argv()
        standby = [argv[0], "-m", "selfheal._standby"]
        if self.spec.preload:
            standby += ["--preload", ",".join(self.spec.preload)]
        standby += ["--", *argv[1:]]
        fds: list[int] = []
        try:
            go_read, go_write = os.pipe()
            fds += [go_read, go_write]
            outs = [os.pipe() for _ in range(2 if self.split_stderr else 1)]
            fds += [fd for pair in outs for fd in pair]
            popen = spawn(
                standby,
                cwd=self.spec.cwd,
                env=self.env,
                stdout_fd=outs[0][1],
                stderr_fd=outs[1][1] if self.split_stderr else None,
                stdin_fd=go_read,
                pdeathsig=self.spec.pdeathsig,
                run_as=self.run_as,
                umask=self.spec.umask,
            )
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        os.close(go_read)
        for read_fd, write_fd in outs:
            os.close(write_fd)
            os.set_blocking(read_fd, False)
        spare_ref: list[Spare] = []
        try:
            watch = ExitWatch(
                self.loop, popen.pid, lambda: None, lambda st: self._died(spare_ref[0], st)
            )
        except BaseException:
            for read_fd, _ in outs:
                os.close(read_fd)
            os.close(go_write)
            signal_group(popen.pid, signal.SIGKILL)
            popen.wait()
            raise
        spare = Spare(popen, popen.pid, argv, self.spec.cwd, go_write, [r for r, _ in outs], watch)
        spare_ref.append(spare)
        for fd in spare.out_fds:
            self.loop.add_reader(fd, self._keep_output, spare, fd)
        logger.debug("preload: spare of %s started (pid %d)", self.spec.name, spare.pid)
        return spare

    def _keep_output(self, spare: Spare, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.loop.remove_reader(fd)
            return
        spare.output += data
        del spare.output[:-_OUTPUT_KEPT]

    def _died(self, spare: Spare, status: int) -> None:
        """A spare ended before it was handed over (or while being closed)."""
        spare.popen.returncode = os.waitstatus_to_exitcode(status)
        self._release(spare)
        if self.spare is spare:
            self.spare = None
        if self._closed:
            return
        tail = bytes(spare.output).decode(errors="replace").strip().splitlines()[-5:]
        logger.warning(
            "preload: the spare of %s ended before it was needed (wait status %d)%s; "
            "instances start without it meanwhile",
            self.spec.name,
            status,
            (": " + " | ".join(tail)) if tail else "",
        )
        self._later()

    def _later(self) -> None:
        self._delay = min(_MAX_DELAY, max(self._delay * 2, self.refill_delay, 0.1))
        self.refill_soon()

    def _release(self, spare: Spare) -> None:
        for fd in spare.out_fds:
            with contextlib.suppress(Exception):
                self.loop.remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        spare.out_fds = []
        if spare.go_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(spare.go_fd)
            spare.go_fd = -1

    # -- hand-over -------------------------------------------------------------------------------

    def take(
        self,
        argv: list[str],
        cwd: str | None,
        env: dict[str, str],
        before_reap: Callable[[], None],
        on_exit: Callable[[int], None],
    ) -> Spare | None:
        """Hand the spare over to an instance with this `argv`, `cwd` and `env`.

        Returns:
            The spare, now running the program (its pipes and exit watch are the caller's
            from here), or None: no spare ready, or one started for another command line.
        """
        spare = self.spare
        # Never Popen.poll(): it would reap the process behind its exit watch's back.
        if spare is None or spare.argv != argv:
            self.refill_soon()
            return None
        self.spare = None
        try:
            os.write(spare.go_fd, go_message(env, cwd))
        except OSError:  # it died just now: its exit watch tells
            return None
        os.close(spare.go_fd)
        spare.go_fd = -1
        for fd in spare.out_fds:
            self.loop.remove_reader(fd)
        spare.watch.hand_over(before_reap, on_exit)
        self.handed_over += 1
        self._delay = self.refill_delay
        self.refill_soon()
        return spare

    def close(self) -> None:
        """End the spare (it runs nothing of the program yet); start no other."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        spare, self.spare = self.spare, None
        if spare is not None:
            # It runs nothing of the program yet: ended at once rather than after its imports
            # (when it would read the end of its input), and reaped here, where the daemon may
            # be about to exit: a SIGKILLed process is gone in a moment.
            spare.watch.close()
            signal_group(spare.pid, signal.SIGKILL)
            try:
                _, status = os.waitpid(spare.pid, 0)
            except ChildProcessError:
                status = 0
            self._died(spare, status)


class ProgramSpares:
    """The spares of every program with ``preload`` (the driver keeps one of these)."""

    def __init__(self) -> None:
        self._by_program: dict[str, Spares] = {}

    def __repr__(self) -> str:
        return f"ProgramSpares({sorted(self._by_program)})"

    def get(self, program: str) -> Spares | None:
        """Return the spares of `program`, None if it has none."""
        return self._by_program.get(program)

    def for_instance(
        self,
        spec: ProgramSpec,
        loop: asyncio.AbstractEventLoop,
        clock: Clock,
        *,
        env: dict[str, str],
        run_as: RunAs | None,
        split_stderr: bool,
    ) -> Spares | None:
        """Return the spares of `spec`'s program (made now, their first spare started soon).

        None for a program without ``preload``. A program whose spec changed (a reload) gets
        new spares: the old spare imported for the old command.
        """
        if not spec.preload:
            return None
        spares = self._by_program.get(spec.name)
        if spares is not None and spares.spec != spec:
            spares.close()
            spares = None
        if spares is None:
            # Marked as no instance: a sweep for what an instance left behind must not end
            # the spare, and a spare handed over is its instance's (`Child.pid`) anyway.
            own = {**env, PROGRAM_ENV: f"{spec.name}:spare"}
            spares = Spares(spec, loop, clock, env=own, run_as=run_as, split_stderr=split_stderr)
            self._by_program[spec.name] = spares
        return spares

    def keep(self, programs: set[str] | None = None) -> None:
        """Close the spares of every program not in `programs` (None: of all programs)."""
        for name in list(self._by_program):
            if programs is None or name not in programs:
                self._by_program.pop(name).close()
