"""The article's RecoveryManager: one recovery per event type and source, off the publisher."""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest

from selfheal import Event, EventBus
from selfheal.recovery import RecoveryManager
from selfheal.testing import FakeClock


def failure(source: str = "monitor", type_: str = "system.database.failure") -> Event:
    return Event(
        type=type_, source=source, severity="critical", timestamp=1.0, data={"host": "db1"}
    )


def test_sync_recovery_runs_in_a_thread_and_reports(clock: FakeClock) -> None:
    bus = EventBus()
    outcomes: list[Event] = []
    bus.subscribe("system.*.failure.*", outcomes.append)
    manager = RecoveryManager(bus, clock=clock)
    release = threading.Event()
    ran: list[str] = []

    def recover(event: Event) -> None:
        ran.append(threading.current_thread().name)
        assert release.wait(10)

    manager.register_recovery("system.database.failure", recover)
    bus.publish(failure())  # returns although the recovery is blocked
    bus.publish(failure())  # same type and source: already in progress, ignored
    bus.publish(failure(source="other-monitor"))  # another source: its own recovery
    assert set(manager.active_recoveries) == {
        "system.database.failure:monitor",
        "system.database.failure:other-monitor",
    }
    assert manager.active_recoveries["system.database.failure:monitor"] == clock.time()
    release.set()
    assert manager.wait(10)
    assert len(ran) == 2
    assert all(name.startswith("selfheal-recovery-") for name in ran)
    assert [e.type for e in outcomes] == ["system.database.failure.recovered"] * 2
    assert outcomes[0].source == "recovery_manager"
    assert outcomes[0].data["original_event"] == {"host": "db1"}


def test_failure_publishes_recovery_failed() -> None:
    bus = EventBus()
    outcomes: list[Event] = []
    bus.subscribe("system.*", outcomes.append)
    manager = RecoveryManager(bus)

    def recover(event: Event) -> None:
        raise ConnectionError("replica unreachable")

    manager.register_recovery("system.cache.failure", recover)
    bus.publish(failure(type_="system.cache.failure"))
    assert manager.wait(10)
    # The wildcard subscriber sees the failure and the outcome; the outcome did not recurse.
    assert [e.type for e in outcomes] == [
        "system.cache.failure",
        "system.cache.failure.recovery_failed",
    ]
    assert outcomes[1].severity == "error"
    assert outcomes[1].data["error"] == "ConnectionError: replica unreachable"


def test_wildcard_registration_ignores_its_own_outcomes() -> None:
    bus = EventBus()
    calls: list[str] = []
    manager = RecoveryManager(bus)
    manager.register_recovery("system.*", lambda e: calls.append(e.type))
    bus.publish(failure())
    assert manager.wait(10)
    assert calls == ["system.database.failure"]


@pytest.mark.anyio
async def test_async_recovery_runs_as_a_task_and_stop_waits() -> None:
    bus = EventBus()
    outcomes: list[str] = []
    bus.subscribe("system.api.failure.*", lambda e: outcomes.append(e.type))
    manager = RecoveryManager(bus)
    gate = asyncio.Event()

    async def recover(event: Event) -> None:
        await gate.wait()

    manager.register_recovery("system.api.failure", recover)
    bus.publish(failure(type_="system.api.failure"))
    assert "system.api.failure:monitor" in manager.active_recoveries
    assert outcomes == []
    gate.set()
    await manager.stop()
    assert outcomes == ["system.api.failure.recovered"]
    bus.publish(failure(type_="system.api.failure"))  # stopped: no longer reacting
    await asyncio.sleep(0)
    assert manager.active_recoveries == {}


def test_async_recovery_without_a_loop_runs_in_a_thread() -> None:
    bus = EventBus()
    outcomes: list[str] = []
    bus.subscribe("system.api.failure.*", lambda e: outcomes.append(e.type))
    manager = RecoveryManager(bus)

    async def recover(event: Event) -> None:
        await asyncio.sleep(0)

    manager.register_recovery("system.api.failure", recover)
    bus.publish(failure(type_="system.api.failure"))
    assert manager.wait(10)
    assert outcomes == ["system.api.failure.recovered"]


def test_registration_replaces_and_validates() -> None:
    bus = EventBus()
    manager = RecoveryManager(bus)
    calls: list[str] = []
    manager.register_recovery("system.x.failure", lambda e: calls.append("old"))
    manager.register_recovery("system.x.failure", lambda e: calls.append("new"))
    bus.publish(failure(type_="system.x.failure"))
    assert manager.wait(10)
    assert calls == ["new"]
    with pytest.raises(TypeError, match="must be callable"):
        manager.register_recovery("system.y.failure", "not a function")  # type: ignore[arg-type]


def test_the_published_error_hides_secrets() -> None:
    bus = EventBus()
    failed: list[Event] = []
    bus.subscribe("db.failed.recovery_failed", failed.append)
    manager = RecoveryManager(bus)

    def recover(event: Event) -> None:
        raise ConnectionError("cannot connect to postgresql://app:hunter2@db.internal:5432/app")

    manager.register_recovery("db.failed", recover)
    bus.emit("db.failed", "app")
    assert manager.wait(5)
    assert len(failed) == 1
    assert "hunter2" not in failed[0].data["error"]


def test_a_recovery_that_exits_releases_its_key() -> None:
    # SystemExit (or KeyboardInterrupt) in a recovery thread skipped the bookkeeping: the
    # (type, source) stayed "in progress" and that failure was never recovered again.
    bus = EventBus()
    manager = RecoveryManager(bus)
    calls: list[int] = []

    def recover(event: Event) -> None:
        calls.append(1)
        if len(calls) == 1:
            sys.exit(3)

    manager.register_recovery("db.failed", recover)
    bus.emit("db.failed", "app")
    assert manager.wait(5)
    bus.emit("db.failed", "app")
    assert manager.wait(5)
    assert len(calls) == 2
