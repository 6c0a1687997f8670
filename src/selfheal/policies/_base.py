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

from selfheal._calls import is_async_callable

__all__ = ["Policy"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")


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
    def __call__(self, fn: classmethod[T, P, R]) -> classmethod[T, P, R]: ...
    @overload
    def __call__(self, fn: staticmethod[P, R]) -> staticmethod[P, R]: ...  # type: ignore[overload-overlap]
    @overload
    def __call__(
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]: ...
    def __call__(self, fn: Any) -> Any:
        """Decorate `fn`, choosing the async wrapper for coroutine functions.

        Also takes a `classmethod` or `staticmethod` (decorate above it) and objects with an
        ``async def __call__``.

        Raises:
            TypeError: If `fn` is a generator function, whose errors happen while it is
                iterated, after the policy has returned.
        """
        if isinstance(fn, classmethod | staticmethod):
            return type(fn)(self(fn.__func__))
        if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
            name = getattr(fn, "__name__", repr(fn))
            raise TypeError(
                f"{type(self).__name__}: cannot protect generator function {name!r}: a policy "
                "sees only the call that creates the generator, not its iteration, where the "
                "work and the errors happen; decorate a function that consumes it instead "
                "(e.g. one returning list(...))"
            )
        wrapped = self.awrap(fn) if is_async_callable(fn) else self.wrap(fn)
        if wrapped is fn:  # nothing added: fn.__wrapped__ = fn would be a loop
            return fn
        decorated = functools.wraps(fn)(wrapped)
        self._attach(decorated)
        return decorated

    def _attach(self, wrapper: Any) -> None:  # noqa: B027 - a hook most policies leave empty
        """Give a function this policy decorated its attributes (a retry's ``statistics``)."""

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` once under this policy.

        This wraps on every call; decorate instead on a hot path.

        Raises:
            TypeError: If `fn` is a coroutine function (use `acall`).
        """
        if is_async_callable(fn):
            raise TypeError(
                f"{type(self).__name__}.call: {fn!r} is async; use 'await policy.acall(...)', "
                "or the coroutine would run unprotected"
            )
        return self.wrap(fn)(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `fn(*args, **kwargs)` once under this policy."""
        return await self.awrap(fn)(*args, **kwargs)
