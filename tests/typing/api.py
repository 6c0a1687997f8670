"""The public API as users write it; only type-checked (``mypy --strict``), never run.

`tests/typing/test_api.py` runs mypy on this file, so a change that loses a decorated
function's parameters or return type fails the test suite.
"""

from __future__ import annotations

import asyncio
from typing import assert_type

import selfheal
from selfheal import (
    Bulkhead,
    CircuitBreaker,
    ExponentialBackoff,
    FeatureManager,
    Pipeline,
    Policy,
    RetryBudget,
    StopAfterAttempts,
    StopAfterDelay,
    Timeout,
)
from selfheal.testing import FakeClock

clock = FakeClock()
breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=10, name="payments", clock=clock)


@selfheal.retry(on=ConnectionError, attempts=5, backoff=ExponentialBackoff(max=30))
def fetch_user(user_id: int, *, fresh: bool = False) -> dict[str, int]:
    return {"id": user_id}


@selfheal.retry(on=(ConnectionError, TimeoutError), deadline=10, clock=clock)
async def afetch_user(user_id: int) -> str:
    return str(user_id)


@selfheal.retry
def fetch_any(user_id: int) -> str:
    return str(user_id)


@selfheal.retry()
async def afetch_any(user_id: int) -> str:
    return str(user_id)


@breaker
def charge(amount: float) -> bool:
    return amount > 0


@breaker
async def acharge(amount: float) -> bool:
    return amount > 0


@Timeout(2.5)
async def query(sql: str) -> list[tuple[int, ...]]:
    return []


@Bulkhead(4, max_waiting=8)
def render(template: str) -> str:
    return template


@selfheal.fallback("n/a", on=KeyError)
def lookup(key: str) -> str:
    return key


class Client:
    @selfheal.retry(on=OSError, backoff=0)
    def get(self, path: str) -> bytes:
        return path.encode()

    @breaker
    async def aget(self, path: str) -> bytes:
        return path.encode()

    @selfheal.retry(on=OSError, backoff=0)
    @classmethod
    def build(cls, base: str) -> Client:
        return cls()

    @selfheal.retry
    def head(self, path: str) -> int:
        return len(path)

    @selfheal.retry
    @staticmethod
    def version() -> str:
        return "1"

    @Timeout(1)
    @staticmethod
    async def ping(host: str) -> float:
        return 0.0


checkout_policy: Pipeline = selfheal.pipeline(
    selfheal.fallback(None),
    Bulkhead(10),
    selfheal.retry(
        on=ConnectionError,
        stop=StopAfterAttempts(5) | StopAfterDelay(30),
        budget=RetryBudget(ratio=0.1),
    ),
    breaker,
    Timeout(2),
)


@checkout_policy
async def checkout(cart_id: int) -> str | None:
    return str(cart_id)


@checkout_policy
def checkout_sync(cart_id: int) -> str | None:
    return str(cart_id)


def plain(x: int) -> int:
    return x


async def aplain(x: int) -> int:
    return x


def sync_uses() -> None:
    assert_type(fetch_user(1, fresh=True), dict[str, int])
    assert_type(charge(9.99), bool)
    assert_type(render("t"), str)
    assert_type(lookup("k"), str)
    assert_type(checkout_sync(1), str | None)
    assert_type(breaker.execute(plain, 3), int)
    assert_type(breaker.call(plain, 3), int)
    assert_type(selfheal.retry(on=ValueError).call(plain, 1), int)
    assert_type(Client().get("/"), bytes)
    assert_type(Client.build("http://x"), Client)
    assert_type(fetch_any(1), str)
    assert_type(Client().head("/"), int)
    assert_type(Client.version(), str)
    stats = selfheal.RetryStatistics.of(fetch_any)
    assert_type(stats.attempt_number, int)
    assert_type(stats.start_time, float | None)
    for attempt in selfheal.retrying(on=OSError, attempts=3, clock=clock):
        with attempt:
            assert_type(attempt.number, int)
    assert_type(selfheal.retry(on=OSError).retrying().statistics.retries, int)
    assert_type(breaker.state, selfheal.BreakerState)
    assert_type(selfheal.remaining(), float | None)
    policy: Policy = checkout_policy
    assert_type(policy(plain)(2), int)
    with breaker:
        pass
    with Bulkhead(1):
        pass

    features = FeatureManager(clock=clock)
    features.register("recommendations", breaker, fallback_func=lambda user: [])
    features.register("search", lambda: True, ttl=5)
    assert_type(features.is_available("search"), bool)
    assert_type(features.use_feature("search", plain, 1), int)


async def async_uses() -> None:
    assert_type(await afetch_user(1), str)
    assert_type(await acharge(1.0), bool)
    assert_type(await query("select 1"), list[tuple[int, ...]])
    assert_type(await checkout(1), str | None)
    assert_type(await Client().aget("/"), bytes)
    assert_type(await afetch_any(1), str)
    async for attempt in selfheal.retrying(deadline=5, clock=clock):
        with attempt:
            assert_type(attempt.number, int)
    assert_type(await Client.ping("db"), float)
    assert_type(await breaker.aexecute(aplain, 1), int)
    assert_type(await Timeout(1).acall(aplain, 1), int)
    task = asyncio.create_task(afetch_user(2))
    assert_type(task, asyncio.Task[str])
    assert_type(await task, str)
    assert_type(await asyncio.create_task(checkout(3)), str | None)
    async with breaker:
        pass
    async with Bulkhead(1):
        pass


# --------------------------------------------------------------------------- chaos

monkey = selfheal.ChaosMonkey(enabled=None, clock=clock, seed=1)
monkey.register_target("cache", lambda: None, lambda: None, frequency=3600)
monkey.start()
assert_type(monkey.stop(), selfheal.chaos.ChaosReport | None)


@selfheal.FaultPoint("db.query")
def faulty(sql: str, *, limit: int = 10) -> list[str]:
    return [sql] * limit


@selfheal.FaultPoint("db.aquery")
async def afaulty(sql: str) -> list[str]:
    return [sql]


def chaos_uses(injector: selfheal.Injector) -> None:
    assert_type(faulty("select 1", limit=2), list[str])
    assert_type(selfheal.inject("db.rows", [1, 2]), list[int])
    assert_type(injector.error("db.query", times=1), selfheal.chaos.FaultHandle)


async def async_chaos_uses() -> None:
    assert_type(await afaulty("select 1"), list[str])
    assert_type(await selfheal.chaos.ainject("db.rows", 3), int | None)
