"""The dashboard in a real Chromium (Playwright) against a real uvicorn over loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from selfheal.events import Event, EventBus
from selfheal.web.dashboard import dashboard_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TOKEN = "s3cret-token"


class Source:
    """A snapshot the test changes by hand."""

    def __init__(self) -> None:
        self.state: dict[str, Any] = {
            "app": "shop",
            "programs": [
                {"name": "web", "state": "RUNNING", "pid": 101, "uptime": 5.0, "restarts": 0},
            ],
            "checks": [{"name": "db", "status": "pass", "kind": "readiness", "age": 0.4}],
            "synthetic": [],
            "breakers": [{"name": "orders", "state": "closed"}],
            "features": [{"name": "recommendations", "available": True}],
            "incidents": [],
            "chaos": {"enabled": False, "active": [], "runs": []},
        }

    def snapshot(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.state))


class Actions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def restart_program(self, name: str) -> None:
        if name != "web":
            raise KeyError(name)
        self.calls.append(("restart", name))

    async def stop_program(self, name: str) -> None:
        self.calls.append(("stop", name))

    async def stop_chaos(self) -> None:
        self.calls.append(("chaos-stop", ""))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, Source, Actions, EventBus]]:
    source, actions, bus = Source(), Actions(), EventBus()
    private = getattr(request, "param", False)  # whether reading needs the token too
    app = dashboard_app(
        source, bus=bus, token=TOKEN, actions=actions, heartbeat=30.0, read_requires_token=private
    )
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    _wait(lambda: server.started)
    yield f"http://127.0.0.1:{port}/", source, actions, bus
    server.should_exit = True
    server.force_exit = True  # open event streams would hold a graceful shutdown
    thread.join(10)


def test_buttons_need_the_token_and_call_the_actions(
    served: tuple[str, Source, Actions, EventBus],
) -> None:
    base, _, actions, _ = served
    assert httpx.post(f"{base}api/programs/web/restart").status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(f"{base}api/programs/web/restart", headers=wrong).status_code == 401
    assert actions.calls == []
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.post(f"{base}api/programs/web/restart", headers=good).status_code == 200
    assert httpx.post(f"{base}api/programs/nope/stop", headers=good).status_code == 200
    assert httpx.post(f"{base}api/programs/zzz/restart", headers=good).status_code == 404
    assert httpx.post(f"{base}api/chaos/stop", headers=good).status_code == 200
    assert actions.calls == [("restart", "web"), ("stop", "nope"), ("chaos-stop", "")]


@pytest.mark.anyio
async def test_without_a_token_every_button_is_refused() -> None:
    app = dashboard_app(Source(), token=None, actions=Actions())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://dash") as client:
        response = await client.post("/api/chaos/stop", headers={"Authorization": "Bearer x"})
    assert response.status_code == 403
    assert "no control token" in response.json()["error"]


def test_the_snapshot_is_redacted(served: tuple[str, Source, Actions, EventBus]) -> None:
    base, source, _, _ = served
    source.state["checks"][0]["output"] = "cannot reach postgresql://app:hunter2@db/app"
    body = httpx.get(f"{base}api/snapshot").text
    assert "hunter2" not in body
    assert "db/app" in body


def test_the_page_is_live_and_refuses_buttons_without_the_token(
    served: tuple[str, Source, Actions, EventBus],
) -> None:
    from playwright.sync_api import sync_playwright

    base, source, actions, bus = served
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page(viewport={"width": 420, "height": 900})  # a narrow window
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(base)
            row = page.locator('#programs tr[data-program="web"]')
            row.wait_for()
            assert "RUNNING" in row.inner_text()

            # A change published on the bus reaches the open page without a reload.
            source.state["programs"][0].update(pid=202, restarts=1)
            bus.publish(Event("process.web.running", source="supervisor"))
            page.wait_for_function(
                "document.querySelector('#programs tr[data-program=web]').innerText"
                ".includes('202')",
                timeout=1000,
            )

            # Loading and live updates logged nothing; the refusal below logs its 401.
            assert errors == []
            page.click('button[data-action="restart"][data-program="web"]')
            page.wait_for_function(
                "document.querySelector('#toast').textContent.includes('refused')", timeout=5000
            )
            assert actions.calls == []

            page.fill("#token", TOKEN)
            page.click("#token-form button")
            page.click('button[data-action="restart"][data-program="web"]')
            _wait(lambda: actions.calls == [("restart", "web")])

            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard-narrow.png"), full_page=True)
        finally:
            browser.close()
    assert all("401" in error for error in errors), errors


@pytest.mark.parametrize("served", [True], indirect=True)
def test_where_reading_needs_the_token_the_page_asks_for_it_and_then_shows_all(
    served: tuple[str, Source, Actions, EventBus],
) -> None:
    from playwright.sync_api import sync_playwright

    base, source, _, bus = served
    assert httpx.get(f"{base}api/snapshot").status_code == 401
    assert httpx.get(f"{base}api/stream").status_code == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert httpx.get(f"{base}api/snapshot", headers=good).json()["app"] == "shop"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.goto(base)
            page.wait_for_function(
                "document.querySelector('#conn').textContent.includes('control token')",
                timeout=5000,
            )
            assert page.locator('#programs tr[data-program="web"]').count() == 0
            page.fill("#token", TOKEN)
            page.click("#token-form button")
            row = page.locator('#programs tr[data-program="web"]')
            row.wait_for()
            assert "RUNNING" in row.inner_text()
            # The stream opened with the token stays live.
            source.state["programs"][0].update(pid=303)
            bus.publish(Event("process.web.running", source="supervisor"))
            page.wait_for_function(
                "document.querySelector('#programs tr[data-program=web]').innerText"
                ".includes('303')",
                timeout=5000,
            )
        finally:
            browser.close()


@pytest.mark.anyio
async def test_the_snapshot_reads_real_components(tmp_path: Path) -> None:
    import selfheal
    from selfheal.chaos import ChaosMonkey
    from selfheal.testing import FakeClock
    from selfheal.web.dashboard import ComponentsSnapshot

    clock = FakeClock()
    monitor = selfheal.HealthMonitor(clock=clock)

    async def db() -> None:
        raise ConnectionError("postgresql://app:hunter2@db/app refused")

    monitor.register("db", db, interval=5, timeout=1)
    await monitor.check_now("db")
    breaker = selfheal.CircuitBreaker(failure_threshold=1, name="orders", clock=clock)
    with pytest.raises(ZeroDivisionError):
        breaker.call(lambda: 1 / 0)
    features = selfheal.FeatureManager(clock=clock)
    features.register("recommendations", breaker, fallback_func=list)
    monkey = ChaosMonkey(enabled=False, clock=clock)
    monkey.register_target("cache", lambda: None, lambda: None, frequency=60)

    snap = ComponentsSnapshot(
        "shop", monitor=monitor, features=features, breakers=[breaker], chaos=monkey, clock=clock
    ).snapshot()

    assert snap["checks"][0]["name"] == "db"
    assert snap["checks"][0]["status"] == "fail"
    assert snap["breakers"] == [{"name": "orders", "state": "open"}]
    assert snap["features"] == [{"name": "recommendations", "available": False}]
    assert snap["chaos"]["enabled"] is False
    assert snap["chaos"]["runs"][0]["name"] == "cache"
    json.dumps(snap)  # the page gets it as JSON
