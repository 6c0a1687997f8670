"""Circuit breaker success path (CLOSED): selfheal against pybreaker, circuitbreaker and hyx.

Every breaker is built with its defaults and used as a decorator, the way its documentation
shows; the protected function returns a constant.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from _harness import Case

from selfheal import CircuitBreaker


def _bare() -> Callable[[], Any]:
    def target() -> int:
        return 1

    return target


def _selfheal() -> Callable[[], Any]:
    return CircuitBreaker(name="bench")(_bare())


def _pybreaker() -> Callable[[], Any]:
    import pybreaker

    return pybreaker.CircuitBreaker(name="bench")(_bare())


def _circuitbreaker() -> Callable[[], Any]:
    import circuitbreaker

    return circuitbreaker.CircuitBreaker(name="bench")(_bare())


def _abare() -> Callable[[], Awaitable[Any]]:
    async def target() -> int:
        return 1

    return target


def _aselfheal() -> Callable[[], Awaitable[Any]]:
    return CircuitBreaker(name="bench")(_abare())


def _acircuitbreaker() -> Callable[[], Awaitable[Any]]:
    import circuitbreaker

    return circuitbreaker.CircuitBreaker(name="abench")(_abare())


def _ahyx() -> Callable[[], Awaitable[Any]]:
    from hyx.circuitbreaker import consecutive_breaker

    return consecutive_breaker()(_abare())


CASES: list[Case] = [
    Case("sync breaker", "bare", _bare),
    Case("sync breaker", "selfheal", _selfheal),
    Case("sync breaker", "pybreaker", _pybreaker),
    Case("sync breaker", "circuitbreaker", _circuitbreaker),
    Case("async breaker", "bare", _abare, is_async=True),
    Case("async breaker", "selfheal", _aselfheal, is_async=True),
    Case("async breaker", "circuitbreaker", _acircuitbreaker, is_async=True),
    Case("async breaker", "hyx", _ahyx, is_async=True),
]
