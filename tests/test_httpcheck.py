"""The HTTP check core: one request, judged by conditions, against a real server on loopback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from health_helpers import serving
from selfheal._httpcheck import MISSING, HttpConditions, json_path, timed_request
from selfheal.errors import CheckError


async def _slow(request: Request) -> Response:
    await asyncio.sleep(0.05)
    return PlainTextResponse("late")


async def _echo(request: Request) -> Response:
    return JSONResponse({"method": request.method, "token": request.headers.get("x-token")})


_APP = Starlette(
    routes=[
        Route(
            "/order",
            lambda r: JSONResponse(
                {"order": {"id": 7, "items": [{"sku": "a1"}, {"sku": "b2"}]}},
                headers={"X-Synthetic": "yes", "Set-Cookie": "session=s3cret"},
            ),
        ),
        Route("/slow", _slow),
        Route("/echo", _echo, methods=["GET", "POST"]),
    ]
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving(_APP) as url:
        yield url


@pytest.fixture
async def client(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=None) as c:
        yield c


def test_json_path_reads_mappings_and_lists() -> None:
    document = {"order": {"id": 7, "items": [{"sku": "a1"}, {"sku": "b2"}]}, "n": None}
    assert json_path(document, "order.id") == 7
    assert json_path(document, "order.items.1.sku") == "b2"
    assert json_path(document, "n") is None  # present, and null
    assert json_path(document, "order.items.2") is MISSING
    assert json_path(document, "order.items.x") is MISSING
    assert json_path(document, "order.id.more") is MISSING


@pytest.mark.anyio
async def test_a_response_meeting_every_condition_passes(client: httpx.AsyncClient) -> None:
    response, elapsed = await timed_request(client, "GET", "/order")
    conditions = HttpConditions(
        status=[200],
        body_contains='"sku"',
        body_matches=re.compile(r'"id":\s*7'),
        json_fields={"order.id": 7, "order.items.0.sku": "a1"},
        headers={"x-synthetic": "yes"},  # header names are case-insensitive
        max_response_time=5,
    )
    conditions.verify(response, elapsed, "GET /order")
    assert elapsed >= 0


@pytest.mark.parametrize(
    ("conditions", "message"),
    [
        (HttpConditions(status=[201]), "^HTTP 200 from GET /order$"),
        (HttpConditions(body_contains="nope"), "lacks 'nope'"),
        (HttpConditions(body_matches=re.compile("^x")), "does not match '\\^x'"),
        (HttpConditions(json_fields={"order.id": 8}), r"order\.id is 7, expected 8"),
        (HttpConditions(json_fields={"order.total": 1}), r"has no field 'order\.total'"),
        (HttpConditions(headers={"X-Missing": "1"}), "has no X-Missing header"),
        (HttpConditions(headers={"x-synthetic": "no"}), "header x-synthetic is 'yes', expected"),
    ],
)
@pytest.mark.anyio
async def test_the_first_condition_that_fails_is_named(
    client: httpx.AsyncClient, conditions: HttpConditions, message: str
) -> None:
    response, elapsed = await timed_request(client, "GET", "/order")
    with pytest.raises(CheckError, match=message):
        conditions.verify(response, elapsed, "GET /order")


@pytest.mark.anyio
async def test_values_from_the_response_are_redacted_in_failures(
    client: httpx.AsyncClient,
) -> None:
    response, elapsed = await timed_request(client, "GET", "/order")
    with pytest.raises(CheckError) as failure:
        HttpConditions(headers={"set-cookie": "other"}).verify(response, elapsed, "GET /order")
    assert str(failure.value) == "response of GET /order: header set-cookie is not as expected"


@pytest.mark.anyio
async def test_response_time_is_measured_and_judged(client: httpx.AsyncClient) -> None:
    response, elapsed = await timed_request(client, "GET", "/slow")
    assert elapsed >= 0.05
    with pytest.raises(CheckError, match=r"^GET /slow took [0-9]+ ms \(more than 10 ms\)$"):
        HttpConditions(max_response_time=0.01).verify(response, elapsed, "GET /slow")


@pytest.mark.anyio
async def test_a_request_carries_what_the_caller_gives(client: httpx.AsyncClient) -> None:
    response, _ = await timed_request(client, "POST", "/echo", headers={"X-Token": "t1"})
    assert response.json() == {"method": "POST", "token": "t1"}
