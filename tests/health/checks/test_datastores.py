"""Datastore checks against real servers: the machine's and a private Redis, PostgreSQL, SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from health_helpers import free_port, redis_server
from selfheal.events import Event, EventBus
from selfheal.health import CheckError, HealthMonitor, HealthStatus
from selfheal.health.checks import postgres_check, redis_check, sqlite_check

PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.mark.anyio
async def test_redis_check_against_the_machine_redis() -> None:
    assert await redis_check("redis://127.0.0.1:6379/0")() == {"componentType": "datastore"}


@pytest.mark.anyio
async def test_redis_check_fails_when_its_server_stops_and_recovers_after_restart() -> None:
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe("health.*", events.append)
    monitor = HealthMonitor(bus=bus)
    with redis_server() as server:
        monitor.register("cache", redis_check(server.url), interval=60, timeout=1)
        assert await monitor.check_now("cache") == HealthStatus.PASS
        server.stop()
        assert await monitor.check_now("cache") == HealthStatus.FAIL
        output = monitor.report("cache").result.output  # type: ignore[union-attr]
        assert "ConnectionError" in output or "refused" in output.lower()
        server.start()
        assert await monitor.check_now("cache") == HealthStatus.PASS
    assert [e.type for e in events] == ["health.cache.failed", "health.cache.recovered"]


def test_redis_check_hides_the_password() -> None:
    check = redis_check("redis://:sup3rs3cret@127.0.0.1:1/0")
    assert "sup3rs3cret" not in check.__qualname__


@pytest.mark.anyio
async def test_postgres_check_runs_select_1() -> None:
    assert await postgres_check(PG)() == {"componentType": "datastore"}


@pytest.mark.anyio
async def test_postgres_check_fails_on_a_closed_port_without_leaking_the_password() -> None:
    monitor = HealthMonitor()
    dsn = f"postgresql://postgres:hunter2@127.0.0.1:{free_port()}/test"
    monitor.register("db", postgres_check(dsn), timeout=2)
    assert await monitor.check_now("db") == HealthStatus.FAIL
    output = monitor.report("db").result.output  # type: ignore[union-attr]
    assert "OperationalError" in output
    assert "hunter2" not in output


@pytest.mark.anyio
async def test_sqlite_check(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (x)")
    conn.close()
    assert await sqlite_check(db)() == {"componentType": "datastore"}
    assert await sqlite_check(db, query="PRAGMA quick_check")()
    with pytest.raises(CheckError, match="returned no row"):
        await sqlite_check(db, query="SELECT x FROM t")()
    missing = tmp_path / "missing.db"
    with pytest.raises(CheckError, match=r"missing\.db"):
        await sqlite_check(missing)()
    assert not missing.exists()  # opened read-only: never created
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CheckError, match=r"garbage\.db"):
        await sqlite_check(garbage)()
