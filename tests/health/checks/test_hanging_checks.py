"""A check that hangs for good: one thread at most, and the monitor keeps reporting it failing."""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from health_helpers import until
from selfheal.health import HealthMonitor, HealthStatus
from selfheal.health.checks import disk_space_check
from selfheal.testing import FakeClock


@pytest.fixture
def dead_mount(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Make statvfs hang, as it does on a dead NFS mount, until the test releases it."""
    release = threading.Event()
    real = shutil.disk_usage

    def hang(path: Any) -> Any:
        release.wait(30)
        return real(path)

    monkeypatch.setattr(shutil, "disk_usage", hang)
    yield release
    release.set()


def _threads(prefix: str) -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith(prefix))


@pytest.mark.anyio
async def test_a_permanently_hanging_builtin_check_keeps_one_thread(
    dead_mount: threading.Event,
) -> None:
    # The built-in checks are async and do their blocking call in a thread; the caller
    # (the monitor, a supervisor probe) cancels the async part at its deadline, which let
    # the next run start one more thread: a thread per interval, for as long as the mount
    # stayed dead.
    check = disk_space_check("/")
    await until(lambda: _threads("selfheal-disk_space_check") == 0)  # earlier tests' calls
    before = 0
    for _ in range(5):
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(check(), 0.02)
    assert _threads("selfheal-disk_space_check") - before == 1
    dead_mount.set()
    # Once the call returns, the next run gets its own fresh answer.
    await until(lambda: _threads("selfheal-disk_space_check") == before)
    observed = await asyncio.wait_for(check(), 5)
    assert observed["observedUnit"] == "percent"


@pytest.mark.anyio
async def test_the_monitor_reports_a_permanently_hanging_builtin_check_as_failing(
    dead_mount: threading.Event,
) -> None:
    clock = FakeClock()
    monitor = HealthMonitor(clock=clock)
    monitor.register("disk", disk_space_check("/"), interval=1, timeout=0.5, jitter=0)
    await until(lambda: _threads("selfheal-disk_space_check") == 0)  # earlier tests' calls
    before = 0
    await monitor.start()
    try:
        for _ in range(4):
            await until(lambda: _threads("selfheal-disk_space_check") > before)
            await clock.wait_for_sleepers(1)
            clock.advance(0.5)
            await clock.wait_for_sleepers(1)
            clock.advance(0.5)
            assert monitor.status("disk") == HealthStatus.FAIL
        assert _threads("selfheal-disk_space_check") - before == 1
    finally:
        dead_mount.set()
        await monitor.stop()
