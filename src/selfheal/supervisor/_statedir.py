"""The state directory: one daemon at a time, its children on record, what a dead one left.

``<state_dir>/supervisor.lock`` is held (``flock``) while a supervisor runs and holds its pid;
``<state_dir>/children.json`` lists the running children, so that the next daemon can end
what a crashed one left behind, after checking each process really is one of ours.

The directory is made 0700 and checked (`selfheal._safepath`): a daemon running as root must
not follow another user's symlinks when it writes its lock or children file.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from pathlib import Path

from selfheal._clock import Clock
from selfheal._safepath import UnsafePathError, open_private, safe_dir
from selfheal.errors import StateDirLockedError
from selfheal.supervisor._proc import ChildRecord, end_processes, find_leftovers

__all__ = ["StateDir", "StateFile"]

logger = logging.getLogger("selfheal.supervisor")


class StateFile:
    """The children of the running daemon, in ``<state_dir>/children.json`` (a line each).

    Rewritten in place at every spawn and exit, so after a crash it lists the children the
    dead daemon had. In place (``pwrite`` + ``ftruncate`` on a kept descriptor, microseconds)
    rather than write-and-rename, because ext4 flushes data on a replacing rename, which costs
    milliseconds on the restart path. A torn tail can only add stale lines, and every record
    is verified (start time, run id) before anything is signalled.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = -1

    def open(self) -> None:
        """Open (or make) the file, never through a symlink; a no-op when open.

        Raises:
            UnsafePathError: If it is a symlink or another user's file.
        """
        if self._fd < 0:
            self._fd = open_private(self.path, os.O_RDWR | os.O_CREAT)

    def read(self) -> list[ChildRecord]:
        """Return the recorded children ([] if the file is empty or unreadable)."""
        try:
            self.open()
            size = os.fstat(self._fd).st_size
            text = os.pread(self._fd, size, 0).decode(errors="replace")
        except UnsafePathError:
            raise
        except OSError:
            return []
        out = []
        for line in text.splitlines():
            try:
                c = json.loads(line)
                out.append(
                    ChildRecord(
                        str(c["name"]), int(c["pid"]), c.get("start_time"), str(c["run_id"])
                    )
                )
            except (ValueError, KeyError, TypeError):
                continue
        return out

    def write(self, children: list[ChildRecord]) -> None:
        """Replace the file's content with `children`."""
        self.open()
        data = "".join(json.dumps(c.to_dict()) + "\n" for c in children).encode()
        os.pwrite(self._fd, data, 0)
        os.ftruncate(self._fd, len(data))

    def close(self) -> None:
        """Close the kept descriptor; safe to call twice."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class StateDir:
    """A supervisor's state directory: its lock, its children file, the leftovers it ends.

    Args:
        path: The directory (made 0700 if missing, and checked, when locked).
        clock: Bounds the grace period given to leftovers.
        leftover_grace: Seconds between SIGTERM and SIGKILL for what a dead daemon left.
        log_dir: The programs' output directory, made (0750) and checked with it.
    """

    def __init__(
        self, path: Path, clock: Clock, leftover_grace: float, *, log_dir: Path | None = None
    ) -> None:
        self.path = path
        self.log_dir = log_dir
        self.children = StateFile(path / "children.json")
        self._clock = clock
        self._grace = leftover_grace
        self._lock_fd = -1

    def __repr__(self) -> str:
        return f"StateDir({str(self.path)!r})"

    def lock(self) -> None:
        """Make the directory (0700) and take its lock, writing this process's pid in it.

        Raises:
            StateDirLockedError: If another live supervisor holds it.
            UnsafePathError: If another user could subvert the directory or the files in it
                (theirs, writable by them, a symlink).
        """
        safe_dir(self.path, 0o700)
        if self.log_dir is not None:
            safe_dir(self.log_dir, 0o750)
        fd = open_private(self.path / "supervisor.lock", os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            pid = int(other) if other.isdigit() else None
            raise StateDirLockedError(str(self.path), pid) from None
        try:
            self.children.open()
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock_fd = fd

    def unlock(self) -> None:
        """Release the lock; safe to call twice."""
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def record(self, children: list[ChildRecord]) -> None:
        """Write the running children down (a failure is logged: the restart path goes on)."""
        try:
            self.children.write(children)
        except OSError as exc:
            logger.warning("cannot write %s: %s", self.children.path, exc)

    async def end_leftovers(self) -> dict[str, list[int]]:
        """End what the daemon that last used this directory left running, then forget it.

        Returns:
            Instance name -> the pids ended (empty when nothing was left).
        """
        records = self.children.read()
        if not records:
            return {}
        found = find_leftovers(records)
        if found:
            pids = [p for ps in found.values() for p in ps]
            what = "; ".join(f"{n} (pid {', '.join(map(str, ps))})" for n, ps in found.items())
            logger.warning("ending %d process(es) left by a previous run: %s", len(pids), what)
            await end_processes(pids, self._grace, self._clock)
        self.children.write([])
        return found

    def close(self) -> None:
        """Close the children file and release the lock; safe to call twice."""
        self.children.close()
        self.unlock()
