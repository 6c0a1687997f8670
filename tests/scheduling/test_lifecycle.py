"""The scheduler as a Component, on the caller's loop or a thread of its own; bad jobs refused."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading

import pytest

from health_helpers import CountingCheck, wait_until
from selfheal.interfaces import Component
from selfheal.scheduling import JobOptions, Scheduler
from selfheal.testing import FakeClock


@pytest.mark.anyio
async def test_start_and_stop_as_a_component(scheduler: Scheduler) -> None:
    assert isinstance(scheduler, Component)
    scheduler.add("db", CountingCheck(), JobOptions.of(interval=10))
    await scheduler.start()
    await scheduler.start()  # again on the same loop: nothing happens
    assert scheduler.running
    assert scheduler.loop is asyncio.get_running_loop()
    await scheduler.stop()
    await scheduler.stop()
    assert not scheduler.running


def test_a_thread_of_its_own_for_sync_programs(clock: FakeClock) -> None:
    scheduler = Scheduler(clock=clock, name="probe")
    threads: list[str] = []

    async def job() -> None:
        threads.append(threading.current_thread().name)

    scheduler.add("db", job, JobOptions.of(interval=10, jitter=0))
    scheduler.start_in_thread()
    try:
        scheduler.start_in_thread()  # a second call does nothing
        wait_until(lambda: scheduler.job("db").next_run is not None)
        clock.advance(10)  # from this thread: wakes the scheduler's loop
        wait_until(lambda: len(threads) == 2)
        assert threads == ["selfheal-probe"] * 2
    finally:
        scheduler.stop_thread()
    assert not scheduler.running
    scheduler.stop_thread()


@pytest.mark.anyio
async def test_run_now_from_another_loop_runs_on_the_schedulers_loop(clock: FakeClock) -> None:
    scheduler = Scheduler(clock=clock, name="probe")
    threads: list[str] = []

    async def job() -> None:
        threads.append(threading.current_thread().name)

    scheduler.add("db", job, JobOptions.of(interval=60))
    scheduler.start_in_thread()
    try:
        with pytest.raises(RuntimeError, match="already running on another event loop"):
            await scheduler.start()
        await scheduler.run_now("db")
        assert set(threads) == {"selfheal-probe"}
        await scheduler.stop()  # from another loop: stops the thread
        assert not scheduler.running
    finally:
        scheduler.stop_thread()


@pytest.mark.parametrize(
    ("name", "fn", "message"),
    [
        ("", lambda: None, "name must be a non-empty string"),
        ("db", 3, "fn must be a callable, got 3"),
    ],
)
def test_bad_jobs_are_refused(scheduler: Scheduler, name: str, fn: object, message: str) -> None:
    with pytest.raises(ValueError, match=f"^Scheduler.add: {message}"):
        scheduler.add(name, fn, JobOptions.of())  # type: ignore[arg-type]


def test_a_name_is_scheduled_once(scheduler: Scheduler) -> None:
    scheduler.add("db", CountingCheck(), JobOptions.of())
    with pytest.raises(ValueError, match="a job named 'db' is already scheduled"):
        scheduler.add("db", CountingCheck(), JobOptions.of())


def test_the_scheduler_needs_only_the_standard_library() -> None:
    code = (
        "import sys, selfheal.scheduling\n"
        "third = {'starlette', 'httpx', 'redis', 'psycopg', 'prometheus_client', 'psutil'}\n"
        "loaded = third & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
        "higher = ('selfheal.health', 'selfheal.events', 'selfheal.web')\n"
        "assert not any(m.startswith(higher) for m in sys.modules)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
