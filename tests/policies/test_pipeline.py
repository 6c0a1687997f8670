from __future__ import annotations

import asyncio
import gc
import inspect
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import pytest

import selfheal
from selfheal import Bulkhead, Event, EventBus, Pipeline, Policy, Timeout
from selfheal.testing import FakeClock

P = ParamSpec("P")
R = TypeVar("R")


class Recorder(Policy):
    """A third-party policy: the pipeline may rely only on the Policy base API."""

    def __init__(self, label: str, log: list[str]) -> None:
        self.label = label
        self.log = log

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
            self.log.append(f">{self.label}")
            try:
                return fn(*args, **kwargs)
            finally:
                self.log.append(f"<{self.label}")

        return recorded

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        async def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
            self.log.append(f">{self.label}")
            try:
                return await fn(*args, **kwargs)
            finally:
                self.log.append(f"<{self.label}")

        return recorded


def test_the_given_order_is_kept_outermost_first() -> None:
    log: list[str] = []
    pipe = selfheal.pipeline(Recorder("a", log), Recorder("b", log), Recorder("c", log))

    @pipe
    def call(x: int) -> int:
        log.append("call")
        return x

    assert call(1) == 1
    assert log == [">a", ">b", ">c", "call", "<c", "<b", "<a"]
    assert call.__name__ == "call"
    assert len(pipe) == 3


@pytest.mark.anyio
async def test_async_order_and_nesting() -> None:
    log: list[str] = []
    inner = Pipeline(Recorder("b", log), Recorder("c", log))
    pipe = Pipeline(Recorder("a", log), inner)

    async def call() -> str:
        log.append("call")
        return "done"

    assert await pipe.acall(call) == "done"
    assert log == [">a", ">b", ">c", "call", "<c", "<b", "<a"]
    assert repr(pipe).startswith("Pipeline(<")


def test_only_policies_compose() -> None:
    with pytest.raises(TypeError, match="argument 1 must be a selfheal Policy"):
        Pipeline(Timeout(1), print)  # type: ignore[arg-type]


def test_sync_pipeline_heals_a_flaky_call(clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    seen: list[Event] = []
    bus.subscribe("*", seen.append)
    calls = 0

    def fetch_user(user_id: int) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("flaky")
        return f"user {user_id}"

    pipe = selfheal.pipeline(
        selfheal.fallback("guest", bus=bus),
        Bulkhead(2, bus=bus),
        selfheal.retry(
            on=ConnectionError, attempts=3, backoff=1, deadline=10, clock=clock, bus=bus
        ),
        Timeout(2, clock=clock, bus=bus),
    )
    fetch = pipe(fetch_user)
    assert fetch(5) == "user 5"
    assert clock.sleeps == [1, 1]
    assert [e.type for e in seen] == ["retry.fetch_user.retrying"] * 2
    calls = -10
    assert fetch(5) == "guest"
    assert [e.type for e in seen][-2:] == ["retry.fetch_user.gave_up", "fallback.fetch_user.used"]


@pytest.mark.anyio
async def test_per_attempt_timeout_inside_an_overall_deadline() -> None:
    clock = FakeClock(autojump=True)
    attempts: list[float | None] = []

    async def slow() -> str:
        attempts.append(selfheal.remaining())
        await clock.asleep(60)
        return "never"

    pipe = Pipeline(
        selfheal.fallback("cached"),
        selfheal.retry(on=TimeoutError, attempts=10, backoff=1.5, deadline=5, clock=clock),
        Timeout(2, clock=clock),
    )
    assert await pipe(slow)() == "cached"
    # Attempt 1 gets its 2 s, then 1.5 s of backoff; attempt 2 is cut at the overall deadline.
    assert attempts == [2.0, 1.5]
    assert clock.monotonic() == 5.0


def test_nothing_is_allocated_per_successful_call(clock: FakeClock) -> None:
    pipe = Pipeline(
        selfheal.fallback(None),
        Bulkhead(8),
        selfheal.retry(on=ConnectionError, clock=clock),
    )
    fn = pipe(lambda x: x)

    def run(n: int) -> None:
        for i in range(n):
            fn(i)

    run(1000)
    gc.collect()
    before = sys.getallocatedblocks()
    run(20_000)
    gc.collect()
    assert sys.getallocatedblocks() - before < 50


def test_pipeline_with_a_keyword_call_is_correct(clock: FakeClock) -> None:
    pipe = Pipeline(selfheal.retry(on=ValueError, clock=clock), selfheal.fallback(0))
    assert pipe(lambda *, a, b: a - b)(a=3, b=1) == 2
    assert pipe.call(lambda *a: sum(a), 1, 2, 3) == 6


def test_any_policy_type_checks_under_pipeline() -> None:
    policies: list[Any] = [Timeout(1), Bulkhead(1), selfheal.fallback(1)]
    assert all(isinstance(p, Policy) for p in Pipeline(*policies).policies)


# -- every policy as a decorator: methods, classmethods, async callables, generators ---------

POLICIES: dict[str, Callable[[], Policy]] = {
    "retry": lambda: selfheal.retry(on=ValueError, backoff=0),
    "breaker": selfheal.CircuitBreaker,
    "timeout": lambda: Timeout(30),
    "bulkhead": lambda: Bulkhead(2),
    "fallback": lambda: selfheal.fallback(-1, on=KeyError),
    "pipeline": lambda: selfheal.pipeline(Bulkhead(2), selfheal.retry(on=ValueError, backoff=0)),
}


@pytest.mark.parametrize("make", POLICIES.values(), ids=POLICIES.keys())
def test_decorating_classmethods_and_staticmethods(make: Callable[[], Policy]) -> None:
    class Repo:
        @make()  # type: ignore[misc]
        @classmethod
        def build(cls, x: int) -> tuple[type, int]:
            return cls, x

        @make()  # type: ignore[misc]
        @staticmethod
        def double(x: int) -> int:
            return 2 * x

        @make()  # type: ignore[misc]
        @classmethod
        async def abuild(cls, x: int) -> tuple[type, int]:
            return cls, x

    class Sub(Repo):
        pass

    assert Repo.build(1) == (Repo, 1)
    assert Sub().build(2) == (Sub, 2)
    assert Repo.double(3) == 6
    assert Repo().double(4) == 8
    assert Sub.abuild.__wrapped__.__name__ == "abuild"  # type: ignore[attr-defined]
    assert asyncio.run(Sub.abuild(5)) == (Sub, 5)


def test_a_retried_classmethod_is_retried() -> None:
    class Client:
        calls = 0

        @selfheal.retry(on=ValueError, backoff=0)  # type: ignore[misc]
        @classmethod
        def fetch(cls) -> int:
            cls.calls += 1
            if cls.calls < 3:
                raise ValueError("flaky")
            return cls.calls

    assert Client.fetch() == 3


@pytest.mark.parametrize("make", POLICIES.values(), ids=POLICIES.keys())
def test_an_object_with_async_call_gets_the_async_wrapper(make: Callable[[], Policy]) -> None:
    class Handler:
        async def __call__(self, x: int) -> int:
            return x + 1

    decorated = make()(Handler())
    assert inspect.iscoroutinefunction(decorated)


@pytest.mark.anyio
async def test_an_object_with_async_call_is_retried() -> None:
    class Flaky:
        calls = 0

        async def __call__(self) -> str:
            self.calls += 1
            if self.calls < 3:
                raise ValueError("flaky")
            return "ok"

    flaky = Flaky()
    assert await selfheal.retry(on=ValueError, backoff=0)(flaky)() == "ok"
    assert flaky.calls == 3


@pytest.mark.parametrize("make", POLICIES.values(), ids=POLICIES.keys())
def test_generator_functions_are_refused_with_a_clear_error(make: Callable[[], Policy]) -> None:
    def rows() -> Iterator[int]:
        yield 1

    async def arows() -> AsyncIterator[int]:
        yield 1

    for gen in (rows, arows):
        with pytest.raises(TypeError, match=r"generator function 'a?rows'.*iteration"):
            make()(gen)


@pytest.mark.parametrize("make", POLICIES.values(), ids=POLICIES.keys())
def test_call_refuses_a_coroutine_function(make: Callable[[], Policy]) -> None:
    async def fetch() -> int:
        return 1

    with pytest.raises(TypeError, match=r"acall"):
        make().call(fetch)  # type: ignore[arg-type]


class Passthrough(Policy):
    """A policy that decides to add nothing (e.g. switched off by configuration)."""

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        return fn

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        return fn  # type: ignore[return-value]


@pytest.mark.parametrize(
    "make", [Pipeline, Passthrough, lambda: Pipeline(Passthrough(), Passthrough())]
)
def test_a_policy_adding_no_wrapper_leaves_the_function_alone(make: Callable[[], Policy]) -> None:
    # An empty pipeline (built from an empty config list) returned the function itself, and
    # functools.wraps then set fn.__wrapped__ = fn: inspect.signature(fn) raised "wrapper loop".
    def f(a: int, *, b: str = "x") -> int:
        return a

    decorated = make()(f)
    assert decorated(1) == 1
    assert not hasattr(f, "__wrapped__")
    assert str(inspect.signature(decorated)) == "(a: 'int', *, b: 'str' = 'x') -> 'int'"


def test_a_class_with_async_call_is_a_sync_callable() -> None:
    # Calling the class builds an instance; only its instances' calls are coroutines.
    class Client:
        async def __call__(self) -> int:
            return 1

    assert isinstance(selfheal.retry(on=ValueError).call(Client), Client)
    assert isinstance(Bulkhead(1)(Client)(), Client)
