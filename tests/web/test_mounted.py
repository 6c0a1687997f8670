"""health_app mounted in FastAPI or Starlette, where its own lifespan never runs, under uvicorn."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from health_helpers import CountingCheck, serving, wait_until
from selfheal.health import HealthMonitor
from selfheal.web import health_app


def _fastapi_parent(sub: Starlette, loops: list[asyncio.AbstractEventLoop]) -> Any:
    app = FastAPI()

    @app.get("/")
    async def index() -> dict[str, str]:
        loops.append(asyncio.get_running_loop())
        return {"hello": "world"}

    app.mount("/health", sub)
    return app


def _starlette_parent(sub: Starlette, loops: list[asyncio.AbstractEventLoop]) -> Any:
    async def index(request: Request) -> JSONResponse:
        loops.append(asyncio.get_running_loop())
        return JSONResponse({"hello": "world"})

    return Starlette(routes=[Route("/", index), Mount("/health", app=sub)])


PARENTS = {"fastapi": _fastapi_parent, "starlette": _starlette_parent}


def _statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {key.split(":")[0]: items[0]["status"] for key, items in doc["checks"].items()}


@pytest.mark.parametrize("parent", sorted(PARENTS))
def test_a_mounted_health_app_starts_the_monitor_on_the_servers_loop(parent: str) -> None:
    # The sub-app's lifespan never runs under app.mount(): the monitor it was to start never
    # started, and /health/readyz said "no result yet" for ever.
    monitor = HealthMonitor()
    db = CountingCheck()
    monitor.register("db", db, interval=3600)
    monitor.register("disk", lambda: None, interval=3600, critical=False)
    loops: list[asyncio.AbstractEventLoop] = []
    build: Callable[[Starlette, list[asyncio.AbstractEventLoop]], Any] = PARENTS[parent]
    app = build(health_app(monitor), loops)
    with serving(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=5) as client:
        assert not monitor.running  # the parent's lifespan ran; the sub-app's did not
        first = client.get("/health/readyz")
        assert monitor.running  # started by that request
        # ...which answered from the checks' first results, not "no result yet".
        assert first.status_code == 200, first.text
        assert _statuses(first.json()) == {"db": "pass", "disk": "pass"}
        assert "no result yet" not in client.get("/health/healthz?verbose").text
        assert client.get("/health/livez").status_code == 200
        assert client.get("/health/metrics").status_code == 200
        client.get("/")
        assert monitor._scheduler.loop is loops[0]  # the server's own loop
        assert db.calls == 1  # one schedule: the interval is an hour


@pytest.mark.anyio
async def test_concurrent_first_requests_start_the_monitor_once() -> None:
    monitor = HealthMonitor()
    db = CountingCheck()
    monitor.register("db", db, interval=3600)
    app = _starlette_parent(health_app(monitor), [])
    with serving(app, lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            answers = await asyncio.gather(*(client.get("/health/readyz") for _ in range(20)))
            assert {a.status_code for a in answers} <= {200, 503}
            for _ in range(500):  # the server's loop runs the check meanwhile
                if (await client.get("/health/readyz")).status_code == 200:
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("no result within 5 s")
        assert monitor.running
        assert db.calls == 1  # one start, one first run


def test_a_mounted_app_that_must_not_manage_the_monitor_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # manage_monitor=False asks the parent to start the monitor; if it does not, the checks
    # would say "no result yet" for ever: the first request logs why and what to do.
    monitor = HealthMonitor()
    monitor.register("db", CountingCheck(), interval=3600)
    app = _fastapi_parent(health_app(monitor, manage_monitor=False), [])
    caplog.set_level(logging.WARNING, logger="selfheal.web")
    with serving(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=5) as client:
        for _ in range(3):
            response = client.get("/health/readyz?verbose")
            assert response.status_code == 503
            assert "[-]db failed: no result yet" in response.text
    assert not monitor.running
    warnings = [r.getMessage() for r in caplog.records if r.name == "selfheal.web"]
    assert len(warnings) == 1, warnings
    assert "not running" in warnings[0]
    assert "selfheal.web.install(app, monitor)" in warnings[0]


def test_a_mounted_app_leaves_a_monitor_started_by_the_parent_alone() -> None:
    # The documented alternative: the parent's lifespan runs the monitor in a thread.
    monitor = HealthMonitor()
    db = CountingCheck()
    monitor.register("db", db, interval=3600)
    monitor.start_monitoring()
    try:
        thread_loop = monitor._scheduler.loop
        app = _starlette_parent(health_app(monitor), [])
        with serving(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=5) as client:
            wait_until(lambda: client.get("/health/readyz").status_code == 200, 10)
        assert monitor._scheduler.loop is thread_loop
        assert db.calls == 1
    finally:
        monitor.stop_monitoring()


# Starlette's TestClient warns that it will move from httpx to httpx2, not installed here.
@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_fastapis_testclient_without_a_with_block_sees_the_first_results() -> None:
    # `TestClient(app)` outside `with` runs no lifespan, as FastAPI's docs write most tests.
    from fastapi.testclient import TestClient

    from selfheal.web import install

    monitor = HealthMonitor()
    monitor.register("db", lambda: True, interval=3600)
    monitor.register("cache", lambda: False, interval=3600, critical=False)
    app = FastAPI()
    install(app, monitor)
    client = TestClient(app)
    answer = client.get("/readyz")
    assert answer.status_code == 200, answer.text
    assert _statuses(answer.json()) == {"db": "pass", "cache": "warn"}
