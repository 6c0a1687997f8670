"""The article's ChaosMonkey example, moved onto selfheal's API.

The article's disruptions change connection settings and block Redis with iptables through
``os.system``; here the settings are a real object and the cache "block" is a flag the cache
client checks, so the example runs anywhere. Its calls are unchanged: ``ChaosMonkey(enabled=
os.environ.get("ENABLE_CHAOS", "False").lower() == "true")``, ``register_target(name,
disrupt, recover, frequency=)``, ``start()`` from sync code and ``stop()``, which recovers
whatever is still disrupted. Only ``clock=`` and ``seed=`` are added, so no real time passes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from selfheal.chaos import ChaosMonkey, ChaosRefusedError
from selfheal.events import Event, EventBus
from selfheal.testing import FakeClock


@dataclass
class Pool:
    max_size: int = 20


@dataclass
class DbSettings:
    connection_pool: Pool = field(default_factory=Pool)
    connection_timeout: float = 5.0


@dataclass
class Cache:
    blocked: bool = False
    data: dict[str, str] = field(default_factory=lambda: {"user:1": "ada"})


db_settings = DbSettings()
redis_client = Cache()


def disrupt_database_connection() -> None:
    db_settings.connection_pool.max_size = 1
    db_settings.connection_timeout = 0.5  # Unreasonably low


def recover_database_connection() -> None:
    db_settings.connection_pool.max_size = 20
    db_settings.connection_timeout = 5.0


def disrupt_cache_service() -> None:
    redis_client.data.clear()  # the article's flushall()
    redis_client.blocked = True  # instead of iptables -A OUTPUT ... -j DROP


def recover_cache_service() -> None:
    redis_client.blocked = False


def is_production_environment() -> bool:
    return os.environ.get("SELFHEAL_ENV") == "production"


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    recover_database_connection()
    recover_cache_service()
    yield
    recover_database_connection()
    recover_cache_service()


class Progress:
    """Counts the monkey's events, so the test thread can wait for the monkey's thread."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()
        bus.subscribe("chaos.*", self._on)

    def _on(self, event: Event) -> None:
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()

    def wait(self, count: int) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.events) >= count, timeout=10)


def build(enabled: bool, clock: FakeClock, bus: EventBus) -> ChaosMonkey:
    monkey = ChaosMonkey(enabled=enabled, clock=clock, bus=bus, seed=2024, duration=10**6)
    if not is_production_environment():
        monkey.register_target(
            "database",
            disrupt_database_connection,
            recover_database_connection,
            frequency=7200,  # Every ~2 hours on average
        )
        monkey.register_target(
            "cache",
            disrupt_cache_service,
            recover_cache_service,
            frequency=3600,  # Every ~1 hour on average
        )
    return monkey


def test_disabled_by_default_as_in_the_article(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ENABLE_CHAOS", raising=False)
    clock = FakeClock()
    monkey = build(os.environ.get("ENABLE_CHAOS", "False").lower() == "true", clock, EventBus())
    monkey.start()
    assert not monkey.running
    assert "selfheal-chaos-monkey" not in {t.name for t in threading.enumerate()}
    assert monkey.stop() is None
    assert db_settings.connection_pool.max_size == 20


def test_enabled_monkey_disrupts_in_the_background_and_stop_recovers_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENABLE_CHAOS", "true")
    clock = FakeClock()
    bus = EventBus(clock=clock)
    progress = Progress(bus)
    monkey = build(os.environ.get("ENABLE_CHAOS", "False").lower() == "true", clock, bus)
    injections = [s for s in monkey.plan(86400) if s.action == "inject"]
    assert {s.target for s in injections[:2]} == {"database", "cache"}

    monkey.start()  # from sync code: a daemon thread, as in the article
    assert monkey.running
    for n, step in enumerate(injections[:2], start=1):
        clock.advance(step.at - clock.monotonic())
        progress.wait(n)
    assert sorted(monkey.disrupted) == ["cache", "database"]
    assert db_settings.connection_pool.max_size == 1
    assert redis_client.blocked

    report = monkey.stop()
    assert report is not None
    assert sorted(report.rolled_back) == ["cache", "database"]
    assert db_settings.connection_pool.max_size == 20
    assert db_settings.connection_timeout == 5.0
    assert not redis_client.blocked
    assert not monkey.running
    assert [e.type for e in progress.events][-3:] == [
        "chaos.database.rolled_back",
        "chaos.cache.rolled_back",
        "chaos.monkey.stopped",
    ]
    assert monkey.stop() is report  # a second stop is harmless


def test_production_registers_nothing_and_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SELFHEAL_ENV", "production")
    monkey = build(True, FakeClock(), EventBus())
    assert monkey.targets == {}
    with pytest.raises(ChaosRefusedError, match="SELFHEAL_ENV=production"):
        monkey.start()
    assert not monkey.running
