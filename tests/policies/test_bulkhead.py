from __future__ import annotations

import asyncio
import pickle
import signal
import threading
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import selfheal
from selfheal import Bulkhead, BulkheadFullError, Event, EventBus
from selfheal.testing import FakeClock


def _wait_until(predicate: Callable[[], bool], limit: float = 10.0) -> None:
    # Waits for other threads to reach a state, bounded; never a timer being tested.
    end = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < end, "condition not reached in time"
        time.sleep(0.001)


class Peak:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0,), "max_concurrent must be an int >= 1"),
        ((2, -1), "max_waiting must be an int >= 0"),
        ((2, 1, -0.5), "wait_timeout must be seconds >= 0 or None"),
    ],
)
def test_bad_limits_are_clear_errors(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Bulkhead(*args)  # type: ignore[arg-type]


def test_64_threads_never_exceed_the_limit() -> None:
    bulkhead = Bulkhead(4, max_waiting=60)
    peak = Peak()
    gate = threading.Event()

    @bulkhead
    def work(i: int) -> int:
        with peak:
            assert gate.wait(10)
        return i

    results: list[int] = []
    threads = [threading.Thread(target=lambda i=i: results.append(work(i))) for i in range(64)]
    for t in threads:
        t.start()
    _wait_until(lambda: bulkhead.active == 4 and bulkhead.waiting == 60)
    assert peak.peak == 4
    gate.set()
    for t in threads:
        t.join(10)
    assert sorted(results) == list(range(64))
    assert peak.peak == 4
    assert bulkhead.active == 0
    assert bulkhead.waiting == 0


def test_the_rest_is_rejected_at_once_with_an_event() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("bulkhead.*.rejected", seen.append)
    bulkhead = Bulkhead(1, bus=bus, name="payments")
    gate = threading.Event()
    inside = threading.Event()

    def hold() -> None:
        inside.set()
        gate.wait(10)

    holder = threading.Thread(target=bulkhead.wrap(hold))
    holder.start()
    assert inside.wait(10)
    with pytest.raises(BulkheadFullError) as info:
        bulkhead.call(lambda: None)
    assert info.value.reason == "full"
    assert "bulkhead 'payments' is full" in str(info.value)
    assert [e.type for e in seen] == ["bulkhead.payments.rejected"]
    gate.set()
    holder.join(10)
    assert bulkhead.call(lambda: "free again") == "free again"


def test_a_failing_call_gives_its_slot_back() -> None:
    bulkhead = Bulkhead(1)

    def boom() -> None:
        raise RuntimeError("boom")

    for _ in range(3):
        with pytest.raises(RuntimeError):
            bulkhead.call(boom)
    assert bulkhead.active == 0


def test_sync_wait_timeout_on_the_fake_clock() -> None:
    clock = FakeClock()
    bulkhead = Bulkhead(1, max_waiting=1, wait_timeout=5, clock=clock)
    gate = threading.Event()
    inside = threading.Event()

    def hold() -> None:
        inside.set()
        gate.wait(10)

    holder = threading.Thread(target=bulkhead.wrap(hold))
    holder.start()
    assert inside.wait(10)
    errors: list[BaseException] = []

    def wait_in_line() -> None:
        try:
            bulkhead.call(lambda: None)
        except BulkheadFullError as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait_in_line)
    waiter.start()
    _wait_until(lambda: bulkhead.waiting == 1)
    clock.advance(5)
    waiter.join(10)
    assert [e.reason for e in errors] == ["wait_timeout"]  # type: ignore[attr-defined]
    assert bulkhead.waiting == 0
    gate.set()
    holder.join(10)
    assert bulkhead.active == 0


def test_sync_waiter_gets_the_slot_when_it_frees() -> None:
    bulkhead = Bulkhead(1, max_waiting=1, wait_timeout=30)
    gate = threading.Event()
    inside = threading.Event()

    def hold() -> None:
        inside.set()
        gate.wait(10)

    holder = threading.Thread(target=bulkhead.wrap(hold))
    holder.start()
    assert inside.wait(10)
    got: list[str] = []
    waiter = threading.Thread(target=lambda: got.append(bulkhead.call(lambda: "mine")))
    waiter.start()
    _wait_until(lambda: bulkhead.waiting == 1)
    gate.set()
    waiter.join(10)
    holder.join(10)
    assert got == ["mine"]


@pytest.mark.anyio
async def test_64_tasks_never_exceed_the_limit() -> None:
    bulkhead = Bulkhead(4, max_waiting=60)
    peak = Peak()
    gate = asyncio.Event()

    @bulkhead
    async def work(i: int) -> int:
        with peak:
            await gate.wait()
        return i

    tasks = [asyncio.create_task(work(i)) for i in range(64)]
    for _ in range(100):
        await asyncio.sleep(0)
    assert bulkhead.active == 4
    assert bulkhead.waiting == 60
    with pytest.raises(BulkheadFullError):
        await work(99)
    gate.set()
    assert sorted(await asyncio.gather(*tasks)) == list(range(64))
    assert peak.peak == 4
    assert bulkhead.active == 0
    assert bulkhead.waiting == 0


@pytest.mark.anyio
async def test_async_wait_timeout_and_cancellation_free_the_place() -> None:
    clock = FakeClock(autojump=True)
    bulkhead = Bulkhead(1, max_waiting=2, wait_timeout=3, clock=clock)
    gate = asyncio.Event()

    async def hold() -> None:
        await gate.wait()

    holder = asyncio.create_task(bulkhead.acall(hold))
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(bulkhead.acall(hold))
    await asyncio.sleep(0)
    assert bulkhead.waiting == 1
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert bulkhead.waiting == 0
    with pytest.raises(BulkheadFullError) as info:
        await bulkhead.acall(hold)
    assert info.value.reason == "wait_timeout"
    assert clock.monotonic() == 3
    gate.set()
    await holder
    assert bulkhead.active == 0


@pytest.mark.anyio
async def test_async_waiter_is_handed_the_slot() -> None:
    bulkhead = Bulkhead(1, max_waiting=1)
    gate = asyncio.Event()
    order: list[str] = []

    async def first() -> None:
        await gate.wait()
        order.append("first")

    async def second() -> None:
        order.append("second")

    a = asyncio.create_task(bulkhead.acall(first))
    await asyncio.sleep(0)
    b = asyncio.create_task(bulkhead.acall(second))
    await asyncio.sleep(0)
    assert bulkhead.waiting == 1
    gate.set()
    await asyncio.gather(a, b)
    assert order == ["first", "second"]
    assert bulkhead.active == 0


def test_repr_and_export() -> None:
    assert (
        repr(Bulkhead(2, 3, 1.5)) == "Bulkhead(max_concurrent=2, max_waiting=3, wait_timeout=1.5)"
    )
    assert selfheal.Bulkhead is Bulkhead


@settings(max_examples=25, deadline=None)
@given(
    limit=st.integers(1, 8),
    waiting=st.integers(0, 64),
    yields=st.lists(st.integers(0, 5), min_size=64, max_size=64),
)
def test_property_tasks_peak_never_exceeds_the_limit(
    limit: int, waiting: int, yields: list[int]
) -> None:
    bulkhead = Bulkhead(limit, max_waiting=waiting)
    peak = Peak()

    @bulkhead
    async def work(turns: int) -> str:
        with peak:
            for _ in range(turns):
                await asyncio.sleep(0)
        return "done"

    async def main() -> list[object]:
        return await asyncio.gather(*(work(n) for n in yields), return_exceptions=True)

    results = asyncio.run(main())
    assert peak.peak <= limit
    assert all(r == "done" or isinstance(r, BulkheadFullError) for r in results)
    assert results.count("done") >= min(64, limit + waiting)
    assert bulkhead.active == 0
    assert bulkhead.waiting == 0


@settings(max_examples=10, deadline=None)
@given(limit=st.integers(1, 8), waiting=st.integers(0, 64))
def test_property_threads_peak_never_exceeds_the_limit(limit: int, waiting: int) -> None:
    bulkhead = Bulkhead(limit, max_waiting=waiting)
    peak = Peak()
    start = threading.Barrier(64)
    outcomes: list[str] = []

    @bulkhead
    def work() -> None:
        with peak:
            for _ in range(50):
                time.sleep(0)  # yields the GIL so that threads overlap inside

    def run() -> None:
        start.wait()
        try:
            work()
            outcomes.append("done")
        except BulkheadFullError:
            outcomes.append("rejected")

    threads = [threading.Thread(target=run) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(outcomes) == 64
    assert peak.peak <= limit
    assert outcomes.count("done") >= min(64, limit + waiting)
    assert bulkhead.active == 0
    assert bulkhead.waiting == 0


def test_as_a_sync_context_manager() -> None:
    bulkhead = Bulkhead(1, name="db")
    with bulkhead:
        assert bulkhead.active == 1
        with pytest.raises(BulkheadFullError, match="'db' is full"), bulkhead:
            pass
    assert bulkhead.active == 0


@pytest.mark.anyio
async def test_as_an_async_context_manager() -> None:
    bulkhead = Bulkhead(1, max_waiting=1)
    order: list[str] = []

    async def second() -> None:
        async with bulkhead:
            order.append("second")

    async with bulkhead:
        task = asyncio.create_task(second())
        await asyncio.sleep(0)
        assert bulkhead.waiting == 1
        order.append("first")
    await task
    assert order == ["first", "second"]
    assert bulkhead.active == 0


@pytest.mark.parametrize("wait_timeout", [None, 30.0])
def test_ctrl_c_while_waiting_for_a_slot_gives_the_place_back(wait_timeout: float | None) -> None:
    # A thread blocked waiting for a slot is interrupted (Ctrl-C in the main thread). It must
    # leave the queue: otherwise the next release hands the slot to nobody and it is lost.
    assert threading.current_thread() is threading.main_thread()
    bulkhead = Bulkhead(1, max_waiting=1, wait_timeout=wait_timeout)
    main = threading.get_ident()

    def interrupt() -> None:
        _wait_until(lambda: bulkhead.waiting == 1)
        signal.pthread_kill(main, signal.SIGINT)

    bulkhead.__enter__()
    sender = threading.Thread(target=interrupt)
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        bulkhead.call(lambda: None)
    sender.join(10)
    assert bulkhead.waiting == 0
    bulkhead.__exit__(None, None, None)
    assert bulkhead.active == 0
    assert bulkhead.call(lambda: "slot free again") == "slot free again"


def test_ctrl_c_while_polling_another_clock_gives_the_place_back() -> None:
    class InterruptingClock(FakeClock):
        armed = False

        def monotonic(self) -> float:
            if self.armed:
                raise KeyboardInterrupt
            return super().monotonic()

    clock = InterruptingClock()
    bulkhead = Bulkhead(1, max_waiting=1, wait_timeout=5, clock=clock)
    bulkhead.__enter__()

    def arm() -> None:
        _wait_until(lambda: bulkhead.waiting == 1)
        clock.armed = True

    armer = threading.Thread(target=arm)
    armer.start()
    with pytest.raises(KeyboardInterrupt):
        bulkhead.call(lambda: None)
    armer.join(10)
    clock.armed = False
    assert bulkhead.waiting == 0
    bulkhead.__exit__(None, None, None)
    assert bulkhead.active == 0


def test_bulkhead_full_error_pickles() -> None:
    err = BulkheadFullError("db", 2, 1, "wait_timeout")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.name, copy.max_concurrent, copy.max_waiting, copy.reason) == (
        "db",
        2,
        1,
        "wait_timeout",
    )
    assert str(copy) == str(err)


def test_bad_name_and_boolean_wait_timeout_are_refused() -> None:
    with pytest.raises(ValueError, match=r"Bulkhead: name must be .* without '\.' or '\*'"):
        Bulkhead(1, name="db.pool")
    with pytest.raises(ValueError, match="wait_timeout must be seconds >= 0 or None, got True"):
        Bulkhead(1, 1, True)
