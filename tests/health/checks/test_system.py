"""Host checks on the real machine: disk space, memory, processes (zombies included), commands."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from health_helpers import wait_until
from selfheal.health import CheckError, HealthMonitor, HealthStatus
from selfheal.health.checks import command_check, disk_space_check, memory_check, process_check


@pytest.mark.anyio
async def test_disk_space_check(tmp_path: Path) -> None:
    observed = await disk_space_check(tmp_path, min_free_ratio=0)()
    assert observed["measurement"] == "utilization"
    assert observed["observedUnit"] == "percent"
    assert 0 <= observed["observedValue"] <= 100
    assert observed["free_bytes"] <= observed["total_bytes"]
    with pytest.raises(CheckError, match="bytes free, less than"):
        await disk_space_check(tmp_path, min_free_ratio=0, min_free_bytes=2**62)()
    with pytest.raises(ValueError, match="min_free_ratio"):
        disk_space_check(min_free_ratio=2)


@pytest.mark.anyio
async def test_memory_check() -> None:
    observed = await memory_check(max_percent=100)()
    assert observed["rss_bytes"] > 0
    with pytest.raises(CheckError, match="resident memory"):
        await memory_check(max_percent=100, max_rss_bytes=1)()
    with pytest.raises(ValueError, match="max_percent"):
        memory_check(max_percent=0)


@pytest.fixture
def exited_child() -> Iterator[subprocess.Popen[bytes]]:
    """A child that has exited but is not reaped yet: a zombie."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(lambda: _state(child.pid) in ("Z", None))
    yield child
    child.wait()


@pytest.mark.anyio
async def test_process_check(tmp_path: Path, exited_child: subprocess.Popen[bytes]) -> None:
    assert (await process_check(os.getpid())())["pid"] == os.getpid()
    child = exited_child
    with pytest.raises(CheckError, match=f"process {child.pid} has exited"):
        await process_check(child.pid)()  # a zombie is not alive
    child.wait()  # reaped: now it is gone
    with pytest.raises(CheckError, match="does not exist"):
        await process_check(lambda: child.pid)()
    with pytest.raises(CheckError, match="not running"):
        await process_check(lambda: None)()
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    assert await process_check(pidfile=pidfile)()
    pidfile.write_text("garbage")
    with pytest.raises(CheckError, match="does not hold a process id"):
        await process_check(pidfile=pidfile)()
    with pytest.raises(ValueError, match="exactly one of pid or pidfile"):
        process_check()


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return None


@pytest.mark.anyio
async def test_command_check() -> None:
    assert await command_check(["true"])() == {"exit_code": 0}
    with pytest.raises(CheckError, match="exited with 3: password=\\*\\*\\*"):
        await command_check(["sh", "-c", "echo password=hunter2; exit 3"])()


@pytest.mark.anyio
async def test_command_check_is_killed_at_the_timeout() -> None:
    monitor = HealthMonitor()
    monitor.register("slow", command_check(["sleep", "30"]), timeout=0.2)
    started = time.monotonic()
    assert await monitor.check_now("slow") == HealthStatus.FAIL
    assert time.monotonic() - started < 5


@pytest.mark.anyio
async def test_a_command_cancelled_twice_is_still_reaped_before_the_check_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A supervisor stopping a program cancels its probe, then cancels it again when it closes
    # its tasks: the second cancel must not cut the wait for the killed command short (under
    # load the command was still alive when stop returned).
    import asyncio

    reaped: list[int] = []
    original = asyncio.subprocess.Process.wait

    async def slow_wait(proc: asyncio.subprocess.Process) -> int:
        await asyncio.sleep(0.1)  # room for the second cancel to arrive mid-wait
        code = await original(proc)
        reaped.append(proc.pid)
        return code

    monkeypatch.setattr(asyncio.subprocess.Process, "wait", slow_wait)
    pidfile = tmp_path / "pid"
    script = f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)"
    task = asyncio.ensure_future(command_check([sys.executable, "-c", script])())
    for _ in range(500):
        if pidfile.exists() and pidfile.read_text().isdigit():
            break
        await asyncio.sleep(0.01)
    pid = int(pidfile.read_text())
    task.cancel()
    await asyncio.sleep(0.02)  # the check is in its cleanup: killed, waiting to reap
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reaped == [pid]
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # gone, zombie included
