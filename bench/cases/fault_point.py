"""Injection points with no active fault: what leaving ``FaultPoint``/``inject`` in costs.

The rows are the bare call, the call decorated with ``FaultPoint`` (a one-attribute check
per call while no fault is active) and the bare call followed by an inline ``inject``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from _harness import Case

from selfheal.chaos import FaultPoint, ainject, inject


def _bare() -> Callable[[], Any]:
    def target() -> int:
        return 1

    return target


def _decorated() -> Callable[[], Any]:
    return FaultPoint("bench.point")(_bare())


def _inline() -> Callable[[], Any]:
    def target() -> int:
        return inject("bench.inline", 1)

    return target


def _abare() -> Callable[[], Awaitable[Any]]:
    async def target() -> int:
        return 1

    return target


def _adecorated() -> Callable[[], Awaitable[Any]]:
    return FaultPoint("bench.apoint")(_abare())


def _ainline() -> Callable[[], Awaitable[Any]]:
    async def target() -> int | None:
        return await ainject("bench.ainline", 1)

    return target


CASES = [
    Case("sync fault point", "bare", _bare),
    Case("sync fault point", "selfheal", _decorated),
    Case("sync fault point", "selfheal inject()", _inline),
    Case("async fault point", "bare", _abare, is_async=True),
    Case("async fault point", "selfheal", _adecorated, is_async=True),
    Case("async fault point", "selfheal ainject()", _ainline, is_async=True),
]
