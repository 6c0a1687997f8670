"""Fixtures of the synthetic tests: one real shop server per module, reset for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from health_helpers import serving
from synthetic_helpers import Shop


@pytest.fixture(scope="module")
def _shop_server() -> Iterator[tuple[Shop, str]]:
    shop = Shop()
    with serving(shop.app()) as url:
        yield shop, url
    shop.gate.set()


@pytest.fixture
def shop(_shop_server: tuple[Shop, str]) -> Iterator[Shop]:
    shop, _ = _shop_server
    shop.reset()
    yield shop
    shop.gate.set()


@pytest.fixture
def shop_url(_shop_server: tuple[Shop, str], shop: Shop) -> str:
    return _shop_server[1]
