"""Draining before shutdown: readiness fails for a while, then SIGTERM reaches the old handler."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from health_helpers import CountingCheck, wait_until
from selfheal.health import HealthMonitor, HealthStatus
from selfheal.testing import FakeClock

PASS, FAIL = HealthStatus.PASS, HealthStatus.FAIL


@pytest.mark.anyio
async def test_draining_fails_readiness_not_liveness(
    clock: FakeClock, monitor: HealthMonitor
) -> None:
    monitor.register("loop", CountingCheck(), kind="liveness")
    await monitor.check_now("loop")
    assert monitor.probe("readyz").status == PASS
    monitor.start_draining(10)
    assert monitor.draining
    assert not monitor.drained
    assert monitor.probe("readyz").status == FAIL
    assert monitor.probe("readyz").draining
    assert monitor.probe("livez").status == PASS
    assert not monitor.is_healthy()
    waiter = asyncio.ensure_future(monitor.wait_drained())
    await clock.wait_for_sleepers(1)
    clock.advance(10)
    await waiter
    assert monitor.drained


def test_sigterm_drains_then_delivers_the_signal_to_the_previous_handler() -> None:
    clock = FakeClock()  # its sleep() advances time at once: the drain is instant here
    monitor = HealthMonitor(clock=clock)
    delivered: list[int] = []
    draining_when_delivered: list[bool] = []

    def previous(signum: int, frame: object) -> None:
        delivered.append(signum)
        draining_when_delivered.append(monitor.draining)

    old = signal.signal(signal.SIGTERM, previous)
    try:
        restore = monitor.install_signal_handlers(30)
        assert signal.getsignal(signal.SIGTERM) is not previous
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: delivered == [signal.SIGTERM])
        assert draining_when_delivered == [True]
        assert clock.sleeps == [30]
        assert signal.getsignal(signal.SIGTERM) is previous
        restore()
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, old)


def test_signal_handlers_need_the_main_thread(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    errors: list[BaseException] = []

    def install() -> None:
        try:
            monitor.install_signal_handlers(1)
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join(5)
    assert len(errors) == 1
    assert "main thread" in str(errors[0])
