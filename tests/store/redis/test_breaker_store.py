"""The shared breaker store: trips seen everywhere, fleet-wide trial permits, degraded mode."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from fleet_helpers import FleetRedis, wait_until
from selfheal.events import Event, EventBus
from selfheal.interfaces import (
    BreakerRecord,
    BreakerState,
    SharedBreakerStore,
    TrialOutcome,
    TrialPermit,
)
from selfheal.store.redis import RedisBreakerStore, connect

OPEN, CLOSED, HALF_OPEN = BreakerState.OPEN, BreakerState.CLOSED, BreakerState.HALF_OPEN

Factory = Callable[..., RedisBreakerStore]


@pytest.fixture
def stores(redis_url: str, prefix: str) -> Iterator[Factory]:
    made: list[RedisBreakerStore] = []

    def make(url: str = redis_url, **kwargs: object) -> RedisBreakerStore:
        store = RedisBreakerStore(url, prefix=prefix, **kwargs)  # type: ignore[arg-type]
        made.append(store)
        return store

    yield make
    for store in made:
        store.close()


class Watcher:
    """Counts a watch callback's calls and remembers what the store held then."""

    def __init__(self, store: RedisBreakerStore, name: str) -> None:
        self.seen: list[BreakerRecord | None] = []
        self.store = store
        store.watch(name, lambda: self.seen.append(store.load(name)))

    @property
    def state(self) -> BreakerState | None:
        record = self.seen[-1] if self.seen else None
        return record.state if record is not None else None


def _open(store: RedisBreakerStore, name: str = "db") -> None:
    store.save(name, BreakerRecord(OPEN, time.time()))


def test_it_is_a_shared_breaker_store(stores: Factory) -> None:
    assert isinstance(stores(), SharedBreakerStore)


def test_a_trip_on_one_node_reaches_the_others(stores: Factory) -> None:
    a, b, c = stores(), stores(), stores()
    for store in (a, b, c):
        assert store.load("db") is None  # nothing stored yet; fetched in the background
        assert store.ready(5)
    wb, wc = Watcher(b, "db"), Watcher(c, "db")
    _open(a)
    wait_until(lambda: wb.state is OPEN and wc.state is OPEN)
    record = b.load("db")
    assert record is not None
    assert record.state is OPEN
    assert abs(record.opened_at - time.time()) < 5
    # The node that decided it is not told about its own change.
    assert a.sync(5)


def test_a_late_node_loads_the_state_the_fleet_has(stores: Factory) -> None:
    a = stores()
    assert a.ready(5)
    _open(a)
    assert a.sync(5)
    late = stores()
    late.load("db")
    wait_until(lambda: (r := late.load("db")) is not None and r.state is OPEN)


def test_a_decision_on_stale_state_is_rejected_and_the_node_follows_redis(
    stores: Factory, redis_url: str, prefix: str
) -> None:
    a, b = stores(), stores()
    a.load("db")
    b.load("db")
    assert a.ready(5)
    assert b.ready(5)
    _open(a)
    assert a.sync(5)
    b.sync(5)
    wait_until(lambda: (r := b.load("db")) is not None and r.state is OPEN)
    # a closes it (an operator), b has not heard yet and decides OPEN on the old version.
    stale_ver = int(connect(redis_url).hget(f"{prefix}:breaker:db", "ver"))
    a.save("db", BreakerRecord(CLOSED, time.time()))
    assert a.sync(5)
    wait_until(lambda: (r := b.load("db")) is not None and r.state is CLOSED)
    redis = connect(redis_url)
    assert int(redis.hget(f"{prefix}:breaker:db", "ver")) == stale_ver + 1
    watcher = Watcher(b, "db")
    with b._lock:  # pretend b never heard of the close: its cache holds the old version
        b._entries["db"].ver = stale_ver
    _open(b)
    assert b.sync(5)
    assert redis.hget(f"{prefix}:breaker:db", "st") == "closed"
    wait_until(lambda: watcher.state is CLOSED)


def test_open_times_are_milliseconds_on_redis_clock(
    stores: Factory, redis_url: str, prefix: str
) -> None:
    # pybreaker stores whole seconds: with a 0.5 s timeout a call 1 ms after the trip passed.
    a = stores()
    assert a.ready(5)
    _open(a)
    assert a.sync(5)
    assert a.acquire_trial("db", max_calls=1, recovery_timeout=0.5) is None
    # Let 0.5 s pass on Redis's clock: the trip happened half a second earlier.
    connect(redis_url).hincrby(f"{prefix}:breaker:db", "at", -500)
    permit = a.acquire_trial("db", max_calls=1, recovery_timeout=0.5)
    assert permit is not None
    assert not permit.local


def test_exactly_max_calls_trial_permits_across_nodes(stores: Factory) -> None:
    nodes = [stores() for _ in range(3)]
    for store in nodes:
        store.load("db")
        assert store.ready(5)
    _open(nodes[0])
    assert nodes[0].sync(5)
    granted: list[TrialPermit] = []
    lock = threading.Lock()
    start = threading.Barrier(48)

    def ask(store: RedisBreakerStore) -> None:
        start.wait()
        permit = store.acquire_trial("db", max_calls=3, recovery_timeout=0)
        if permit is not None:
            with lock:
                granted.append(permit)

    threads = [threading.Thread(target=ask, args=(nodes[i % 3],)) for i in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 3
    assert not any(p.local for p in granted)
    assert len({p.epoch for p in granted}) == 1


def _opened_on_two_nodes(stores: Factory) -> tuple[RedisBreakerStore, RedisBreakerStore, Watcher]:
    """Return node a, which opened breaker db, node b, and a watcher of it on b."""
    a, b = stores(), stores()
    a.load("db")
    b.load("db")
    assert a.ready(5)
    assert b.ready(5)
    watcher = Watcher(b, "db")
    _open(a)
    assert a.sync(5)
    wait_until(lambda: watcher.state is OPEN)
    return a, b, watcher


def test_successful_trials_close_the_breaker_for_everyone(stores: Factory) -> None:
    a, b, watcher = _opened_on_two_nodes(stores)
    first = a.acquire_trial("db", max_calls=2, recovery_timeout=0)
    second = b.acquire_trial("db", max_calls=2, recovery_timeout=0)
    assert first is not None
    assert second is not None
    a.release_trial(first, TrialOutcome.SUCCESS)
    assert a.sync(5)
    assert b.acquire_trial("db", max_calls=2, recovery_timeout=0) is None  # 1 ok + 1 running
    b.release_trial(second, TrialOutcome.SUCCESS)
    wait_until(lambda: watcher.state is CLOSED)
    # A trial asked for after the close goes through with nothing to give back.
    late = a.acquire_trial("db", max_calls=2, recovery_timeout=0)
    assert late is not None
    assert late.local


def test_a_failed_trial_reopens_and_a_stale_permit_counts_for_nothing(stores: Factory) -> None:
    a, b, watcher = _opened_on_two_nodes(stores)
    opened = watcher.seen[-1]
    first = a.acquire_trial("db", max_calls=2, recovery_timeout=0)
    second = b.acquire_trial("db", max_calls=2, recovery_timeout=0)
    assert first is not None
    assert second is not None
    a.release_trial(first, TrialOutcome.FAILURE)
    wait_until(lambda: len(watcher.seen) > 1)
    reopened = watcher.seen[-1]
    assert reopened is not None
    assert opened is not None
    assert reopened.state is OPEN
    assert reopened.opened_at > opened.opened_at
    # The other trial ends after the re-open: its success belongs to the old period.
    b.release_trial(second, TrialOutcome.SUCCESS)
    assert b.sync(5)
    assert watcher.state is OPEN


def test_a_permit_of_a_node_that_died_comes_back_after_trial_ttl(
    stores: Factory, redis_url: str, prefix: str
) -> None:
    a = stores(trial_ttl=30)
    assert a.ready(5)
    _open(a)
    assert a.sync(5)
    held = a.acquire_trial("db", max_calls=1, recovery_timeout=0)
    assert held is not None
    assert a.acquire_trial("db", max_calls=1, recovery_timeout=0) is None
    # Its holder never gives it back; let its 30 s pass on Redis's clock.
    redis = connect(redis_url)
    trials = f"{prefix}:breaker:db:trials"
    redis.zadd(trials, {held.token: redis.zscore(trials, held.token) - 30_000}, xx=True)
    assert a.acquire_trial("db", max_calls=1, recovery_timeout=0) is not None


def test_half_open_in_redis_tells_nobody(stores: Factory) -> None:
    # Every breaker starts its own trials on its own timer: OPEN -> HALF_OPEN in Redis keeps
    # the same opening, and telling the breakers would restart their recovery timeout.
    a, b = stores(), stores()
    a.load("db")
    assert a.ready(5)
    assert b.ready(5)
    watcher = Watcher(b, "db")
    _open(a)
    assert a.sync(5)
    wait_until(lambda: watcher.state is OPEN)
    calls = len(watcher.seen)
    assert a.acquire_trial("db", max_calls=1, recovery_timeout=0) is not None
    assert a.sync(5)
    b.request_resync()
    assert b.sync(5)
    record = b.load("db")
    assert record is not None
    assert record.state is HALF_OPEN
    assert len(watcher.seen) == calls


def test_degraded_when_redis_pauses_then_reconciled(own_redis: FleetRedis) -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("fleet.redis.*", events.append)
    a = RedisBreakerStore(own_redis.url, timeout=0.2, bus=bus)
    b = RedisBreakerStore(own_redis.url, timeout=0.2)
    try:
        a.load("db")
        assert a.ready(5)
        assert b.ready(5)
        watcher = Watcher(b, "db")
        own_redis.pause()
        try:
            # A node decides alone: the save returns at once, a trial permit is local.
            _open(a)
            permit = a.acquire_trial("db", max_calls=1, recovery_timeout=0)
            assert permit == TrialPermit("db")
            wait_until(lambda: a.degraded, 5)
            assert [e.type for e in events] == ["fleet.redis.down"]
            assert watcher.state is None  # b heard nothing: Redis is paused
            local = a.load("db")
            assert local is not None
            assert local.state is OPEN
        finally:
            own_redis.resume()
        wait_until(lambda: [e.type for e in events] == ["fleet.redis.down", "fleet.redis.up"], 10)
        assert not a.degraded
        # The OPEN decided alone opened the fleet.
        wait_until(lambda: watcher.state is OPEN, 10)
        assert a.reconciled >= 1
    finally:
        a.close()
        b.close()


def test_redis_restarted_empty_gets_the_open_state_back(own_redis: FleetRedis) -> None:
    a = RedisBreakerStore(own_redis.url, timeout=0.2)
    try:
        assert a.ready(5)
        _open(a)
        assert a.sync(5)
        redis = connect(own_redis.url)
        redis.flushall()  # what a restart without persistence leaves
        a.request_resync()
        assert a.sync(5)
        wait_until(lambda: redis.hget("selfheal:breaker:db", "st") == "open", 5)
    finally:
        a.close()


@pytest.mark.anyio
async def test_waiting_for_a_permit_never_blocks_the_event_loop(own_redis: FleetRedis) -> None:
    store = RedisBreakerStore(own_redis.url, timeout=0.3)
    try:
        assert await asyncio.to_thread(store.ready, 5)
        _open(store)
        assert await asyncio.to_thread(store.sync, 5)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        own_redis.pause()
        try:
            permit = await store.aacquire_trial("db", max_calls=1, recovery_timeout=0)
        finally:
            own_redis.resume()
        task.cancel()
        assert permit == TrialPermit("db")  # no answer: decided locally
        assert ticks >= 3  # the loop ran on while the store waited for Redis
    finally:
        await asyncio.to_thread(store.close)
