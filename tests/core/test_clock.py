"""The clock: the system one, and FakeClock, whose time moves only when a test says so."""

from __future__ import annotations

import asyncio
import threading

import pytest

from selfheal import SYSTEM_CLOCK, Clock
from selfheal.testing import FakeClock


def test_system_clock_is_a_clock() -> None:
    assert isinstance(SYSTEM_CLOCK, Clock)
    assert isinstance(FakeClock(), Clock)
    a = SYSTEM_CLOCK.monotonic()
    assert SYSTEM_CLOCK.monotonic() >= a


def test_fake_clock_moves_only_when_told() -> None:
    clock = FakeClock(start=10.0, wall_start=1000.0)
    assert clock.monotonic() == 10.0
    assert clock.time() == 1000.0
    clock.advance(2.5)
    assert clock.monotonic() == 12.5
    assert clock.time() == 1002.5
    with pytest.raises(ValueError, match="seconds must be >= 0"):
        clock.advance(-1)


def test_sync_sleep_advances_and_is_recorded() -> None:
    clock = FakeClock()
    clock.sleep(1.5)
    clock.sleep(0.5)
    assert clock.monotonic() == 2.0
    assert clock.sleeps == [1.5, 0.5]


def test_sync_sleep_can_block_until_another_thread_advances() -> None:
    clock = FakeClock(sync_sleep_advances=False)
    woke = threading.Event()

    def sleeper() -> None:
        clock.sleep(5)
        woke.set()

    t = threading.Thread(target=sleeper)
    t.start()
    clock.advance(4)
    assert not woke.wait(0.05)
    clock.advance(1)
    assert woke.wait(5)
    t.join()


@pytest.mark.anyio
async def test_async_sleep_wakes_when_time_is_advanced() -> None:
    clock = FakeClock()
    order: list[str] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.asleep(seconds)
        order.append(name)

    tasks = [asyncio.create_task(nap("long", 10)), asyncio.create_task(nap("short", 1))]
    await clock.wait_for_sleepers(2)
    clock.advance(1)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert order == ["short"]
    clock.advance(9)
    await asyncio.gather(*tasks)
    assert order == ["short", "long"]
    assert clock.pending_sleepers == 0


@pytest.mark.anyio
async def test_cancelled_async_sleep_is_forgotten() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.asleep(5))
    await clock.wait_for_sleepers(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending_sleepers == 0


@pytest.mark.anyio
async def test_autojump_runs_timers_in_deadline_order() -> None:
    clock = FakeClock(autojump=True)
    seen: list[tuple[str, float]] = []

    async def nap(name: str, seconds: float) -> None:
        await clock.asleep(seconds)
        seen.append((name, clock.monotonic()))

    await asyncio.gather(nap("c", 30), nap("a", 1), nap("b", 2))
    assert seen == [("a", 1.0), ("b", 2.0), ("c", 30.0)]


@pytest.mark.anyio
async def test_wait_for_sleepers_gives_up() -> None:
    with pytest.raises(TimeoutError, match="0 of 1 sleepers"):
        await FakeClock().wait_for_sleepers(1, max_turns=3)


@pytest.mark.anyio
async def test_advance_from_another_thread_wakes_async_sleeper() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.asleep(3))
    await clock.wait_for_sleepers(1)
    t = threading.Thread(target=clock.advance, args=(3,))
    t.start()
    t.join()
    await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("bad", [float("nan"), -1e-9])
def test_advance_refuses_nan_and_negative(bad: float) -> None:
    clock = FakeClock(start=5.0)
    with pytest.raises(ValueError, match=r"FakeClock\.advance: seconds must be >= 0"):
        clock.advance(bad)
    assert clock.monotonic() == 5.0
