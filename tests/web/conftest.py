"""Fixtures of the web tests: a monitor with three checks behind the ASGI app, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from health_helpers import HealthAppSetup
from selfheal.testing import FakeClock


@pytest.fixture
async def setup(clock: FakeClock) -> HealthAppSetup:
    """The three checks, each run once."""
    s = HealthAppSetup(clock)
    await s.refresh()
    return s


@pytest.fixture
async def client(setup: HealthAppSetup) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the setup's ASGI app."""
    transport = httpx.ASGITransport(app=setup.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
