"""Fixtures of the fleet tests: one private redis-server per module, a fresh prefix per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from fleet_helpers import FleetRedis, fleet_redis

_prefixes = itertools.count(1)


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[FleetRedis]:
    """A redis-server the tests of a module share; tests that stop or pause Redis make their own."""
    with fleet_redis() as server:
        yield server


@pytest.fixture
def redis_url(shared_redis: FleetRedis) -> str:
    return shared_redis.url


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses, so tests on the shared server never see each other."""
    return f"t{next(_prefixes)}"


@pytest.fixture
def own_redis() -> Iterator[FleetRedis]:
    """A redis-server of the test's own, to stop, restart or pause."""
    with fleet_redis() as server:
        yield server
