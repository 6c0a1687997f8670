"""The HTTP API over real HTTP: Toxiproxy's routes, statuses and error bodies; the token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from proxy_helpers import EchoServer

from selfheal.chaos import FaultProxy, FaultProxyServer

pytestmark = pytest.mark.anyio


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    server = FaultProxyServer(FaultProxy(), port=0)
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url or "") as client:
            yield client
    finally:
        await server.stop()


@pytest.fixture
async def echo() -> AsyncIterator[EchoServer]:
    async with EchoServer() as server:
        yield server


async def test_proxy_lifecycle(api: httpx.AsyncClient, echo: EchoServer) -> None:
    created = await api.post("/proxies", json={"name": "e", "upstream": echo.address})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == "e"
    assert body["upstream"] == echo.address
    assert body["enabled"] is True
    assert body["listen"].startswith("127.0.0.1:")
    assert body["toxics"] == []
    assert (await api.get("/proxies")).json() == {"e": body}
    down = await api.post("/proxies/e", json={"enabled": False})
    assert down.json()["enabled"] is False
    moved = await api.patch("/proxies/e", json={"listen": "127.0.0.1:0", "enabled": True})
    assert moved.json()["enabled"] is True
    assert (await api.delete("/proxies/e")).status_code == 204
    assert (await api.get("/proxies")).json() == {}


async def test_toxic_lifecycle(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await api.post("/proxies", json={"name": "e", "upstream": echo.address})
    added = await api.post(
        "/proxies/e/toxics",
        json={"type": "latency", "stream": "upstream", "attributes": {"latency": 10}},
    )
    assert added.status_code == 200
    assert added.json() == {
        "attributes": {"latency": 10, "jitter": 0},
        "name": "latency_upstream",
        "type": "latency",
        "stream": "upstream",
        "toxicity": 1.0,
    }
    changed = await api.patch(
        "/proxies/e/toxics/latency_upstream",
        json={"toxicity": 0.5, "attributes": {"jitter": 3, "time_limit": 60_000}},
    )
    assert changed.json()["attributes"] == {"latency": 10, "jitter": 3, "time_limit": 60_000}
    assert changed.json()["toxicity"] == 0.5
    again = await api.post("/proxies/e/toxics/latency_upstream", json={"toxicity": 1})
    assert again.json()["toxicity"] == 1.0
    shown = await api.get("/proxies/e/toxics/latency_upstream")
    assert shown.json() == again.json()
    assert (await api.get("/proxies/e/toxics")).json() == [again.json()]
    assert (await api.get("/proxies/e")).json()["toxics"] == [again.json()]
    assert (await api.delete("/proxies/e/toxics/latency_upstream")).status_code == 204
    assert (await api.get("/proxies/e/toxics")).json() == []


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "error"),
    [
        ("GET", "/proxies/nope", None, 404, "proxy not found: 'nope'"),
        ("DELETE", "/proxies/nope", None, 404, "proxy not found: 'nope'"),
        ("GET", "/proxies/nope/toxics/t", None, 404, "proxy not found: 'nope'"),
        ("POST", "/proxies", {"upstream": "127.0.0.1:1"}, 400, "missing required field: name"),
        ("POST", "/proxies", {"name": "x"}, 400, "missing required field: upstream"),
        (
            "POST",
            "/proxies",
            {"name": "x", "upstream": "127.0.0.1:1", "enabled": "yes"},
            400,
            "enabled must be true or false, got 'yes'",
        ),
        (
            "POST",
            "/proxies",
            {"name": "x", "upstream": "127.0.0.1:1", "listen": "127.0.0.1:99999"},
            400,
            "listen must be host:port (port 0-65535), got '127.0.0.1:99999'",
        ),
        ("POST", "/proxies", "{not json", 400, "bad request body: not JSON"),
        ("POST", "/populate", {"name": "x"}, 400, "bad request body: expected a JSON list"),
        (
            "POST",
            "/populate",
            [{"name": "a", "upstream": "127.0.0.1:1"}, {"name": "b"}],
            400,
            "missing required field: upstream at proxy 2",
        ),
        ("PUT", "/proxies", {}, 405, "Method Not Allowed: PUT /proxies"),
        ("GET", "/nothing", None, 404, "Not Found: GET /nothing"),
    ],
)
async def test_errors_are_toxiproxys_json(
    api: httpx.AsyncClient,
    method: str,
    path: str,
    body: object,
    status: int,
    error: str,
) -> None:
    if isinstance(body, str):
        response = await api.request(method, path, content=body)
    else:
        response = await api.request(method, path, json=body)
    assert response.status_code == status
    data = response.json()
    assert data["status"] == status
    assert data["error"].startswith(error)
    assert (await api.get("/proxies")).json() == {}  # nothing half-created


async def test_toxic_errors_name_proxy_and_toxic(api: httpx.AsyncClient, echo: EchoServer) -> None:
    await api.post("/proxies", json={"name": "e", "upstream": echo.address})
    missing = await api.delete("/proxies/e/toxics/nope")
    assert missing.json() == {"error": "toxic not found: 'nope'", "status": 404}
    await api.post("/proxies/e/toxics", json={"type": "timeout"})
    twice = await api.post("/proxies/e/toxics", json={"type": "timeout"})
    assert twice.json() == {"error": "toxic already exists: 'timeout_downstream'", "status": 409}
    exists = await api.post("/proxies", json={"name": "e", "upstream": echo.address})
    assert exists.json() == {"error": "proxy already exists: 'e'", "status": 409}


async def test_populate_keeps_equal_proxies_and_replaces_changed_ones(
    api: httpx.AsyncClient, echo: EchoServer
) -> None:
    first = await api.post("/populate", json=[{"name": "a", "upstream": echo.address}])
    assert first.status_code == 201
    (a,) = first.json()["proxies"]
    same = await api.post(
        "/populate",
        json=[
            {"name": "a", "upstream": echo.address, "listen": a["listen"]},
            {"name": "b", "upstream": echo.address, "enabled": False},
        ],
    )
    assert [p["name"] for p in same.json()["proxies"]] == ["a", "b"]
    assert same.json()["proxies"][0] == a
    assert same.json()["proxies"][1]["enabled"] is False
    changed = await api.post("/populate", json=[{"name": "a", "upstream": "127.0.0.1:1"}])
    assert changed.json()["proxies"][0]["upstream"] == "127.0.0.1:1"


async def test_populate_reports_what_it_did_before_failing(
    api: httpx.AsyncClient, echo: EchoServer
) -> None:
    first = await api.post("/proxies", json={"name": "a", "upstream": echo.address})
    taken = first.json()["listen"]
    response = await api.post(
        "/populate",
        json=[
            {"name": "b", "upstream": echo.address},
            {"name": "c", "upstream": echo.address, "listen": taken},
        ],
    )
    assert response.status_code == 500
    body = response.json()
    assert body["error"].startswith(f"listen {taken}: ")
    assert [p["name"] for p in body["proxies"]] == ["b"]


async def test_browsers_are_refused(api: httpx.AsyncClient) -> None:
    response = await api.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert response.status_code == 403
    assert response.json() == {"error": "User agent not allowed", "status": 403}


async def test_version(api: httpx.AsyncClient) -> None:
    body = (await api.get("/version")).json()
    assert set(body) == {"version", "toxiproxy_api"}


async def test_a_token_guards_everything_but_version() -> None:
    server = FaultProxyServer(FaultProxy(), port=0, token="s3cret")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url or "") as client:
            assert (await client.get("/version")).status_code == 200
            denied = await client.get("/proxies")
            assert denied.status_code == 401
            assert "Authorization: Bearer" in denied.json()["error"]
            wrong = await client.post("/reset", headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 401
            ok = await client.get("/proxies", headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200
    finally:
        await server.stop()


def test_off_loopback_the_api_needs_a_token() -> None:
    with pytest.raises(ValueError, match=r"0\.0\.0\.0 .*needs a token"):
        FaultProxyServer(host="0.0.0.0")
    FaultProxyServer(host="0.0.0.0", token="t")
    FaultProxyServer(host="::1")
    FaultProxyServer(host="localhost")
