"""The one shape every resilience policy has, so that any of them composes in a pipeline.

A policy turns a function into a protected function of the same signature: `wrap` for a sync
function, `awrap` for a coroutine function. Wrapping happens once (at decoration or pipeline
build time); the returned function must not allocate per successful call beyond what the
protected call itself does, which is what keeps a pipeline of five policies cheap.
"""

from __future__ import annotations

import functools
import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

__all__ = ["Policy"]

P = ParamSpec("P")
R = TypeVar("R")


class Policy(ABC):
    """Base class of retry, breaker, timeout, bulkhead and fallback.

    Subclasses implement `wrap` and `awrap`; `__call__` (decorator), `call` and `acall` come
    from here. Decorating an ``async def`` gives an async wrapper, a ``def`` a sync one.
    """

    __slots__ = ()

    @abstractmethod
    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return a sync function that runs `fn` under this policy."""

    @abstractmethod
    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return a coroutine function that runs `fn` under this policy."""

    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Callable[P, Any]) -> Callable[P, Any]:
        """Decorate `fn`, choosing the async wrapper for coroutine functions."""
        wrapped = self.awrap(fn) if inspect.iscoroutinefunction(fn) else self.wrap(fn)
        return functools.wraps(fn)(wrapped)

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` once under this policy.

        This wraps on every call; decorate instead on a hot path.
        """
        return self.wrap(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `fn(*args, **kwargs)` once under this policy."""
        return await self.awrap(fn)(*args, **kwargs)
