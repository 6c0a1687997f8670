"""Async timeout success path: selfheal's `Timeout` against `asyncio.timeout`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from _harness import Case

import selfheal


async def _aplain() -> int:
    return 1


def _bare() -> Callable[[], Any]:
    return _aplain


def _selfheal() -> Callable[[], Any]:
    return selfheal.Timeout(10.0)(_aplain)


def _asyncio_timeout() -> Callable[[], Any]:
    async def guarded() -> int:
        async with asyncio.timeout(10.0):
            return await _aplain()

    return guarded


CASES: list[Case] = [
    Case("async timeout", "bare", _bare, is_async=True),
    Case("async timeout", "selfheal", _selfheal, is_async=True),
    Case("async timeout", "asyncio.timeout", _asyncio_timeout, is_async=True),
]
