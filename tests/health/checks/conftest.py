"""Fixtures of the built-in checks' tests: an HTTP target under a real uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from health_helpers import serving


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
    """The base URL of an app with /ok, /status (JSON), /broken (500), /slow and /hang."""
    with serving(_TARGET) as url:
        yield url
