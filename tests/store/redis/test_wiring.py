"""How the fleet plugs in: a breaker's ``store=URL``, fleet rules, ``[journal] url``, the CLI."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from fleet_helpers import FleetRedis, node_env, wait_until
from selfheal.cli import main
from selfheal.config import parse_config
from selfheal.errors import ConfigError
from selfheal.events import Event, EventBus
from selfheal.interfaces import BreakerState, breaker_store_from_url
from selfheal.policies import CircuitBreaker, CircuitBreakerError
from selfheal.recovery import CallFunction, RecoveryEngine, Rule
from selfheal.store.redis import FleetLeases, RedisBreakerStore, RedisJournalStore, connect


@pytest.fixture
def store_pair(redis_url: str, prefix: str) -> Iterator[tuple[RedisBreakerStore, ...]]:
    stores = (
        RedisBreakerStore(redis_url, prefix=prefix),
        RedisBreakerStore(redis_url, prefix=prefix),
    )
    for store in stores:
        assert store.ready(5)
    yield stores
    for store in stores:
        store.close()


def _fail() -> None:
    raise ConnectionError("down")


def test_a_trip_on_one_node_opens_the_breaker_of_the_others(
    store_pair: tuple[RedisBreakerStore, ...],
) -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe("breaker.pay.*", seen.append)
    here = CircuitBreaker(2, 30, name="pay", store=store_pair[0])
    there = CircuitBreaker(2, 30, name="pay", store=store_pair[1], bus=bus)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            here.call(_fail)
    assert here.state is BreakerState.OPEN
    wait_until(lambda: there.state is BreakerState.OPEN)
    with pytest.raises(CircuitBreakerError):
        there.call(lambda: None)
    changes = [(e.type, e.data["reason"]) for e in seen if e.type != "breaker.pay.rejected"]
    assert changes == [("breaker.pay.opened", "store")]
    here.close()
    wait_until(lambda: there.state is BreakerState.CLOSED)
    assert there.call(lambda: 7) == 7


def test_the_success_path_makes_no_redis_round_trip(own_redis: FleetRedis) -> None:
    store = RedisBreakerStore(own_redis.url)
    try:
        breaker = CircuitBreaker(5, 30, name="hot", store=store)
        assert store.ready(5)
        wrapped = breaker.wrap(lambda: 1)
        redis = connect(own_redis.url)
        before = redis.info("stats")["total_commands_processed"]
        for _ in range(2000):
            breaker.call(lambda: 1)
            wrapped()
        after = redis.info("stats")["total_commands_processed"]
        assert after - before <= 1  # only the INFO itself
    finally:
        store.close()


def test_a_url_names_one_store_per_process(redis_url: str) -> None:
    first = CircuitBreaker(5, 30, name="u1", store=redis_url)
    second = CircuitBreaker(5, 30, name="u2", store=redis_url)
    assert first._store is second._store
    assert first._store is breaker_store_from_url(redis_url)
    assert isinstance(first._store, RedisBreakerStore)
    first._store.close()  # the next breaker naming the URL gets a new one
    third = CircuitBreaker(5, 30, name="u4", store=redis_url)
    assert third._store is not first._store
    assert isinstance(third._store, RedisBreakerStore)
    third._store.close()
    with pytest.raises(ValueError, match="use 'redis://host:6379/0'"):
        CircuitBreaker(5, 30, name="u3", store="memcached://x")


@pytest.mark.anyio
async def test_async_trials_ask_the_fleet_without_blocking_the_loop(
    store_pair: tuple[RedisBreakerStore, ...],
) -> None:
    here = CircuitBreaker(1, 0, name="aio", store=store_pair[0], half_open_max_calls=1)
    there = CircuitBreaker(1, 0, name="aio", store=store_pair[1], half_open_max_calls=1)
    release = asyncio.Event()
    entered = 0

    async def trial() -> None:
        nonlocal entered
        entered += 1
        await release.wait()

    here.open()
    wait_until(lambda: store_pair[1].load("aio") is not None)
    tasks = [asyncio.create_task(b.acall(trial)) for b in (here, there) for _ in range(4)]
    for _ in range(200):
        done = [t for t in tasks if t.done()]
        if len(done) == 7:
            break
        await asyncio.sleep(0.01)
    rejected = [t for t in done if isinstance(t.exception(), CircuitBreakerError)]
    assert entered == 1  # one trial in the whole fleet
    assert len(rejected) == 7
    release.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(wait_until, lambda: there.state is BreakerState.CLOSED)


@pytest.mark.anyio
async def test_a_fleet_rule_without_redis_escalates_instead_of_acting(
    own_redis: FleetRedis,
) -> None:
    own_redis.stop()
    acted: list[Event] = []
    told: list[Event] = []

    async def act(event: Event) -> None:
        acted.append(event)

    async def tell(event: Event) -> None:
        told.append(event)

    bus = EventBus()
    reports: list[Event] = []
    bus.subscribe("recovery.*", reports.append)
    rule = Rule(
        "health.*.failed",
        (CallFunction(act),),
        escalate=(CallFunction(tell),),
        fleet=True,
    )
    leases = FleetLeases(own_redis.url, ttl=1)
    async with RecoveryEngine(bus, [rule], leases=leases) as engine:
        bus.emit("health.db.failed", "checks", "error")
        await asyncio.sleep(0)
        await engine.wait_idle()
    await leases.stop()
    assert acted == []
    assert len(told) == 1
    assert [(e.type, e.data.get("reason")) for e in reports] == [
        ("recovery.db.suppressed", "lease_unavailable"),
        ("recovery.db.escalated", "lease_unavailable"),
    ]


def test_journal_config_accepts_a_fleet_url() -> None:
    config = parse_config('[journal]\nurl = "redis://h:6379/0"\nlocal_copy = true\n')
    assert config.journal.fleet_url == "redis://h:6379/0"
    assert config.journal_path("/base") == Path("/base/.selfheal/journal.db")
    rules = parse_config(
        '[[recovery]]\non = "health.*.failed"\nfleet = true\naction = { restart = "{subject}" }\n'
    ).recovery
    assert rules[0].to_rule().fleet
    with pytest.raises(ConfigError) as info:
        parse_config('[journal]\nurl = "redis+cluster://h:7000"\n')
    (issue,) = info.value.issues
    assert issue.key == "journal.url"
    assert "Redis Cluster is not supported" in issue.message


def test_the_cli_reads_the_fleets_history(redis_url: str, prefix: str, tmp_path: Path) -> None:
    del prefix  # the CLI reads the default prefix
    store = RedisJournalStore(redis_url, fold=False)
    store.write([Event("health.cli.failed", "n1", "error", time.time(), {})], [], [], now=0)
    config = tmp_path / "selfheal.toml"
    config.write_text(f'[journal]\nurl = "{redis_url}"\n')
    runner = CliRunner()
    by_config = runner.invoke(main, ["events", "--json", "-c", str(config)])
    assert by_config.exit_code == 0, by_config.output
    assert [json.loads(line)["type"] for line in by_config.output.splitlines()] == [
        "health.cli.failed"
    ]
    by_url = runner.invoke(main, ["events", "--json", "--db", redis_url])
    assert by_url.output == by_config.output
    store.close()


def test_the_cli_says_when_the_fleets_journal_does_not_answer(tmp_path: Path) -> None:
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    result = subprocess.run(
        [sys.executable, "-m", "selfheal", "incidents", "--db", dead],
        capture_output=True,
        text=True,
        env=node_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: cannot reach the fleet's journal at redis://")
    assert "Traceback" not in result.stderr


def _closed_port() -> int:
    from health_helpers import free_port

    return free_port()
