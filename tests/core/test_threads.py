"""The one way selfheal awaits a blocking call: a daemon thread of its own."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from selfheal._threads import in_own_thread, start_in_thread


@pytest.mark.anyio
async def test_result_error_and_exit_are_delivered() -> None:
    assert await in_own_thread(pow, 2, 10) == 1024
    with pytest.raises(ZeroDivisionError):
        await in_own_thread(lambda: 1 / 0)
    with pytest.raises(RuntimeError, match=r"bye raised SystemExit: 3"):
        await in_own_thread(sys.exit, 3, name="bye")


@pytest.mark.anyio
async def test_an_abandoned_call_keeps_running_and_blocks_nothing() -> None:
    release = threading.Event()
    task = asyncio.create_task(in_own_thread(release.wait, 10, name="stuck"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert any(t.name == "selfheal-stuck" and t.daemon for t in threading.enumerate())
    # Other calls are not queued behind it, as they would be in a pool of one.
    assert await in_own_thread(lambda: "free") == "free"
    release.set()


def test_the_future_is_running_so_a_cancel_cannot_drop_the_result() -> None:
    gate = threading.Event()
    future = start_in_thread(gate.wait, 10, name="gate")
    assert not future.cancel()
    gate.set()
    assert future.result(timeout=10) is True
