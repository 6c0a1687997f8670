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
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from selfheal._clock import Clock
from selfheal._standby import go_message
from selfheal.supervisor._proc import PROGRAM_ENV, ExitWatch, RunAs, signal_group, spawn
from selfheal.supervisor._spec import ProgramSpec
from selfheal.supervisor._states import IDLE

if TYPE_CHECKING:
    from selfheal.supervisor._child import Child

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
    marker: str  # its SELFHEAL_PROGRAM, which /proc shows for good (`Child.marked_as`)
    #: What it wrote before the hand-over, one buffer per pipe of `out_fds`: the instance's
    #: logs get it, each stream its own.
    output: list[bytearray] = field(default_factory=list)


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
        self._started = 0
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
        except Exception as exc:  # noqa: BLE001 - a shortage, no interpreter: tried again later
            logger.warning("preload: cannot start a spare of %s: %s", self.spec.name, exc)
            self._later()

    def _start(self) -> Spare:
        argv = self.spec.argv()
        standby = [argv[0], "-m", "selfheal._standby"]
        if self.spec.preload:
            standby += ["--preload", ",".join(self.spec.preload)]
        standby += ["--", *argv[1:]]
        self._started += 1
        # A marker of its own: a sweep for what an instance (or another spare) left behind
        # must not end it, and once it is an instance the sweep after that one looks for it.
        marker = f"{self.spec.name}:spare:{self._started}"
        fds: list[int] = []
        try:
            go_read, go_write = os.pipe()
            fds += [go_read, go_write]
            outs = [os.pipe() for _ in range(2 if self.split_stderr else 1)]
            fds += [fd for pair in outs for fd in pair]
            popen = spawn(
                standby,
                cwd=self.spec.cwd,
                env={**self.env, PROGRAM_ENV: marker},
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
        pid = popen.pid

        def end_group() -> None:
            # Whatever its imports started goes with it (the zombie still holds the group id).
            signal_group(pid, signal.SIGKILL)

        try:
            watch = ExitWatch(self.loop, pid, end_group, lambda st: self._died(spare_ref[0], st))
        except BaseException:
            for read_fd, _ in outs:
                os.close(read_fd)
            os.close(go_write)
            signal_group(popen.pid, signal.SIGKILL)
            popen.wait()
            raise
        os.set_blocking(go_write, False)
        out_fds = [r for r, _ in outs]
        spare = Spare(popen, pid, argv, self.spec.cwd, go_write, out_fds, watch, marker)
        spare.output = [bytearray() for _ in out_fds]
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
        kept = spare.output[spare.out_fds.index(fd)]
        kept.extend(data)
        del kept[:-_OUTPUT_KEPT]

    def _drain(self, spare: Spare) -> None:
        for fd, kept in zip(spare.out_fds, spare.output, strict=True):
            with contextlib.suppress(OSError):
                while data := os.read(fd, 65536):
                    kept.extend(data)
            del kept[:-_OUTPUT_KEPT]

    def _died(self, spare: Spare, status: int) -> None:
        """A spare ended before it was handed over (or while being closed)."""
        spare.popen.returncode = os.waitstatus_to_exitcode(status)
        self._drain(spare)  # the end of a failed import's traceback, for the warning
        self._release(spare)
        if self.spare is spare:
            self.spare = None
        if self._closed:
            return
        tail = b"".join(spare.output).decode(errors="replace").strip().splitlines()[-5:]
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
        line = go_message(env, cwd)
        try:
            written = os.write(spare.go_fd, line)
        except OSError:  # it died just now (EPIPE), or its pipe is full: not this spare
            written = -1
        if written != len(line):
            # A cut line would make it exit without running anything, as if it had succeeded.
            self._end(spare)
            self.refill_soon()
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
            self._end(spare)

    def _end(self, spare: Spare) -> None:
        """SIGKILL a spare that runs nothing of the program yet, and reap it if it is quick.

        Reaped here when it can be, since the daemon may be about to exit; a spare that takes
        longer (a frozen cgroup) is left to its exit watch.
        """
        signal_group(spare.pid, signal.SIGKILL)
        for _ in range(100):
            try:
                pid, status = os.waitpid(spare.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = spare.pid, 0
            if pid:
                spare.watch.close()
                self._closing_quietly(spare, status)
                return
            time.sleep(0.001)

    def _closing_quietly(self, spare: Spare, status: int) -> None:
        closed, self._closed = self._closed, True
        try:
            self._died(spare, status)
        finally:
            self._closed = closed


def _spare_key(spec: ProgramSpec) -> tuple[object, ...]:
    """Return what a spare depends on: what it runs, imports and runs as (not the env)."""
    return (
        spec.argv(),
        spec.preload,
        spec.cwd,
        spec.user,
        spec.umask,
        spec.pdeathsig,
        spec.redirect_stderr,
    )


class ProgramSpares:
    """The spares of every program with ``preload`` (the driver keeps one of these)."""

    def __init__(self) -> None:
        self._by_program: dict[str, Spares] = {}
        #: Set while the supervisor stops: no spare is started then.
        self.stopping = False

    def __repr__(self) -> str:
        return f"ProgramSpares({sorted(self._by_program)})"

    def get(self, program: str) -> Spares | None:
        """Return the spares of `program`, None if it has none."""
        return self._by_program.get(program)

    def waiting(self) -> set[int]:
        """Return the pids of the spares waiting to be taken."""
        return {s.spare.pid for s in self._by_program.values() if s.spare is not None}

    def for_child(
        self, child: Child, loop: asyncio.AbstractEventLoop, clock: Clock
    ) -> Spares | None:
        """Return the spares of `child`'s program (see `for_instance`)."""
        return self.for_instance(
            child.spec,
            loop,
            clock,
            env=child.env,
            run_as=child.run_as,
            split_stderr=child.err_log is not None,
        )

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

        None for a program without ``preload``, or while the supervisor stops. Instances
        that differ only in their environment share the spare (it gets theirs when taken);
        a command that differs per instance makes the spare follow the latest one.
        """
        if not spec.preload or self.stopping:
            return None
        spares = self._by_program.get(spec.name)
        if spares is not None and _spare_key(spares.spec) != _spare_key(spec):
            self._by_program.pop(spec.name).close()
            spares = None
        if spares is None:
            spares = Spares(spec, loop, clock, env=env, run_as=run_as, split_stderr=split_stderr)
            self._by_program[spec.name] = spares
        return spares

    def drop_idle(self, children: Iterable[Child]) -> None:
        """Close the spares of programs none of whose processes runs or is to run (stopped).

        A restart keeps the spare (it takes it); a stop must leave nothing of the program.
        Starting it again makes a new one.
        """
        busy = {c.spec.name for c in children if c.life.state not in IDLE}
        for name in [n for n in self._by_program if n not in busy]:
            self._by_program.pop(name).close()

    def keep(self, programs: Mapping[str, ProgramSpec] | None = None) -> None:
        """Close the spares of programs not in `programs`, changed, or without ``preload``.

        None closes every spare and starts none until `stopping` is cleared.
        """
        if programs is None:
            self.stopping = True
        for name in list(self._by_program):
            spec = None if programs is None else programs.get(name)
            old = self._by_program[name].spec
            if spec is None or not spec.preload or _spare_key(spec) != _spare_key(old):
                self._by_program.pop(name).close()
