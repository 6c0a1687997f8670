"""The health endpoints over HTTP: ASGI in process, and a real uvicorn with real dependencies."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from health_helpers import (
    AUTH,
    TOKEN,
    CountingCheck,
    HealthAppSetup,
    assert_health_json,
    redis_server,
    serving,
    until,
    wait_until,
)
from selfheal.health import HealthMonitor, HealthStatus
from selfheal.health.checks import postgres_check, redis_check
from selfheal.testing import FakeClock
from selfheal.web import health_app


@pytest.mark.anyio
async def test_all_passing(client: httpx.AsyncClient) -> None:
    for path in ("/livez", "/readyz", "/healthz"):
        response = await client.get(path)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/health+json"
        assert response.headers["cache-control"] == "no-store"
        doc = response.json()
        assert_health_json(doc)
        assert doc["status"] == "pass"
        assert doc["version"] == "1.0"
        assert doc["serviceId"] == "shop"
    assert set((await client.get("/livez")).json()["checks"]) == {"loop:responseTime"}
    assert set((await client.get("/readyz")).json()["checks"]) == {
        "db:responseTime",
        "cache:responseTime",
        "loop:responseTime",
    }


@pytest.mark.anyio
async def test_fail_is_503_and_warn_is_200(
    setup: HealthAppSetup, client: httpx.AsyncClient
) -> None:
    setup.cache.fail = "cache at redis://:hunter2@cache:6379 timed out"
    await setup.refresh()
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["status"] == "warn"
    assert response.json()["checks"]["cache:responseTime"][0]["status"] == "warn"
    setup.db.fail = "connection refused"
    await setup.refresh()
    response = await client.get("/readyz")
    assert response.status_code == 503
    doc = response.json()
    assert_health_json(doc)
    assert doc["status"] == "fail"
    # Liveness does not depend on the database.
    assert (await client.get("/livez")).status_code == 200


@pytest.mark.anyio
async def test_details_only_with_the_token(
    setup: HealthAppSetup, client: httpx.AsyncClient
) -> None:
    setup.db.fail = "auth failed for postgresql://app:hunter2@db/app"
    await setup.refresh()
    anonymous = (await client.get("/healthz")).json()
    assert_health_json(anonymous)
    db = anonymous["checks"]["db:responseTime"][0]
    assert db["output"] == "reason withheld"
    assert "observedValue" not in anonymous["checks"]["loop:responseTime"][0]
    for wrong in ("Bearer nope", f"Basic {TOKEN}", TOKEN, "Bearer"):
        body = (await client.get("/healthz", headers={"Authorization": wrong})).json()
        assert body == anonymous
    authorised = (await client.get("/healthz", headers=AUTH)).json()
    assert_health_json(authorised)
    assert authorised["checks"]["db:responseTime"][0]["output"] == (
        "auth failed for postgresql://app:***@db/app"
    )
    loop = authorised["checks"]["loop:responseTime"][0]
    assert (loop["observedValue"], loop["observedUnit"]) == (1.5, "ms")
    assert authorised["checks"]["db:responseTime"][0]["observedUnit"] == "ms"
    raw = (await client.get("/healthz?verbose", headers=AUTH)).text
    assert "hunter2" not in raw


@pytest.mark.anyio
async def test_verbose_is_the_kubernetes_text_form(
    setup: HealthAppSetup, client: httpx.AsyncClient
) -> None:
    setup.db.fail = "connection refused"
    setup.cache.fail = "slow"
    await setup.refresh()
    response = await client.get("/readyz?verbose")
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == (
        "[-]db failed: reason withheld\n"
        "[+]cache degraded: reason withheld\n"
        "[+]loop ok\n"
        "readyz check failed\n"
    )
    response = await client.get("/readyz?verbose&exclude=db", headers=AUTH)
    assert response.status_code == 200
    assert response.text == (
        "[+]cache degraded: slow\n[+]loop ok\n[+]db excluded: ok\nreadyz check passed\n"
    )
    assert (await client.get("/livez?verbose=1")).text == "[+]loop ok\nlivez check passed\n"


@pytest.mark.anyio
async def test_exclude_is_repeatable_and_comma_separated(
    setup: HealthAppSetup, client: httpx.AsyncClient
) -> None:
    setup.db.fail = "down"
    setup.cache.fail = "down"
    await setup.refresh()
    for query in ("exclude=db&exclude=cache", "exclude=db,cache"):
        doc = (await client.get(f"/readyz?{query}")).json()
        assert doc["status"] == "pass"
        assert set(doc["checks"]) == {"loop:responseTime"}
        assert doc["notes"] == ["excluded: db, cache"]


@pytest.mark.anyio
async def test_single_check_paths(setup: HealthAppSetup, client: httpx.AsyncClient) -> None:
    setup.db.fail = "down"
    await setup.refresh()
    response = await client.get("/healthz/db")
    assert response.status_code == 503
    assert set(response.json()["checks"]) == {"db:responseTime"}
    assert (await client.get("/readyz/cache")).status_code == 200
    assert (await client.get("/livez/loop")).status_code == 200
    missing = await client.get("/livez/db")  # not a liveness check
    assert missing.status_code == 404
    assert (await client.get("/healthz/nope")).status_code == 404
    assert (await client.get("/healthz/db?verbose")).text == (
        "[-]db failed: reason withheld\nhealthz check failed\n"
    )


@pytest.mark.anyio
async def test_head_requests(client: httpx.AsyncClient) -> None:
    response = await client.head("/readyz")
    assert response.status_code == 200
    assert response.content == b""


@pytest.mark.anyio
async def test_unknown_and_stale_results_are_not_passed_off_as_healthy(
    clock: FakeClock,
) -> None:
    monitor = HealthMonitor(clock=clock)
    monitor.register("db", CountingCheck(), interval=10, timeout=1, jitter=0)
    transport = httpx.ASGITransport(app=health_app(monitor, manage_monitor=False))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        item = response.json()["checks"]["db:responseTime"][0]
        assert item == {"componentType": "component", "status": "fail", "output": "no result yet"}
        await monitor.check_now("db")
        assert (await client.get("/readyz")).status_code == 200
        clock.advance(monitor.options("db").max_age + 1)
        response = await client.get("/readyz")
        assert response.status_code == 503
        output = response.json()["checks"]["db:responseTime"][0]["output"]
        assert output == "latest result is 22 s old, too old to trust"


@pytest.mark.anyio
async def test_draining_fails_readiness(setup: HealthAppSetup, client: httpx.AsyncClient) -> None:
    setup.monitor.start_draining(5)
    response = await client.get("/readyz")
    assert response.status_code == 503
    doc = response.json()
    assert_health_json(doc)
    assert doc["checks"]["shutdown"] == [{"status": "fail", "output": "draining"}]
    assert (await client.get("/readyz?verbose")).text.endswith(
        "[-]shutdown failed: draining\nreadyz check failed\n"
    )
    assert (await client.get("/livez")).status_code == 200
    assert (await client.get("/readyz/db")).status_code == 200  # one check: its own status


def test_lifespan_starts_the_monitor_and_installs_the_drain_handler() -> None:
    monitor = HealthMonitor()
    monitor.register("db", CountingCheck(), interval=60)
    app = health_app(monitor, drain_seconds=5)
    before = signal.getsignal(signal.SIGTERM)

    async def lifespan() -> None:
        async with app.router.lifespan_context(app):
            assert monitor.running
            assert signal.getsignal(signal.SIGTERM) is not before
            await until(lambda: monitor.status("db") == HealthStatus.PASS)
        assert not monitor.running

    asyncio.run(lifespan())
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.anyio
async def test_requests_never_run_checks(setup: HealthAppSetup, client: httpx.AsyncClient) -> None:
    before = (setup.db.calls, setup.cache.calls, setup.loop.calls)
    await asyncio.gather(*(client.get(p) for p in ("/readyz", "/livez", "/healthz") * 50))
    assert (setup.db.calls, setup.cache.calls, setup.loop.calls) == before


def test_bad_options_are_rejected() -> None:
    monitor = HealthMonitor()
    with pytest.raises(ValueError, match="show_details must be"):
        health_app(monitor, show_details="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="token must be a non-empty string"):
        health_app(monitor, token="")


@pytest.fixture
def uvicorn_app() -> Iterator[tuple[str, HealthMonitor]]:
    """health_app under a real uvicorn; its lifespan starts and stops the monitor."""
    monitor = HealthMonitor()
    monitor.register("redis", redis_check("redis://127.0.0.1:6379/0"), interval=30, timeout=2)
    monitor.register(
        "postgres", postgres_check("postgresql://postgres@127.0.0.1:5432/test"), interval=30
    )
    with serving(health_app(monitor), lifespan="on") as url:
        yield url, monitor


def test_real_uvicorn_serves_background_results(
    uvicorn_app: tuple[str, HealthMonitor],
) -> None:
    base, monitor = uvicorn_app
    assert monitor.running  # started by the app's lifespan
    wait_until(lambda: all(r.result is not None for r in monitor.reports()))
    with httpx.Client(base_url=base, timeout=5) as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        doc = response.json()
        assert_health_json(doc)
        assert doc["checks"]["redis:responseTime"][0]["componentType"] == "datastore"
        assert client.get("/readyz?verbose").text == (
            "[+]redis ok\n[+]postgres ok\nreadyz check passed\n"
        )
        families = {f.name for f in text_string_to_metric_families(client.get("/metrics").text)}
        assert "selfheal_health_check_status" in families


@pytest.mark.anyio
async def test_private_redis_stops_then_readiness_fails_and_recovers() -> None:
    monitor = HealthMonitor()
    transport = httpx.ASGITransport(app=health_app(monitor))
    with redis_server() as server:
        monitor.register("cache", redis_check(server.url), interval=0.05, timeout=1, jitter=0)
        await monitor.start()
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                await until(lambda: monitor.status("cache") == HealthStatus.PASS)
                assert (await client.get("/readyz")).status_code == 200
                server.stop()
                await until(lambda: monitor.status("cache") == HealthStatus.FAIL)
                assert (await client.get("/readyz")).status_code == 503
                server.start()
                await until(lambda: monitor.status("cache") == HealthStatus.PASS)
                assert (await client.get("/readyz")).status_code == 200
        finally:
            await monitor.stop()


@pytest.mark.anyio
async def test_nan_and_infinity_in_observed_values_are_valid_json(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)

    async def odd() -> dict[str, object]:
        return {"observedValue": float("nan"), "peaks": [float("inf"), 1.0]}

    monitor.register("odd", odd)
    await monitor.check_now("odd")
    app = health_app(monitor, token=TOKEN, manage_monitor=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/healthz", headers=AUTH)

    def refuse(constant: str) -> object:
        raise ValueError(f"{constant} is not JSON")

    doc = json.loads(response.text, parse_constant=refuse)
    assert doc["checks"]["odd:responseTime"][0]["observedValue"] is None
