from __future__ import annotations

import asyncio
import builtins
import pickle

import pytest

import selfheal
from selfheal import Event, EventBus, Timeout
from selfheal.testing import FakeClock

# Timeouts of a microsecond expire on the event loop's next turn: the system-clock tests below
# exercise the real loop timer without waiting for it.
TINY = 1e-6


async def _forever() -> None:
    await asyncio.Event().wait()


def test_timeout_error_is_the_builtin_too() -> None:
    assert issubclass(selfheal.CallTimeoutError, builtins.TimeoutError)
    err = selfheal.CallTimeoutError("db", 1.5)
    assert err.seconds == 1.5
    assert "'db' timed out after 1.5 s" in str(err)


@pytest.mark.parametrize("bad", [0, -1, True, "1", float("nan")])
def test_bad_seconds_is_a_clear_error(bad: object) -> None:
    with pytest.raises(ValueError, match="Timeout: seconds must be a number > 0"):
        Timeout(bad)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_success_returns_and_leaves_no_timer_behind() -> None:
    policy = Timeout(10)

    @policy
    async def answer(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    assert answer.__name__ == "answer"
    for i in range(100):
        assert await answer(i) == i * 2
    queue = policy._timers[asyncio.get_running_loop()]
    assert len(queue.queue) == 0
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_expiry_on_the_loop_timer_raises_timeout_error() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("timeout.*.expired", seen.append)
    policy = Timeout(TINY, bus=bus, name="slow")
    with pytest.raises(selfheal.CallTimeoutError) as info:
        await policy.acall(_forever)
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    assert [e.type for e in seen] == ["timeout.slow.expired"]
    assert seen[0].data["interrupted"] is True
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_only_the_slow_calls_of_many_expire() -> None:
    policy = Timeout(1e-3)

    async def work(i: int) -> int:
        # The quick calls finish without suspending, so no timer can beat them even on a
        # loaded machine; they finish behind slow calls in the queue, and must not be harmed.
        if i % 2:
            await _forever()
        return i

    results = await asyncio.gather(
        *(policy.acall(work, i) for i in range(40)), return_exceptions=True
    )
    assert [r for r in results if isinstance(r, int)] == list(range(0, 40, 2))
    assert all(isinstance(r, selfheal.CallTimeoutError) for r in results[1::2])
    assert len(policy._timers[asyncio.get_running_loop()].queue) == 0


@pytest.mark.anyio
async def test_a_cancel_from_outside_stays_a_cancel() -> None:
    policy = Timeout(10)
    started = asyncio.Event()

    async def wait() -> None:
        started.set()
        await _forever()

    task = asyncio.create_task(policy.acall(wait))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


@pytest.mark.anyio
async def test_a_cancel_at_the_same_time_as_expiry_wins() -> None:
    clock = FakeClock()
    policy = Timeout(1, clock=clock)

    async def nap() -> None:
        await clock.asleep(10)

    task = asyncio.create_task(policy.acall(nap))
    await clock.wait_for_sleepers(2)  # the call and the timeout's watcher
    task.cancel()
    clock.advance(1)
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.anyio
async def test_a_swallowed_cancel_returns_the_result_and_is_uncancelled() -> None:
    async def stubborn() -> str:
        try:
            await _forever()
        except asyncio.CancelledError:
            return "finished anyway"
        return "unreachable"

    assert await Timeout(TINY).acall(stubborn) == "finished anyway"
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]


@pytest.mark.anyio
async def test_fake_clock_drives_the_timeout_and_remaining() -> None:
    clock = FakeClock(autojump=True)
    bus = EventBus(clock=clock)
    seen: list[Event] = []
    bus.subscribe("timeout.*", seen.append)
    left: list[float | None] = []

    async def slow() -> None:
        left.append(selfheal.remaining())
        await clock.asleep(5)

    with pytest.raises(TimeoutError):
        await Timeout(2, clock=clock, bus=bus).acall(slow)
    assert left == [2.0]
    assert clock.monotonic() == 2.0
    assert [e.type for e in seen] == ["timeout.slow.expired"]

    async def quick() -> str:
        await clock.asleep(1)
        return "ok"

    assert await Timeout(2, clock=clock).acall(quick) == "ok"
    assert clock.pending_sleepers == 0


@pytest.mark.anyio
async def test_nested_deadlines_take_the_tighter_one() -> None:
    clock = FakeClock(autojump=True)
    left: list[float | None] = []

    async def inner() -> None:
        left.append(selfheal.remaining())
        await clock.asleep(60)

    inner_policy = Timeout(10, clock=clock)
    outer_policy = Timeout(3, clock=clock)
    with pytest.raises(TimeoutError):
        await outer_policy.acall(inner_policy.awrap(inner))
    assert left == [3.0]
    assert clock.monotonic() == 3.0


@pytest.mark.anyio
async def test_nested_on_the_loop_timer_inner_fires_at_the_outer_deadline() -> None:
    deadlines: list[float | None] = []

    async def inner() -> None:
        deadlines.append(selfheal.current_deadline())
        await _forever()

    outer = Timeout(TINY)
    with pytest.raises(selfheal.CallTimeoutError):
        await outer.acall(Timeout(10).awrap(inner))
    loop = asyncio.get_running_loop()
    assert deadlines[0] is not None
    assert deadlines[0] <= loop.time()
    assert selfheal.current_deadline() is None


def test_sync_timeout_is_cooperative(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    seen: list[Event] = []
    bus.subscribe("timeout.*.expired", seen.append)
    left: list[float | None] = []

    def overrun() -> str:
        left.append(selfheal.remaining())
        clock.advance(3)
        left.append(selfheal.remaining())
        return "late but done"

    policy = Timeout(2, clock=clock, bus=bus)
    assert policy(overrun)() == "late but done"
    assert left == [2.0, 0.0]
    assert seen[0].type == "timeout.overrun.expired"
    assert seen[0].data == {"seconds": 2.0, "interrupted": False}
    assert policy.call(lambda: "fast") == "fast"
    assert len(seen) == 1
    assert selfheal.remaining() is None


@pytest.mark.anyio
async def test_an_enclosing_deadline_on_another_clock_does_not_cut_a_loop_timeout() -> None:
    # A retry on a FakeClock (fake time 0, deadline 10) around a Timeout on the system clock:
    # the two deadlines are on different time lines and must not be compared, or the loop
    # timeout (now ~ 1e5 s of monotonic time) sees "10" as long past and fires at once.
    fake = FakeClock()
    left: list[float | None] = []

    async def call() -> str:
        left.append(selfheal.remaining())
        await asyncio.sleep(0)
        return "done"

    protected = selfheal.retry(on=ValueError, deadline=10, clock=fake)(Timeout(5)(call))
    assert await protected() == "done"
    assert left[0] is not None
    assert 4.0 < left[0] <= 5.0


def test_timeout_error_pickles() -> None:
    copy = pickle.loads(pickle.dumps(selfheal.CallTimeoutError("db", 1.5)))
    assert (copy.name, copy.seconds, str(copy)) == ("db", 1.5, "'db' timed out after 1.5 s")


def test_dotted_name_is_refused() -> None:
    with pytest.raises(ValueError, match=r"Timeout: name must be .* without '\.' or '\*'"):
        Timeout(1, name="db.query")


@pytest.mark.anyio
async def test_cut_short_by_an_enclosing_deadline_reports_the_time_it_had() -> None:
    # A per-attempt Timeout(10) inside a retry whose deadline is 3 s away fires at 3 s; its
    # error and event used to say "timed out after 10 s".
    clock = FakeClock(autojump=True)
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("timeout.*.expired", seen.append)

    protected = selfheal.retry(on=ValueError, deadline=3, clock=clock)(
        Timeout(10, clock=clock, bus=bus, name="attempt")(_forever)
    )
    with pytest.raises(selfheal.CallTimeoutError) as info:
        await protected()
    assert info.value.seconds == 3.0
    assert "after 3 s" in str(info.value)
    assert seen[0].data["seconds"] == 3.0


@pytest.mark.anyio
async def test_cut_short_on_the_loop_timer_reports_the_time_it_had() -> None:
    protected = selfheal.retry(on=ValueError, deadline=TINY)(Timeout(10)(_forever))
    with pytest.raises(selfheal.CallTimeoutError) as info:
        await protected()
    assert 0.0 <= info.value.seconds <= TINY


def test_sync_overrun_of_an_enclosing_deadline_reports_the_time_it_had(clock: FakeClock) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("timeout.*.expired", seen.append)

    def slow() -> str:
        clock.advance(5)
        return "late"

    protected = selfheal.retry(on=ValueError, deadline=3, clock=clock)(
        Timeout(10, clock=clock, bus=bus)(slow)
    )
    assert protected() == "late"
    assert [(e.data["seconds"], e.data["interrupted"]) for e in seen] == [(3.0, False)]
