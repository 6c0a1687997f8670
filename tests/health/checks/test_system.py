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
