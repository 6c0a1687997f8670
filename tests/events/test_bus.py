"""The bus: subscribers by pattern, sync and async handlers, failing handlers isolated, threads."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from selfheal import Event, EventBus, Severity
from selfheal.events import HANDLER_FAILED
from selfheal.testing import FakeClock


def test_article_event_constructor_works() -> None:
    event = Event(
        type="system.database.failure",
        source="monitor",
        severity="critical",
        timestamp=1.0,
        data={"host": "db1"},
    )
    assert event.type == "system.database.failure"
    assert event.severity == Severity.CRITICAL
    assert event.data["host"] == "db1"
    assert event.id
    assert event.subject == "database"
    other = Event(type="x", source="s", severity="info", timestamp=1.0, data={})
    assert other.id != event.id
    with pytest.raises(AttributeError):
        event.type = "y"  # type: ignore[misc]


def test_subscribe_publish_unsubscribe() -> None:
    bus = EventBus()
    seen: list[str] = []
    sub = bus.subscribe("breaker.*.opened", lambda e: seen.append(e.type))
    bus.publish(Event("breaker.pay.opened"))
    bus.publish(Event("breaker.pay.closed"))
    sub.unsubscribe()
    sub.unsubscribe()
    bus.publish(Event("breaker.pay.opened"))
    assert seen == ["breaker.pay.opened"]


def test_subscription_as_context_manager() -> None:
    bus = EventBus()
    seen: list[Event] = []
    with bus.subscribe("*", seen.append):
        bus.publish(Event("a"))
    bus.publish(Event("b"))
    assert [e.type for e in seen] == ["a"]


def test_bad_pattern_is_rejected() -> None:
    with pytest.raises(ValueError, match="dotted non-empty segments"):
        EventBus().subscribe("a..b", print)


def test_emit_stamps_with_clock_and_skips_when_nobody_listens() -> None:
    clock = FakeClock(wall_start=500.0)
    bus = EventBus(clock=clock)
    assert bus.emit("x.y.z", "me") is None
    seen: list[Event] = []
    bus.subscribe("x.*", seen.append)
    clock.advance(1)
    event = bus.emit("x.y.z", "me", Severity.WARNING, n=1)
    assert event is not None
    assert seen == [event]
    assert event.timestamp == 501.0
    assert event.data == {"n": 1}


def test_failing_handler_is_isolated_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    seen: list[str] = []
    failures: list[Event] = []

    def broken(_: Event) -> None:
        raise RuntimeError("boom")

    bus.subscribe("job.*", broken)
    bus.subscribe("job.*", lambda e: seen.append(e.type))
    bus.subscribe(HANDLER_FAILED, failures.append)
    with caplog.at_level(logging.ERROR, logger="selfheal.events"):
        bus.publish(Event("job.done"))
    assert seen == ["job.done"]
    assert len(failures) == 1
    assert failures[0].data["error"] == "RuntimeError: boom"
    assert failures[0].data["event_type"] == "job.done"
    assert "boom" in caplog.text


def test_failing_failure_handler_does_not_recurse() -> None:
    bus = EventBus()
    calls = 0

    def broken(_: Event) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("again")

    bus.subscribe("*", broken)
    bus.publish(Event("a"))
    assert calls == 2  # the event itself, then its handler_failed report, and no more


@pytest.mark.anyio
async def test_async_handlers_with_publish_and_apublish() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def handler(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(event.type)

    bus.subscribe("*", handler)
    bus.publish(Event("scheduled"))
    assert seen == []
    await bus.drain()
    assert seen == ["scheduled"]
    await bus.apublish(Event("awaited"))
    assert seen == ["scheduled", "awaited"]


@pytest.mark.anyio
async def test_failing_async_handler_is_reported() -> None:
    bus = EventBus()
    failures: list[Event] = []

    async def broken(_: Event) -> None:
        raise ValueError("nope")

    bus.subscribe("a", broken)
    bus.subscribe(HANDLER_FAILED, failures.append)
    await bus.apublish(Event("a"))
    assert failures[0].data["error"] == "ValueError: nope"


@pytest.mark.anyio
async def test_publish_from_a_thread_reaches_async_handler_on_its_loop() -> None:
    bus = EventBus()
    got = asyncio.Event()
    loops: list[Any] = []

    async def handler(_: Event) -> None:
        loops.append(asyncio.get_running_loop())
        got.set()

    bus.subscribe("t", handler)
    thread = threading.Thread(target=bus.publish, args=(Event("t"),))
    thread.start()
    thread.join()
    await asyncio.wait_for(got.wait(), 5)
    assert loops == [asyncio.get_running_loop()]


def test_async_handler_without_any_loop_still_runs() -> None:
    bus = EventBus()
    seen: list[str] = []

    async def handler(event: Event) -> None:
        seen.append(event.type)

    bus.subscribe("x", handler)
    bus.publish(Event("x"))
    assert seen == ["x"]


def test_concurrent_subscribe_and_publish_from_many_threads() -> None:
    bus = EventBus()
    counts = [0] * 8
    lock = threading.Lock()

    def make(i: int) -> Any:
        def handler(_: Event) -> None:
            with lock:
                counts[i] += 1

        return handler

    subs = [bus.subscribe("load.*", make(i)) for i in range(8)]

    def publisher() -> None:
        for _ in range(500):
            bus.publish(Event("load.tick"))

    def churner() -> None:
        for _ in range(200):
            bus.subscribe("load.*", lambda e: None).unsubscribe()

    threads = [threading.Thread(target=publisher) for _ in range(4)]
    threads.append(threading.Thread(target=churner))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [2000] * 8
    for s in subs:
        s.unsubscribe()
    assert not bus.has_subscribers("load.tick")


def test_event_ids_stay_unique_across_fork() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    parent_id = Event("x").id
    with ctx.Pool(1) as pool:
        child_id = pool.apply(_make_event_id)
    assert child_id.rsplit("-", 1)[0] != parent_id.rsplit("-", 1)[0]


def _make_event_id() -> str:
    return Event("x").id


def test_events_are_frozen_and_replaceable() -> None:
    import dataclasses

    event = Event("a.b", "s", "info", 1.0, {"k": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.source = "t"  # type: ignore[misc]
    copy = dataclasses.replace(event, source="t")
    assert (copy.type, copy.source, copy.id) == ("a.b", "t", event.id)


def test_async_handler_whose_loop_is_closed_is_skipped_by_apublish(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The handler subscribed inside an asyncio.run that has ended; a later apublish from
    # another loop must not raise into the publisher (nor leak a never-awaited coroutine).
    bus = EventBus()
    got: list[Event] = []
    seen_sync: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    async def subscribe() -> None:
        bus.subscribe("a.*", handler)

    asyncio.run(subscribe())
    bus.subscribe("a.*", seen_sync.append)

    async def publish() -> None:
        await bus.apublish(Event("a.b"))

    with caplog.at_level(logging.WARNING, logger="selfheal.events"):
        asyncio.run(publish())
        bus.publish(Event("a.c"))
    assert got == []
    assert [e.type for e in seen_sync] == ["a.b", "a.c"]
    assert caplog.text.count("its loop is closed") == 2


def test_drain_waits_for_its_own_loops_handlers_only() -> None:
    # Handlers subscribed outside any loop run on the publisher's loop; with two loops in two
    # threads, drain() on one used to gather the other's tasks too: ValueError.
    bus = EventBus()
    other_started = threading.Event()
    release = threading.Event()
    seen: list[str] = []

    async def slow(_: Event) -> None:
        other_started.set()
        await asyncio.to_thread(release.wait, 10)

    async def quick(event: Event) -> None:
        seen.append(event.type)

    bus.subscribe("other", slow)
    bus.subscribe("mine", quick)

    async def other_loop() -> None:
        bus.publish(Event("other"))
        await bus.drain()

    other = threading.Thread(target=asyncio.run, args=(other_loop(),))
    other.start()
    try:
        assert other_started.wait(10)

        async def main() -> None:
            bus.publish(Event("mine"))
            await asyncio.wait_for(bus.drain(), 10)

        asyncio.run(main())
        assert seen == ["mine"]
    finally:
        release.set()
        other.join(10)
    assert not other.is_alive()


def test_a_sync_handler_returning_a_coroutine_has_it_run() -> None:
    # `lambda e: notify(e, channel="ops")` over an async notify: the coroutine used to be
    # dropped unawaited (a RuntimeWarning), so the handler silently never ran.
    bus = EventBus()
    seen: list[tuple[str, str]] = []

    async def notify(event: Event, channel: str) -> None:
        await asyncio.sleep(0)
        seen.append((event.type, channel))

    bus.subscribe("x", lambda e: notify(e, channel="ops"))
    bus.publish(Event("x"))
    assert seen == [("x", "ops")]

    async def main() -> None:
        bus.publish(Event("x"))
        await bus.drain()
        await bus.apublish(Event("x"))

    asyncio.run(main())
    assert seen == [("x", "ops")] * 3


def test_a_failing_coroutine_of_a_sync_handler_is_reported() -> None:
    bus = EventBus()
    failures: list[Event] = []
    bus.subscribe(HANDLER_FAILED, failures.append)

    async def broken(event: Event, why: str) -> None:
        raise ValueError(why)

    bus.subscribe("x", lambda e: broken(e, "nope"))
    bus.publish(Event("x"))
    assert [f.data["error"] for f in failures] == ["ValueError: nope"]


def test_an_async_handler_raising_systemexit_is_reported_not_ending_the_loop() -> None:
    bus = EventBus()
    failures: list[Event] = []
    bus.subscribe(HANDLER_FAILED, failures.append)

    async def exits(event: Event) -> None:
        raise SystemExit(5)

    bus.subscribe("x", exits)

    async def main() -> str:
        bus.publish(Event("x"))
        await bus.drain()
        return "still running"

    assert asyncio.run(main()) == "still running"
    assert [f.data["error"] for f in failures] == ["RuntimeError: the handler raised SystemExit: 5"]


def test_an_event_published_without_a_timestamp_is_stamped_by_the_bus() -> None:
    clock = FakeClock()
    bus = EventBus(clock=clock)
    got: list[Event] = []
    bus.subscribe("*", got.append)
    event = Event("app.x.failed", "app", data={"n": 1})
    bus.publish(event)
    asyncio.run(bus.apublish(Event("app.y.failed")))
    stamped = Event("app.z.failed", timestamp=12.5)
    bus.publish(stamped)
    assert [e.timestamp for e in got] == [clock.time(), clock.time(), 12.5]
    assert got[0].id == event.id  # the same event, stamped
    assert got[0].data == {"n": 1}
    assert got[2] is stamped
