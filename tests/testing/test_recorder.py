"""EventRecorder keeps what a bus delivers and waits, within a bound, for what a test expects."""

from __future__ import annotations

import asyncio
import threading

import pytest

from selfheal import EventBus
from selfheal.testing import EventRecorder


def test_records_the_matching_events_in_order_until_closed() -> None:
    bus = EventBus()
    with EventRecorder(bus, "process.*") as rec:
        bus.emit("process.web.started", "sup")
        bus.emit("health.web.failed", "mon")
        bus.emit("process.web.exited", "sup", exit_code=1)
    bus.emit("process.web.started", "sup")  # after close: not recorded
    assert rec.types() == ["process.web.started", "process.web.exited"]
    assert [e.data.get("exit_code") for e in rec.of("process.*.exited")] == [1]


@pytest.mark.anyio
async def test_wait_returns_the_nth_match_once_it_arrives() -> None:
    bus = EventBus()
    rec = EventRecorder(bus)
    bus.emit("recovery.web.started", "r", n=1)
    waiting = asyncio.ensure_future(rec.wait("recovery.*.started", 2))
    await asyncio.sleep(0)
    assert not waiting.done()
    bus.emit("recovery.db.started", "r", n=2)
    event = await waiting
    assert event.data["n"] == 2
    # Already there: no waiting at all.
    assert (await rec.wait("recovery.web.started")).data["n"] == 1


@pytest.mark.anyio
async def test_wait_sees_events_published_from_other_threads() -> None:
    bus = EventBus()
    rec = EventRecorder(bus)
    thread = threading.Thread(target=lambda: bus.emit("journal.dropped", "j", count=3))
    waiting = asyncio.ensure_future(rec.wait("journal.dropped"))
    await asyncio.sleep(0)
    thread.start()
    event = await waiting
    thread.join()
    assert event.data["count"] == 3


@pytest.mark.anyio
async def test_wait_gives_up_within_its_bound_and_says_what_it_saw() -> None:
    bus = EventBus()
    rec = EventRecorder(bus)
    bus.emit("process.web.started", "sup")
    with pytest.raises(TimeoutError, match=r"0 of 1 .*'process.web.exited'.*process.web.started"):
        await rec.wait("process.web.exited", within=0.01)


def test_wait_blocking_is_the_sync_twin() -> None:
    bus = EventBus()
    rec = EventRecorder(bus)
    timer = threading.Timer(0.01, lambda: bus.emit("health.db.passed", "mon"))
    timer.start()
    assert rec.wait_blocking("health.*").type == "health.db.passed"
    timer.join()
    with pytest.raises(TimeoutError, match="1 of 2"):
        rec.wait_blocking("health.*", 2, within=0.01)
