"""Process I/O for the supervisor: spawn, learn of an exit at once, end a process group.

An exit is learned through a pidfd (``os.pidfd_open`` + ``loop.add_reader``): the kernel
makes it readable when the process exits, so the loop sleeps until then, with no timer. Where
pidfds are missing (Linux < 5.3, other Unixes) a thread blocks in ``waitpid`` for that one pid
and wakes the loop, which is what asyncio's ThreadedChildWatcher does.

Processes are told apart through ``/proc``: a recorded child by its start time (its pid may
have been reused), a descendant by the run id in its environment (`find_marked`,
`find_leftovers`), so that nothing but our own processes is ever signalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import logging
import os
import pwd
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfheal._clock import Clock
from selfheal._deadline import timeout_after

__all__ = [
    "PROGRAM_ENV",
    "RUN_ENV",
    "SPAWN_ERRORS",
    "ChildRecord",
    "ExitWatch",
    "RunAs",
    "SwitchUserError",
    "end_processes",
    "find_leftovers",
    "find_marked",
    "proc_session",
    "proc_start_time",
    "resolve_user",
    "shortage",
    "signal_group",
    "spawn",
]

logger = logging.getLogger("selfheal.supervisor")

#: Environment variable every child (and, usually, its children) inherits: the daemon's run id.
RUN_ENV = "SELFHEAL_RUN_ID"
#: Environment variable naming the instance a child (and its descendants) belongs to.
PROGRAM_ENV = "SELFHEAL_PROGRAM"

_PR_SET_PDEATHSIG = 1
_HAS_PIDFD = hasattr(os, "pidfd_open")


class SwitchUserError(PermissionError):
    """A program cannot be run as its ``user``: unknown user or group, or the daemon not root."""


@dataclass(frozen=True, slots=True)
class RunAs:
    """The user a program runs as: ids for the kernel, name and home for its environment."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    name: str
    home: str

    def problem(self) -> str | None:
        """Return why this process cannot switch to the user, or None if it can."""
        euid = os.geteuid()
        if euid == 0 or (self.uid == euid and self.gid == os.getegid()):
            return None
        try:
            me = pwd.getpwuid(euid).pw_name
        except KeyError:
            me = str(euid)
        return (
            f"cannot run as user {self.name!r}: selfheal runs as {me!r} (uid {euid}), and only "
            "root can switch users; start selfheal as root, or remove 'user'"
        )


def resolve_user(user: str) -> RunAs:
    """Return who ``"name"`` or ``"name:group"`` (names or numeric ids) is.

    Without a group, the user's primary group; the supplementary groups are the user's.

    Raises:
        SwitchUserError: For an unknown user or group (the message names it).
    """
    name, _, group = user.partition(":")
    try:
        pw = pwd.getpwuid(int(name)) if name.isdigit() else pwd.getpwnam(name)
    except KeyError:
        raise SwitchUserError(f"no such user {name!r} on this machine") from None
    gid = pw.pw_gid
    if group:
        try:
            gid = grp.getgrgid(int(group)).gr_gid if group.isdigit() else grp.getgrnam(group).gr_gid
        except KeyError:
            raise SwitchUserError(f"no such group {group!r} on this machine") from None
    groups = tuple(os.getgrouplist(pw.pw_name, gid))
    return RunAs(pw.pw_uid, gid, groups, pw.pw_name, pw.pw_dir)


#: What `Child.launch` raises when the command cannot be run (a failed start, not a crash).
SPAWN_ERRORS = (OSError, ValueError, subprocess.SubprocessError)

# What a spawn found missing, by errno: the daemon's shortage (retried), not a bad command.
_SHORTAGES = {
    errno.EMFILE: "file descriptors (the daemon's limit, RLIMIT_NOFILE)",
    errno.ENFILE: "file descriptors (the system's limit)",
    errno.EAGAIN: "processes or threads (RLIMIT_NPROC, pid_max)",
    errno.ENOMEM: "memory",
    errno.ENOBUFS: "buffer space",
}


def shortage(exc: BaseException) -> str | None:
    """Return what a failed spawn lacked (``"memory"``...), or None if the command is at fault."""
    if isinstance(exc, MemoryError):
        return "memory"
    if isinstance(exc, OSError) and exc.errno is not None:
        return _SHORTAGES.get(exc.errno)
    return None


def spawn(
    argv: list[str],
    *,
    cwd: str | None,
    env: Mapping[str, str],
    stdout_fd: int,
    stderr_fd: int | None = None,
    stdin_fd: int | None = None,
    pdeathsig: bool = False,
    run_as: RunAs | None = None,
    umask: int | None = None,
) -> subprocess.Popen[bytes]:
    """Start `argv` as the leader of a new session (so its whole group can be signalled).

    Args:
        argv: Program and arguments (never a shell unless the argv is one).
        cwd: Working directory.
        env: The complete environment.
        stdout_fd: Where stdout goes (the write end of the output pipe).
        stderr_fd: Where stderr goes; None: with stdout.
        stdin_fd: Where stdin comes from; None: /dev/null.
        pdeathsig: Ask the kernel to SIGTERM the child if this thread dies. It needs a
            ``preexec_fn``, which makes the spawn fork (about 2 ms) instead of vfork.
        run_as: Switch to this user (and its groups) before exec; needs root.
        umask: The child's umask (None: inherited).

    Returns:
        The Popen; its exit is to be reaped by an `ExitWatch`, never by ``Popen.wait``.

    Raises:
        OSError: If the program cannot be executed (`SwitchUserError`: the user cannot be
            switched to, with the reason).
    """
    ids: dict[str, Any] = {}
    if run_as is not None:
        problem = run_as.problem()
        if problem is not None:
            raise SwitchUserError(problem)
        ids = {"user": run_as.uid, "group": run_as.gid, "extra_groups": list(run_as.groups)}
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL if stdin_fd is None else stdin_fd,
        stdout=stdout_fd,
        stderr=subprocess.STDOUT if stderr_fd is None else stderr_fd,
        start_new_session=True,
        close_fds=True,
        preexec_fn=_pdeathsig_preexec(os.getpid()) if pdeathsig else None,  # noqa: PLW1509
        umask=-1 if umask is None else umask,
        **ids,
    )


def _pdeathsig_preexec(parent: int) -> Callable[[], None]:
    import ctypes  # only when asked for: it costs memory every daemon would carry

    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        # The parent may have died between fork and prctl: then nobody would signal us.
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class ExitWatch:
    """Calls `on_exit(wait_status)` on the loop as soon as the process `pid` exits.

    Just before reaping, the callback `before_reap()` runs while the exited process is still a
    zombie, so its pid (and process group id) cannot have been reused: the moment to
    SIGKILL what is left of its group.

    Args:
        loop: The event loop to call back on.
        pid: A child of this process.
        before_reap: Called while the zombie still holds the pid.
        on_exit: Called with the raw wait status once reaped.

    Raises:
        OSError: With EAGAIN, if neither a pidfd nor a thread can be had to watch it.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        pid: int,
        before_reap: Callable[[], None],
        on_exit: Callable[[int], None],
    ) -> None:
        self._loop = loop
        self.pid = pid
        self._before_reap = before_reap
        self._on_exit = on_exit
        self._pidfd = -1
        self._done = False
        if _HAS_PIDFD:
            try:
                self._pidfd = os.pidfd_open(pid)
            except OSError:
                self._pidfd = -1
        if self._pidfd >= 0:
            loop.add_reader(self._pidfd, self._readable)
            return
        thread = threading.Thread(target=self._wait_thread, name=f"waitpid-{pid}", daemon=True)
        try:
            thread.start()
        except RuntimeError:
            # No descriptor for a pidfd and no thread either: as fork says it (EAGAIN).
            raise OSError(errno.EAGAIN, f"cannot start a thread to wait for pid {pid}") from None

    def _readable(self) -> None:
        self._loop.remove_reader(self._pidfd)
        self._reap()

    def _reap(self) -> None:
        if self._done:
            return
        self._before_reap()
        try:
            _, status = os.waitpid(self.pid, os.WNOHANG if self._pidfd >= 0 else 0)
        except ChildProcessError:
            status = 0
        self._finish(status)

    def _wait_thread(self) -> None:
        # Wait without reaping (WNOWAIT) so the zombie keeps its pid until `_reap` on the loop.
        with contextlib.suppress(ChildProcessError):
            os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._reap)

    def _finish(self, status: int) -> None:
        self._done = True
        self.close()
        self._on_exit(status)

    def hand_over(self, before_reap: Callable[[], None], on_exit: Callable[[int], None]) -> None:
        """Call these instead from now on (a spare process became an instance)."""
        self._before_reap = before_reap
        self._on_exit = on_exit

    def close(self) -> None:
        """Stop watching (the process is no longer ours to reap); safe to call twice."""
        self._done = True  # a waiting thread that wakes later must not reap it again
        if self._pidfd >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1


def signal_group(pgid: int, sig: int) -> bool:
    """Send `sig` to process group `pgid`; return False if the group is gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        logger.warning("no permission to signal process group %d", pgid)
        return False
    return True


def proc_start_time(pid: int) -> int | None:
    """Return the start time of `pid` in clock ticks since boot (None if it is gone)."""
    stat = _read_stat(pid)
    return None if stat is None else int(stat[19])


def _read_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def proc_session(pid: int) -> int | None:
    """Return the session id of `pid` (None if it is gone)."""
    stat = _read_stat(pid)
    return None if stat is None else int(stat[3])


def _environ(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return []


def _env_value(env: list[bytes], name: str) -> str | None:
    prefix = f"{name}=".encode()
    for item in env:
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def find_marked(run_id: str, instance: str | None = None) -> list[int]:
    """Return the processes whose environment carries `run_id` (and `instance`, if given).

    Every child gets both in its environment and its descendants inherit them, so this finds
    grandchildren that left the child's process group or session (``setsid``, double-fork
    daemons), unless they replaced their environment when they exec'ed.

    Args:
        run_id: A daemon's run id (``SELFHEAL_RUN_ID``).
        instance: Only the processes of this instance (``SELFHEAL_PROGRAM``).

    Returns:
        Their pids (never this process's).
    """
    marker = f"{RUN_ENV}={run_id}".encode()
    program = f"{PROGRAM_ENV}={instance}".encode() if instance is not None else None
    found = []
    for pid in _all_pids():
        env = _environ(pid)
        if marker in env and (program is None or program in env):
            found.append(pid)
    return found


@dataclass(frozen=True, slots=True)
class ChildRecord:
    """A child as written to the state file."""

    name: str
    pid: int
    start_time: int | None
    run_id: str

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "pid": self.pid,
            "start_time": self.start_time,
            "run_id": self.run_id,
        }


def find_leftovers(records: list[ChildRecord]) -> dict[str, list[int]]:
    """Find the processes a dead daemon's children left behind, proven to be ours.

    A process counts when it is a recorded child whose start time matches (its pid was not
    reused), or when it carries the dead run's id in its environment (a grandchild, also one
    that left the child's session).

    Args:
        records: From the dead daemon's state file.

    Returns:
        Program name -> pids to end.
    """
    found: dict[str, list[int]] = {}
    by_session = {r.pid: r for r in records}
    run_ids = {r.run_id for r in records}
    taken: set[int] = set()
    for rec in records:
        if rec.start_time is not None and proc_start_time(rec.pid) == rec.start_time:
            found.setdefault(rec.name, []).append(rec.pid)
            taken.add(rec.pid)
    for pid in _all_pids():
        if pid in taken:
            continue
        env = _environ(pid)
        if _env_value(env, RUN_ENV) not in run_ids:
            continue
        sid = proc_session(pid)
        leader = by_session.get(sid) if sid is not None else None
        name = leader.name if leader is not None else _env_value(env, PROGRAM_ENV) or "?"
        found.setdefault(name, []).append(pid)
    return found


def _all_pids() -> Iterator[int]:
    me = os.getpid()
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and int(entry.name) != me:
                yield int(entry.name)


async def end_processes(pids: list[int], grace: float, clock: Clock) -> None:
    """SIGTERM `pids`, wait up to `grace` seconds for them to go, then SIGKILL the rest.

    They are not our children (their parent died), so each is held by a pidfd where possible:
    signals then go through it (``pidfd_send_signal``), which can never hit a reused pid.

    Args:
        pids: Processes to end.
        grace: Seconds between SIGTERM and SIGKILL.
        clock: The clock the grace period is measured on.
    """
    loop = asyncio.get_running_loop()
    fds: dict[int, int] = {}
    waits: list[asyncio.Future[None]] = []
    for pid in pids:
        if _HAS_PIDFD:
            with contextlib.suppress(OSError):
                fds[pid] = os.pidfd_open(pid)
        _send(pid, fds.get(pid, -1), signal.SIGTERM)
        if pid in fds:
            fut: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fds[pid], _resolve_once, loop, fds[pid], fut)
            waits.append(fut)
    try:
        if waits:
            with contextlib.suppress(TimeoutError):
                async with timeout_after(grace, clock, name="leftover grace"):
                    await asyncio.gather(*waits)
        elif pids:
            await clock.asleep(min(grace, 0.2))
        for pid in pids:
            _send(pid, fds.get(pid, -1), signal.SIGKILL)
    finally:
        for fd in fds.values():
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
            os.close(fd)


def _send(pid: int, pidfd: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pidfd >= 0:
            signal.pidfd_send_signal(pidfd, sig)
        else:
            os.kill(pid, sig)


def _resolve_once(loop: asyncio.AbstractEventLoop, fd: int, fut: asyncio.Future[None]) -> None:
    loop.remove_reader(fd)
    if not fut.done():
        fut.set_result(None)
