"""selfheal.web.install and health_lifespan: the monitor runs inside the parent app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from health_helpers import TOKEN, CountingCheck, assert_health_json, serving, wait_until
from selfheal.health import HealthMonitor, HealthStatus
from selfheal.health.checks import event_loop_lag_check
from selfheal.web import health_lifespan, health_routes, install


def _wait_for_results(client: httpx.Client, path: str = "/readyz") -> httpx.Response:
    answers: list[httpx.Response] = []

    def answered() -> bool:
        answers.append(client.get(path))
        return answers[-1].status_code == 200

    wait_until(answered, 10)
    return answers[-1]


def test_install_runs_the_monitor_inside_a_fastapi_apps_own_lifespan() -> None:
    events: list[str] = []
    monitor = HealthMonitor()

    def db() -> None:
        events.append("check ran")

    monitor.register("db", db, interval=3600)
    monitor.register("cache", CountingCheck(), interval=3600, critical=False)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        events.append(f"app started, monitor running: {monitor.running}")
        yield {"pool": "the pool"}
        events.append(f"app stopping, monitor running: {monitor.running}")

    app = FastAPI(lifespan=lifespan)

    @app.get("/")
    async def index(request: Request) -> dict[str, str]:
        return {"pool": request.state.pool}

    install(app, monitor, token=TOKEN, version="2.0")
    with serving(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=5) as client:
        assert monitor.running
        ready = _wait_for_results(client)
        doc = ready.json()
        assert_health_json(doc)
        assert doc["version"] == "2.0"
        assert set(doc["checks"]) == {"db:responseTime", "cache:responseTime"}
        assert client.get("/livez").status_code == 200
        assert client.get("/healthz?verbose").text == (
            "[+]db ok\n[+]cache ok\nhealthz check passed\n"
        )
        assert client.get("/readyz/db").status_code == 200
        assert client.get("/readyz/nothing").status_code == 404
        families = {f.name for f in text_string_to_metric_families(client.get("/metrics").text)}
        assert "selfheal_health_check_status" in families
        assert client.get("/").json() == {"pool": "the pool"}  # the app's lifespan state
        assert "/livez" not in client.get("/openapi.json").text  # no noise in the API docs
    assert not monitor.running
    # The app's startup before the first check; the monitor stopped before its shutdown.
    assert events == [
        "app started, monitor running: False",
        "check ran",
        "app stopping, monitor running: False",
    ]


def test_install_under_a_prefix_in_a_starlette_app_without_a_lifespan() -> None:
    monitor = HealthMonitor()
    monitor.register("db", CountingCheck(), interval=3600)

    async def readyz(request: Any) -> PlainTextResponse:
        return PlainTextResponse("the app's own readyz")

    app = Starlette(routes=[Route("/readyz", readyz)])
    install(app, monitor, prefix="/health/", metrics=False)
    with serving(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=5) as client:
        assert monitor.running
        assert _wait_for_results(client, "/health/readyz").json()["status"] == "pass"
        assert client.get("/readyz").text == "the app's own readyz"
        assert client.get("/health/metrics").status_code == 404
    assert not monitor.running


def test_install_with_a_thread_watches_the_apps_loop_from_outside() -> None:
    # An event-loop lag check needs a monitor on another loop: one on the app's loop could
    # not run while that loop is blocked.
    monitor = HealthMonitor()
    loops: list[asyncio.AbstractEventLoop] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loops.append(asyncio.get_running_loop())
        monitor.register(
            "event-loop",
            event_loop_lag_check(loops[0], max_lag=2),
            interval=3600,
            kind="liveness",
        )
        yield
        monitor.unregister("event-loop")

    app = FastAPI(lifespan=lifespan)
    install(app, monitor, thread=True)
    with serving(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=5) as client:
        _wait_for_results(client, "/livez/event-loop")
        assert monitor.status("event-loop") == HealthStatus.PASS
        assert monitor._scheduler.loop is not loops[0]
        assert monitor._scheduler._thread is not None
    assert not monitor.running


def test_install_starts_the_monitor_on_the_first_request_when_no_lifespan_runs() -> None:
    monitor = HealthMonitor()
    monitor.register("db", CountingCheck(), interval=3600)
    app = FastAPI()
    install(app, monitor)
    with serving(app, lifespan="off") as url, httpx.Client(base_url=url, timeout=5) as client:
        assert not monitor.running
        _wait_for_results(client)
        assert monitor.running


def test_install_sets_up_draining_in_the_main_thread() -> None:
    assert threading.current_thread() is threading.main_thread()
    monitor = HealthMonitor()
    monitor.register("db", CountingCheck(), interval=3600)
    app = Starlette()
    install(app, monitor, drain_seconds=5)
    before = signal.getsignal(signal.SIGTERM)

    async def run_lifespan() -> None:
        async with app.router.lifespan_context(app):
            assert monitor.running
            assert signal.getsignal(signal.SIGTERM) is not before
        assert not monitor.running

    asyncio.run(run_lifespan())
    assert signal.getsignal(signal.SIGTERM) is before


def test_health_lifespan_composes_with_an_apps_own_lifespan() -> None:
    monitor = HealthMonitor()
    db = CountingCheck()
    monitor.register("db", db, interval=3600)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with health_lifespan(monitor):
            yield

    app = FastAPI(lifespan=lifespan)
    app.router.routes.extend(health_routes(monitor))
    with serving(app, lifespan="on") as url, httpx.Client(base_url=url, timeout=5) as client:
        assert monitor.running
        _wait_for_results(client)
    assert not monitor.running
    assert db.calls == 1


def test_health_lifespan_leaves_a_running_monitor_running() -> None:
    monitor = HealthMonitor()
    monitor.register("db", CountingCheck(), interval=3600)
    monitor.start_monitoring()
    try:

        async def run() -> None:
            async with health_lifespan(monitor):
                assert monitor.running
            assert monitor.running

        asyncio.run(run())
    finally:
        monitor.stop_monitoring()


def test_install_rejects_what_it_cannot_use() -> None:
    monitor = HealthMonitor()
    with pytest.raises(ValueError, match="app must be a FastAPI or Starlette application, got"):
        install(object(), monitor)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefix must be a path starting with '/', got 'health'"):
        install(Starlette(), monitor, prefix="health")
    with pytest.raises(TypeError, match="install: unknown option 'tokn'; valid options: token"):
        install(Starlette(), monitor, tokn="x")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="show_details must be"):
        install(Starlette(), monitor, show_details="sometimes")  # type: ignore[typeddict-item]
