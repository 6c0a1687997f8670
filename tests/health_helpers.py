"""Helpers shared by the health and web tests: checks, bounded waits, servers on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from selfheal.events import Event
from selfheal.health import CheckError, HealthMonitor
from selfheal.testing import FakeClock
from selfheal.web import health_app


class CountingCheck:
    """An async check that counts its calls; its behaviour can be changed between runs."""

    def __init__(self, *, result: Any = None) -> None:
        self.calls = 0
        self.fail: str | None = None
        self.hang = False
        self.result = result
        self.release = asyncio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        if self.hang:
            await self.release.wait()
        if self.fail is not None:
            raise CheckError(self.fail)
        return self.result


class BlockingCheck:
    """A sync check that blocks its thread until released (a hung driver call)."""

    def __init__(self) -> None:
        self.calls = 0
        self.gate = threading.Event()
        self.entered = threading.Event()

    def __call__(self) -> None:
        self.calls += 1
        self.entered.set()
        if not self.gate.wait(10):
            raise RuntimeError("never released")


async def until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Let the loop (and check threads) run until `predicate()` holds; fail after `limit` s."""
    deadline = time.monotonic() + limit
    turns = 0
    while not predicate():
        turns += 1
        if turns < 200:
            await asyncio.sleep(0)
            continue
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {limit} s")
        await asyncio.sleep(0.001)


async def ran(check: CountingCheck, monitor: HealthMonitor, name: str, calls: int) -> None:
    """Wait until `check` ran `calls` times, its result is recorded and its loop waits again.

    Only then does `clock.advance` wake the loop for its next run (an advance before the loop
    went to sleep would be lost on it).
    """
    job = monitor._scheduler.job(name)
    await until(
        lambda: (
            check.calls >= calls
            and monitor.report(name).result is not None
            and (job.next_run is not None or job.finished)
        )
    )


def event_types(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def wait_until(predicate: Callable[[], bool], limit: float = 5.0) -> None:
    """Block until `predicate()` holds; fail after `limit` seconds."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not reached within {limit} s")
        time.sleep(0.002)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class RedisServer:
    """A private redis-server on a free loopback port, stopped by its pid."""

    def __init__(self) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed")
        self.exe = exe
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def persistence(self) -> list[str]:
        """Return the server's persistence options (none: it keeps nothing on disk)."""
        return ["--appendonly", "no"]

    def start(self) -> None:
        argv = [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.proc = subprocess.Popen(
            [*argv, *self.persistence()], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_until(lambda: port_open(self.port))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


@contextlib.contextmanager
def serving(app: Any, *, lifespan: str = "off") -> Iterator[str]:
    """Serve an ASGI app with a real uvicorn on a free loopback port; yield its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan=lifespan,
        timeout_graceful_shutdown=0.2,  # a handler that hangs must not hold the shutdown
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the health endpoints ---------------------------------------------------------------

TOKEN = "s3cret-token"


AUTH = {"Authorization": f"Bearer {TOKEN}"}


# The draft's fields (draft-inadarei-api-health-check-06, sections 3 and 4).
TOP_FIELDS = {
    "status",
    "version",
    "releaseId",
    "notes",
    "output",
    "checks",
    "links",
    "serviceId",
    "description",
}


CHECK_FIELDS = {
    "componentId",
    "componentType",
    "observedValue",
    "observedUnit",
    "status",
    "affectedEndpoints",
    "time",
    "output",
    "links",
}


def assert_health_json(doc: dict[str, Any]) -> None:
    """Check a body against the draft's shape and field types."""
    assert set(doc) <= TOP_FIELDS, set(doc) - TOP_FIELDS
    assert doc["status"] in ("pass", "warn", "fail")
    for key, items in doc.get("checks", {}).items():
        assert key.count(":") <= 1
        assert isinstance(items, list)
        assert items
        for item in items:
            assert set(item) <= CHECK_FIELDS, set(item) - CHECK_FIELDS
            assert item["status"] in ("pass", "warn", "fail")
            if "time" in item:
                datetime.fromisoformat(item["time"])  # ISO 8601 / RFC 3339
                assert item["time"].endswith("Z")
            if "observedValue" in item:
                assert isinstance(item["observedUnit"], str)
            if "componentType" in item:
                assert isinstance(item["componentType"], str)
            if item["status"] == "pass":
                assert "output" not in item  # the draft: SHOULD be omitted for pass
            else:
                assert isinstance(item["output"], str)


class HealthAppSetup:
    """A monitor with three checks (db, cache non-critical, loop liveness) and its ASGI app."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.monitor = HealthMonitor(clock=clock)
        self.db = CountingCheck()
        self.cache = CountingCheck()
        self.loop = CountingCheck(result={"observedValue": 1.5, "observedUnit": "ms"})
        self.monitor.register("db", self.db, interval=10, jitter=0)
        self.monitor.register("cache", self.cache, interval=10, jitter=0, critical=False)
        self.monitor.register("loop", self.loop, interval=10, jitter=0, kind="liveness")
        # The tests run the checks by hand (`refresh`): a monitor the app started on the
        # first request would run them on its own.
        self.app = health_app(
            self.monitor, token=TOKEN, version="1.0", service_id="shop", manage_monitor=False
        )

    async def refresh(self) -> None:
        for name in self.monitor.names():
            await self.monitor.check_now(name)
