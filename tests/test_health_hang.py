"""Stopping the monitoring thread from async code needs no worker of the loop's shared pool."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from selfheal.health import HealthMonitor


@pytest.mark.anyio
async def test_async_stop_of_the_monitoring_thread_needs_no_pool_worker() -> None:
    # stop() joined the monitoring thread through asyncio.to_thread: with the loop's shared
    # pool full of hung user code, stop() never ran and shutdown hung.
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(pool)
    release = threading.Event()
    blocker = loop.run_in_executor(None, release.wait, 10)
    monitor = HealthMonitor()
    monitor.register("ok", lambda: None, interval=10)
    monitor.start_monitoring()
    try:
        await asyncio.wait_for(monitor.stop(), 5)
        assert not monitor.running
    finally:
        release.set()
        await blocker
        pool.shutdown(wait=False)
        monitor.stop_monitoring()
