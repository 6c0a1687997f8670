"""Checks of the host: free disk space, memory use, a process alive, a command that succeeds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from selfheal._redact import redact
from selfheal._tasks import finish
from selfheal.errors import CheckError
from selfheal.health._results import Check
from selfheal.health.checks._worker import Worker

__all__ = ["command_check", "disk_space_check", "memory_check", "process_check"]


def disk_space_check(
    path: str | os.PathLike[str] = "/",
    *,
    min_free_ratio: float = 0.05,
    min_free_bytes: int | None = None,
) -> Check:
    """Return a check that passes while the file system holding `path` has enough free space.

    Args:
        path: Any path on the file system to check.
        min_free_ratio: Smallest free fraction of the disk (0 to 1) that passes.
        min_free_bytes: If given, smallest number of free bytes that passes.
    """
    if not 0 <= min_free_ratio < 1:
        raise ValueError(
            f"disk_space_check: min_free_ratio must be from 0 to 1, got {min_free_ratio!r}"
        )
    target = os.fspath(path)
    worker = Worker("disk_space_check")

    async def check() -> Mapping[str, Any]:
        # statvfs blocks on a hung network mount: in a thread, abandoned at the timeout.
        usage = await worker.run(lambda: shutil.disk_usage(target))
        free_ratio = usage.free / usage.total if usage.total else 0.0
        observed = {
            "componentType": "system",
            "measurement": "utilization",
            "observedValue": round(100 * (1 - free_ratio), 2),
            "observedUnit": "percent",
            "free_bytes": usage.free,
            "total_bytes": usage.total,
        }
        if free_ratio < min_free_ratio:
            raise CheckError(
                f"{target}: {free_ratio:.1%} free, less than {min_free_ratio:.1%} "
                f"({usage.free} of {usage.total} bytes)"
            )
        if min_free_bytes is not None and usage.free < min_free_bytes:
            raise CheckError(f"{target}: {usage.free} bytes free, less than {min_free_bytes}")
        return observed

    check.__qualname__ = f"disk_space_check({target})"
    return check


def memory_check(*, max_percent: float = 90.0, max_rss_bytes: int | None = None) -> Check:
    """Return a check that passes while memory use is below the limits.

    Requires psutil (the ``server`` extra).

    Args:
        max_percent: Highest system memory use (percent of total, as ``psutil`` counts it)
            that passes.
        max_rss_bytes: If given, highest resident set size of this process that passes (a
            leak shows here first).
    """
    import psutil

    if not 0 < max_percent <= 100:
        raise ValueError(f"memory_check: max_percent must be from 0 to 100, got {max_percent!r}")

    async def check() -> Mapping[str, Any]:
        used = psutil.virtual_memory().percent
        rss = psutil.Process().memory_info().rss
        if used > max_percent:
            raise CheckError(f"system memory {used:.1f}% used, more than {max_percent:g}%")
        if max_rss_bytes is not None and rss > max_rss_bytes:
            raise CheckError(f"resident memory {rss} bytes, more than {max_rss_bytes}")
        return {
            "componentType": "system",
            "measurement": "utilization",
            "observedValue": used,
            "observedUnit": "percent",
            "rss_bytes": rss,
        }

    check.__qualname__ = "memory_check"
    return check


def process_check(
    pid: int | Callable[[], int | None] | None = None,
    *,
    pidfile: str | os.PathLike[str] | None = None,
) -> Check:
    """Return a check that passes while a process is alive (and not a zombie).

    Args:
        pid: The process id, or a function returning it (None: not running), e.g. a
            supervisor's view of its child.
        pidfile: Instead of `pid`, a file holding the process id.
    """
    if (pid is None) == (pidfile is None):
        raise ValueError("process_check: give exactly one of pid or pidfile")

    def current_pid() -> int:
        if pidfile is not None:
            try:
                text = Path(pidfile).read_text().strip()
            except OSError as exc:
                raise CheckError(f"cannot read pid file {pidfile}: {exc.strerror}") from None
            if not text.isdigit():
                raise CheckError(f"pid file {pidfile} does not hold a process id: {text[:40]!r}")
            return int(text)
        value = pid() if callable(pid) else pid
        if value is None:
            raise CheckError("no process id: the process is not running")
        return value

    async def check() -> Mapping[str, Any]:
        number = current_pid()
        status = _process_status(number)
        if status is None:
            raise CheckError(f"process {number} does not exist")
        if status in ("zombie", "dead"):
            raise CheckError(f"process {number} has exited ({status}, not yet reaped)")
        return {"componentType": "system", "pid": number, "process_status": status}

    check.__qualname__ = f"process_check({pid if pidfile is None else pidfile})"
    return check


def _process_status(pid: int) -> str | None:
    """Return the process state ('running', 'sleeping', 'zombie'...), None if there is none."""
    try:
        import psutil
    except ImportError:  # pragma: no cover - psutil is in the server extra
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "running"  # exists, owned by someone else
        return "running"
    try:
        return str(psutil.Process(pid).status())
    except psutil.NoSuchProcess:
        return None
    except psutil.AccessDenied:
        return "running"


def command_check(argv: Sequence[str], *, cwd: str | None = None) -> Check:
    """Return a check that passes when the command `argv` exits with status 0.

    The command runs as an argv list, never through a shell; if the caller's deadline
    cancels the check, the command is killed.

    Args:
        argv: Program and arguments.
        cwd: Working directory.
    """
    args = list(argv)
    if not args:
        raise ValueError("command_check: argv must name a program")

    async def check() -> Mapping[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            *args,
            cwd=cwd,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await proc.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await finish(proc.wait())  # also through a second cancel
            raise
        if proc.returncode != 0:
            tail = redact(out.decode(errors="replace").strip()[-200:])
            raise CheckError(f"{args[0]} exited with {proc.returncode}: {tail}")
        return {"exit_code": 0}

    check.__qualname__ = f"command_check({args[0]})"
    return check
