"""A program's output: appended to files that rotate by size, its last lines kept in memory.

stdout and stderr go to one file (``NAME.log``), or to two (``NAME.log``, ``NAME.stderr.log``)
when stderr is not redirected; either way the last lines of both, in the order they came,
are kept in one `Tail` for the ``.exited`` events and ``selfheal start``'s reports.
"""

from __future__ import annotations

import contextlib
import os
from collections import deque
from pathlib import Path

from selfheal._safepath import open_private, safe_dir
from selfheal.supervisor._spec import LogSpec

__all__ = ["OutputLog", "Tail", "log_path", "stderr_log_path"]


def log_path(log_dir: str | os.PathLike[str], instance: str) -> Path:
    """Return the file an instance's output goes to (``web:1`` -> ``web_1.log``)."""
    return Path(log_dir) / f"{_file_name(instance)}.log"


def stderr_log_path(log_dir: str | os.PathLike[str], instance: str) -> Path:
    """Return the file an instance's stderr goes to when it is not redirected to stdout's."""
    return Path(log_dir) / f"{_file_name(instance)}.stderr.log"


def _file_name(instance: str) -> str:
    return instance.replace(":", "_").replace("/", "_")


class Tail:
    """The last lines of a process's output (stdout and stderr together), oldest first."""

    def __init__(self, lines: int) -> None:
        self.size = lines
        self.lines: deque[str] = deque(maxlen=max(1, lines))

    def __repr__(self) -> str:
        return f"Tail({len(self.lines)} of {self.size} lines)"


class OutputLog:
    """Writes output to ``NAME.log``, rotating to ``NAME.log.1`` .. ``.N`` past `max_bytes`.

    Args:
        path: The log file.
        spec: Size, number of rotated files, lines kept for `tail`.
        tail: Where complete lines are kept; shared by a process's stdout and stderr logs.
    """

    def __init__(self, path: Path, spec: LogSpec, tail: Tail | None = None) -> None:
        self.path = path
        self.spec = spec
        self.shared = tail if tail is not None else Tail(spec.tail_lines)
        self._tail = self.shared.lines
        self._partial = b""
        self._fd = -1
        self._size = 0
        #: Bytes of output that never reached the file (it could not be written).
        self.lost = 0
        self._open()

    def _open(self) -> None:
        # Removed under us: made again. Checked each time, and never through a symlink: a
        # daemon running as root must not append a program's output to another user's target.
        safe_dir(self.path.parent, 0o750)
        self._fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._size = os.fstat(self._fd).st_size

    def write(self, data: bytes) -> None:
        """Append `data`, rotating first if it would pass the size limit.

        Raises:
            OSError: If the file cannot be written (the next write tries again); what was
                not written is counted in `lost`.
        """
        if not data:
            return
        # The last lines are kept even when the file cannot take them (a full disk): they
        # are what `status` and the .exited events show of a failing program.
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()[-4096:]
        for line in lines[-(self._tail.maxlen or 1) :]:
            self._tail.append(line.decode(errors="replace").rstrip("\r"))
        written = 0
        try:
            if self._fd < 0:
                self._open()
            if self._size and self._size + len(data) > self.spec.max_bytes:
                self.rotate()
            while written < len(data):  # a write cut short by a full disk raises next time
                written += os.write(self._fd, data[written:])
        finally:
            self._size += written
            self.lost += len(data) - written

    def rotate(self) -> None:
        """Move ``NAME.log`` to ``NAME.log.1`` (and so on) and start a new file."""
        # Never keep a closed descriptor: its number would be reused by the next open (a
        # socket, the journal) and the program's output written there.
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        backups = self.spec.backups
        # Files may have been moved or removed by someone else: rotate what is there.
        with contextlib.suppress(FileNotFoundError):
            if backups <= 0:
                self.path.unlink()
            else:
                for i in range(backups - 1, 0, -1):
                    src = self.path.with_name(f"{self.path.name}.{i}")
                    with contextlib.suppress(FileNotFoundError):
                        src.replace(self.path.with_name(f"{self.path.name}.{i + 1}"))
                self.path.replace(self.path.with_name(f"{self.path.name}.1"))
        self._open()

    def tail(self, *others: OutputLog) -> list[str]:
        """Return the last lines written (up to ``spec.tail_lines``), oldest first.

        Args:
            others: Logs sharing this one's `Tail`, whose unfinished lines count too.
        """
        if self.spec.tail_lines == 0:
            return []
        lines = list(self._tail)
        lines += [log._partial.decode(errors="replace") for log in (self, *others) if log._partial]
        return lines[-self.spec.tail_lines :]

    def clear_tail(self) -> None:
        """Forget the kept lines (a new run starts)."""
        self._tail.clear()
        self._partial = b""

    def close(self) -> None:
        """Close the file; safe to call twice."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
