"""Bulkhead success path (no contention): selfheal against hyx's bulkhead (async)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from _harness import Case

import selfheal


def _plain() -> int:
    return 1


async def _aplain() -> int:
    return 1


def _bare() -> Callable[[], Any]:
    return _plain


def _selfheal() -> Callable[[], Any]:
    return selfheal.Bulkhead(10, max_waiting=10)(_plain)


def _abare() -> Callable[[], Any]:
    return _aplain


def _aselfheal() -> Callable[[], Any]:
    return selfheal.Bulkhead(10, max_waiting=10)(_aplain)


def _ahyx() -> Callable[[], Any]:
    from hyx.bulkhead import bulkhead

    return bulkhead(max_concurrency=10, max_capacity=20)(_aplain)


CASES: list[Case] = [
    Case("sync bulkhead", "bare", _bare),
    Case("sync bulkhead", "selfheal", _selfheal),
    Case("async bulkhead", "bare", _abare, is_async=True),
    Case("async bulkhead", "selfheal", _aselfheal, is_async=True),
    Case("async bulkhead", "hyx", _ahyx, is_async=True),
]
