"""A component's background tasks: held, awaited, and cancelled with their cleanup finished."""

from __future__ import annotations

import asyncio

import pytest

from selfheal._tasks import Tasks

pytestmark = pytest.mark.anyio


async def test_close_waits_for_the_cleanup_of_what_it_cancelled() -> None:
    tasks, cleaned = Tasks(), []

    async def slow_to_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits (a kill, then a reap)
            cleaned.append(True)

    tasks.spawn(slow_to_stop())
    await asyncio.sleep(0)
    assert len(tasks) == 1
    await tasks.close()
    assert cleaned == [True]
    assert len(tasks) == 0


async def test_wait_also_waits_for_tasks_started_meanwhile() -> None:
    tasks, done, gate = Tasks(), [], asyncio.Event()

    async def second() -> None:
        await gate.wait()
        done.append("second")

    async def first() -> None:
        tasks.spawn(second())
        done.append("first")
        gate.set()

    tasks.spawn(first())
    await tasks.wait()
    assert done == ["first", "second"]


async def test_a_failed_task_is_reported_to_on_done_and_does_not_break_wait() -> None:
    tasks, seen = Tasks(), []

    async def boom() -> None:
        raise ValueError("boom")

    tasks.spawn(boom(), on_done=lambda t: seen.append(repr(t.exception())))
    await tasks.wait()
    assert seen == ["ValueError('boom')"]
