"""The event-loop lag check against a real loop in another thread, blocked and free."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from health_helpers import wait_until
from selfheal.health import CheckError
from selfheal.health.checks import event_loop_lag_check


@pytest.fixture
def other_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.mark.anyio
async def test_event_loop_lag_check_catches_a_blocked_loop(
    other_loop: asyncio.AbstractEventLoop,
) -> None:
    check = event_loop_lag_check(other_loop, max_lag=0.1)
    observed = await check()
    assert observed["measurement"] == "lag"
    assert observed["observedValue"] < 100
    unblock = threading.Event()
    other_loop.call_soon_threadsafe(unblock.wait, 5)  # blocking code on the watched loop
    started = time.monotonic()
    with pytest.raises(CheckError, match="did not run a callback within 100 ms"):
        await check()
    assert time.monotonic() - started < 1
    unblock.set()
    wait_until(lambda: _loop_responds(other_loop))
    assert (await check())["observedValue"] < 100


def _loop_responds(loop: asyncio.AbstractEventLoop) -> bool:
    done = threading.Event()
    loop.call_soon_threadsafe(done.set)
    return done.wait(0.05)


@pytest.mark.anyio
async def test_event_loop_lag_check_on_its_own_loop() -> None:
    assert (await event_loop_lag_check()())["observedUnit"] == "ms"
