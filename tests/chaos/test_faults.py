"""In-process faults on named injection points, alone and inside sync and async pipelines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

import selfheal
from selfheal import Fallback, Pipeline, Timeout, retry
from selfheal.chaos import (
    FaultPoint,
    InjectedFaultError,
    Injector,
    Latency,
    RaiseError,
    WrongResult,
    ainject,
    inject,
    kill_switch,
    release_kill_switch,
)
from selfheal.errors import CallTimeoutError, SelfhealError
from selfheal.events import Event, EventBus
from selfheal.testing import FakeClock


@pytest.fixture
def injector(clock: FakeClock) -> Iterator[Injector]:
    with Injector(clock=clock, seed=7) as injector:
        yield injector
    release_kill_switch()


def test_no_active_fault_changes_nothing() -> None:
    @FaultPoint("quiet.point")
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add.__name__ == "add"
    assert inject("quiet.point", 41) == 41
    assert inject("never.declared") is None


def test_latency_waits_on_the_injector_clock(injector: Injector, clock: FakeClock) -> None:
    calls: list[float] = []

    @FaultPoint("db.query")
    def query() -> str:
        calls.append(clock.monotonic())
        return "rows"

    injector.latency("db.query", 2.5)
    assert query() == "rows"
    assert clock.sleeps == [2.5]
    assert calls == [2.5]  # the call ran after the latency


def test_error_replaces_the_call(injector: Injector) -> None:
    calls: list[int] = []

    @FaultPoint("payments.charge")
    def charge(amount: int) -> int:
        calls.append(amount)
        return amount

    handle = injector.error("payments.charge")
    with pytest.raises(InjectedFaultError, match=r"payments\.charge") as info:
        charge(10)
    assert isinstance(info.value, SelfhealError)
    assert info.value.point == "payments.charge"
    assert calls == []
    handle.remove()
    assert charge(10) == 10
    injector.error("payments.charge", ConnectionError)
    with pytest.raises(ConnectionError, match=r"fault injected at 'payments\.charge'"):
        charge(1)
    injector.clear()
    injector.error("payments.charge", lambda point: KeyError(f"no {point}"))
    with pytest.raises(KeyError, match="no payments"):
        charge(1)


def test_wrong_result_answers_something_else(injector: Injector) -> None:
    @FaultPoint("users.get")
    def get_user() -> dict[str, int]:
        return {"id": 1}

    injector.wrong_result("users.get", {"id": 2})
    assert get_user() == {"id": 2}
    injector.clear()
    injector.add("users.get", WrongResult(func=lambda r: {**r, "id": -r["id"]}))
    assert get_user() == {"id": -1}
    assert inject("users.get", {"id": 5}) == {"id": -5}


def test_probability_is_seeded_and_repeatable(clock: FakeClock) -> None:
    def run(seed: int) -> list[bool]:
        with Injector(clock=clock, seed=seed) as injector:
            injector.error("flaky", probability=0.3)
            fired = []
            for _ in range(200):
                try:
                    inject("flaky")
                except InjectedFaultError:
                    fired.append(True)
                else:
                    fired.append(False)
            return fired

    first, again, other = run(1), run(1), run(2)
    assert first == again
    assert first != other
    assert 40 < sum(first) < 80  # about 30 % of 200


def test_times_and_duration_end_a_fault(injector: Injector, clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    events: list[Event] = []
    bus.subscribe("chaos.*", events.append)
    injector.bus = bus
    handle = injector.error("once", times=2)
    for _ in range(2):
        with pytest.raises(InjectedFaultError):
            inject("once")
    inject("once")  # exhausted
    assert not handle.active
    assert handle.fired == 2
    limited = injector.wrong_result("limited", "wrong", duration=60)
    assert inject("limited", "right") == "wrong"
    clock.advance(60)
    assert not limited.active
    assert inject("limited", "right") == "right"
    assert [(e.type, e.data.get("reason")) for e in events] == [
        ("chaos.once.injected", None),
        ("chaos.once.rolled_back", "exhausted"),
        ("chaos.limited.injected", None),
        ("chaos.limited.rolled_back", "expired"),
    ]


def test_kill_switch_removes_every_fault(injector: Injector) -> None:
    handles = [injector.error("a"), injector.latency("b", 1), injector.wrong_result("c", 0)]
    kill_switch("stop it")
    assert not any(h.active for h in handles)
    assert {h.removed for h in handles} == {"kill switch: stop it"}
    inject("a")


def test_leaving_the_injector_removes_its_faults(clock: FakeClock) -> None:
    with Injector(clock=clock) as injector:
        injector.error("scoped")
        with pytest.raises(InjectedFaultError):
            inject("scoped")
    inject("scoped")
    assert injector.faults == []


def test_bad_arguments_name_the_field(injector: Injector) -> None:
    with pytest.raises(ValueError, match="probability"):
        injector.error("x", probability=1.5)
    with pytest.raises(ValueError, match="duration"):
        injector.error("x", duration=0)
    with pytest.raises(ValueError, match="times"):
        injector.error("x", times=0)
    with pytest.raises(ValueError, match="injection point"):
        FaultPoint("bad..name")
    with pytest.raises(ValueError, match=r"Latency\.seconds"):
        Latency(-1)
    with pytest.raises(TypeError, match=r"RaiseError\.error"):
        RaiseError(42)  # type: ignore[arg-type]


def test_sync_pipeline_retries_through_injected_errors(injector: Injector) -> None:
    calls: list[int] = []

    @Pipeline(retry(on=InjectedFaultError, attempts=3, backoff=0.0), FaultPoint("inventory"))
    def reserve(item: int) -> str:
        calls.append(item)
        return f"reserved {item}"

    injector.error("inventory", times=2)
    assert reserve(7) == "reserved 7"  # two injected failures, then the real call
    assert calls == [7]
    injector.error("inventory")
    with pytest.raises(selfheal.RetryError):
        reserve(8)
    assert calls == [7]


@pytest.mark.anyio
async def test_async_pipeline_times_out_on_injected_latency(
    injector: Injector, clock: FakeClock
) -> None:
    @Pipeline(
        Fallback(value="cached", on=CallTimeoutError),
        Timeout(1.0, clock=clock),
        FaultPoint("search"),
    )
    async def search(term: str) -> str:
        return f"results for {term}"

    assert await search("x") == "results for x"
    injector.latency("search", 5.0)
    task = asyncio.ensure_future(search("y"))
    await clock.wait_for_sleepers(2)  # the latency and the timeout
    clock.advance(1.0)
    assert await task == "cached"
    injector.clear()
    injector.wrong_result("search", "nothing")
    assert await search("z") == "nothing"


@pytest.mark.anyio
async def test_ainject_waits_with_asleep(injector: Injector, clock: FakeClock) -> None:
    injector.latency("cache.get", 3.0, jitter=1.0)
    task = asyncio.ensure_future(ainject("cache.get", "value"))
    await clock.wait_for_sleepers()
    clock.advance(4.0)
    assert await task == "value"
    assert 3.0 <= clock.sleeps[0] <= 4.0
