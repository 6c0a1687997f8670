"""Built-in checks against real things: Redis, PostgreSQL, SQLite, sockets, processes, loops."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from health_helpers import free_port, redis_server, wait_until
from selfheal.events import Event, EventBus
from selfheal.health import CheckError, HealthMonitor, HealthStatus
from selfheal.health.checks import (
    command_check,
    disk_space_check,
    event_loop_lag_check,
    http_check,
    memory_check,
    postgres_check,
    process_check,
    redis_check,
    sqlite_check,
    tcp_check,
)

PG = "postgresql://postgres@127.0.0.1:5432/test"


# -- Redis --------------------------------------------------------------------------------


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


# -- PostgreSQL -----------------------------------------------------------------------------


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


# -- SQLite ---------------------------------------------------------------------------------


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


# -- system ---------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_disk_space_check(tmp_path: Path) -> None:
    observed = await disk_space_check(tmp_path, min_free_ratio=0)()
    assert observed["measurement"] == "utilization"
    assert observed["observedUnit"] == "percent"
    assert 0 <= observed["observedValue"] <= 100
    assert observed["free_bytes"] <= observed["total_bytes"]
    with pytest.raises(CheckError, match="bytes free, less than"):
        await disk_space_check(tmp_path, min_free_ratio=0, min_free_bytes=2**62)()
    with pytest.raises(ValueError, match="min_free_ratio"):
        disk_space_check(min_free_ratio=2)


@pytest.mark.anyio
async def test_memory_check() -> None:
    observed = await memory_check(max_percent=100)()
    assert observed["rss_bytes"] > 0
    with pytest.raises(CheckError, match="resident memory"):
        await memory_check(max_percent=100, max_rss_bytes=1)()
    with pytest.raises(ValueError, match="max_percent"):
        memory_check(max_percent=0)


@pytest.fixture
def exited_child() -> Iterator[subprocess.Popen[bytes]]:
    """A child that has exited but is not reaped yet: a zombie."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    wait_until(lambda: _state(child.pid) in ("Z", None))
    yield child
    child.wait()


@pytest.mark.anyio
async def test_process_check(tmp_path: Path, exited_child: subprocess.Popen[bytes]) -> None:
    assert (await process_check(os.getpid())())["pid"] == os.getpid()
    child = exited_child
    with pytest.raises(CheckError, match=f"process {child.pid} has exited"):
        await process_check(child.pid)()  # a zombie is not alive
    child.wait()  # reaped: now it is gone
    with pytest.raises(CheckError, match="does not exist"):
        await process_check(lambda: child.pid)()
    with pytest.raises(CheckError, match="not running"):
        await process_check(lambda: None)()
    pidfile = tmp_path / "app.pid"
    pidfile.write_text(f"{os.getpid()}\n")
    assert await process_check(pidfile=pidfile)()
    pidfile.write_text("garbage")
    with pytest.raises(CheckError, match="does not hold a process id"):
        await process_check(pidfile=pidfile)()
    with pytest.raises(ValueError, match="exactly one of pid or pidfile"):
        process_check()


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return None


@pytest.mark.anyio
async def test_command_check() -> None:
    assert await command_check(["true"])() == {"exit_code": 0}
    with pytest.raises(CheckError, match="exited with 3: password=\\*\\*\\*"):
        await command_check(["sh", "-c", "echo password=hunter2; exit 3"])()


@pytest.mark.anyio
async def test_command_check_is_killed_at_the_timeout() -> None:
    monitor = HealthMonitor()
    monitor.register("slow", command_check(["sleep", "30"]), timeout=0.2)
    started = time.monotonic()
    assert await monitor.check_now("slow") == HealthStatus.FAIL
    assert time.monotonic() - started < 5


# -- sockets and HTTP -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_tcp_check() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert (await tcp_check("127.0.0.1", port)())["port"] == port
    with pytest.raises(ConnectionRefusedError):
        await tcp_check("127.0.0.1", port)()


async def _slow(request: Request) -> Response:
    await asyncio.sleep(0.05)
    return PlainTextResponse("late")


async def _hang(request: Request) -> Response:
    await asyncio.sleep(30)
    return PlainTextResponse("never")


_TARGET = Starlette(
    routes=[
        Route("/ok", lambda r: PlainTextResponse("all good, version 1.2.3")),
        Route("/status", lambda r: JSONResponse({"status": "UP", "db": {"status": "DOWN"}})),
        Route("/broken", lambda r: PlainTextResponse("oops", status_code=500)),
        Route("/slow", _slow),
        Route("/hang", _hang),
    ]
)


@pytest.fixture(scope="module")
def target_url() -> Iterator[str]:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            _TARGET,
            host="127.0.0.1",
            port=port,
            log_level="error",
            lifespan="off",
            timeout_graceful_shutdown=0.2,  # the /hang handler never ends by itself
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.anyio
async def test_http_check_conditions(target_url: str) -> None:
    observed = await http_check(f"{target_url}/ok", body_contains="good")()
    assert observed["status"] == 200
    assert observed["observedUnit"] == "ms"
    await http_check(f"{target_url}/ok", body_matches=r"version \d+\.\d+")()
    await http_check(f"{target_url}/status", json_fields={"status": "UP"})()
    await http_check(f"{target_url}/broken", expect_status=[500])()
    with pytest.raises(CheckError, match="HTTP 500"):
        await http_check(f"{target_url}/broken")()
    with pytest.raises(CheckError, match="lacks 'bad'"):
        await http_check(f"{target_url}/ok", body_contains="bad")()
    with pytest.raises(CheckError, match="does not match"):
        await http_check(f"{target_url}/ok", body_matches=r"^v\d")()
    with pytest.raises(CheckError, match=r"db\.status is 'DOWN', expected 'UP'"):
        await http_check(f"{target_url}/status", json_fields={"db.status": "UP"})()
    with pytest.raises(CheckError, match=r"has no field 'missing\.x'"):
        await http_check(f"{target_url}/status", json_fields={"missing.x": 1})()
    with pytest.raises(CheckError, match="is not JSON"):
        await http_check(f"{target_url}/ok", json_fields={"status": "UP"})()
    with pytest.raises(CheckError, match="more than 10 ms"):
        await http_check(f"{target_url}/slow", max_response_time=0.01)()


@pytest.mark.anyio
async def test_http_check_loads_the_certificate_store_once_not_per_run(
    target_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A supervisor probes every few hundred ms; loading the CA bundle costs ~60 ms of CPU.
    import ssl

    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    check = http_check(f"{target_url}/ok", follow_redirects=True)  # may end up on https
    for _ in range(5):
        assert (await check())["status"] == 200
    assert len(loads) == 1
    plain = http_check(f"{target_url}/ok")  # plain HTTP, no redirects: never any TLS
    for _ in range(3):
        assert (await plain())["status"] == 200
    assert len(loads) == 1


@pytest.mark.anyio
async def test_hanging_http_dependency_fails_at_the_timeout(target_url: str) -> None:
    monitor = HealthMonitor()
    monitor.register("payments", http_check(f"{target_url}/hang?token=abc"), timeout=0.1)
    started = time.monotonic()
    assert await monitor.check_now("payments") == HealthStatus.FAIL
    assert time.monotonic() - started < 2
    assert monitor.report("payments").result.timed_out  # type: ignore[union-attr]
    assert "abc" not in http_check(f"{target_url}/x?token=abc").__qualname__


# -- event loop lag ---------------------------------------------------------------------


@pytest.fixture
def other_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.mark.anyio
async def test_event_loop_lag_check_catches_a_blocked_loop(
    other_loop: asyncio.AbstractEventLoop,
) -> None:
    check = event_loop_lag_check(other_loop, max_lag=0.1)
    observed = await check()
    assert observed["measurement"] == "lag"
    assert observed["observedValue"] < 100
    unblock = threading.Event()
    other_loop.call_soon_threadsafe(unblock.wait, 5)  # blocking code on the watched loop
    started = time.monotonic()
    with pytest.raises(CheckError, match="did not run a callback within 100 ms"):
        await check()
    assert time.monotonic() - started < 1
    unblock.set()
    wait_until(lambda: _loop_responds(other_loop))
    assert (await check())["observedValue"] < 100


def _loop_responds(loop: asyncio.AbstractEventLoop) -> bool:
    done = threading.Event()
    loop.call_soon_threadsafe(done.set)
    return done.wait(0.05)


@pytest.mark.anyio
async def test_event_loop_lag_check_on_its_own_loop() -> None:
    assert (await event_loop_lag_check()())["observedUnit"] == "ms"
