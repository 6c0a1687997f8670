"""Fallback: when a call fails, answer with something else instead of the error."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from selfheal._calls import checked_keywords
from selfheal.events import EventBus, Severity
from selfheal.policies._base import Policy
from selfheal.policies._naming import check_name, name_of

__all__ = ["Fallback", "fallback"]

P = ParamSpec("P")
R = TypeVar("R")

_NO_VALUE: Any = object()


@checked_keywords
class Fallback(Policy):
    """Answer a failed call with a value or with another function's answer.

    Give exactly one of `value` and `func`; `fallback` picks for you.

    Args:
        value: Returned as is when the call fails.
        func: Called with the failed call's arguments; a coroutine function (or any
            function returning an awaitable) is awaited when the protected function is async.
        on: The exception types that trigger the fallback; any other exception propagates.
        bus: Receives ``fallback.<name>.used`` with the error.
        name: The name in event types; defaults to the wrapped function's name.

    Raises:
        TypeError: If both or neither of `value` and `func` are given, or `on` is not
            exception types.
    """

    __slots__ = ("bus", "func", "name", "on", "value")

    def __init__(
        self,
        *,
        value: Any = _NO_VALUE,
        func: Callable[..., Any] | None = None,
        on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
        bus: EventBus | None = None,
        name: str | None = None,
    ) -> None:
        if (value is _NO_VALUE) == (func is None):
            raise TypeError("Fallback: give exactly one of value= and func=")
        if func is not None and not callable(func):
            raise TypeError(f"Fallback: func must be callable, got {func!r}")
        types = on if isinstance(on, tuple) else (on,)
        if not types or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in types
        ):
            raise TypeError(f"Fallback: on must be exception types, got {on!r}")
        check_name("Fallback", name)
        self.value = value
        self.func = func
        self.on = types
        self.bus = bus
        self.name = name

    def __repr__(self) -> str:
        what = f"func={self.func!r}" if self.func is not None else f"value={self.value!r}"
        return f"Fallback({what}, on={self.on!r})"

    def _used(self, name: str, exc: BaseException) -> None:
        bus = self.bus
        if bus is not None:
            bus.emit(f"fallback.{name}.used", name, Severity.WARNING, error=repr(exc))

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return `fn` answered by the fallback when it raises one of `on` (sync)."""
        name = name_of(self.name, fn)
        on, func, value, used = self.on, self.func, self.value, self._used

        def with_fallback(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return fn(*args, **kwargs)
            except on as exc:
                used(name, exc)
                if func is None:
                    return value  # type: ignore[no-any-return]
                return func(*args, **kwargs)  # type: ignore[no-any-return]

        return with_fallback

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return `fn` answered by the fallback when it raises one of `on` (async)."""
        name = name_of(self.name, fn)
        on, func, value, used = self.on, self.func, self.value, self._used

        async def with_fallback(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await fn(*args, **kwargs)
            except on as exc:
                used(name, exc)
                if func is None:
                    return value  # type: ignore[no-any-return]
                result = func(*args, **kwargs)
                if inspect.isawaitable(result):
                    result = await result
                return result  # type: ignore[no-any-return]

        return with_fallback


def fallback(
    value_or_func: Any,
    *,
    on: type[BaseException] | tuple[type[BaseException], ...] = (Exception,),
    bus: EventBus | None = None,
    name: str | None = None,
) -> Fallback:
    """Build a fallback policy: a callable is called with the call's arguments, else returned.

    To fall back to a function object as a *value*, use ``Fallback(value=fn)``.

    Args:
        value_or_func: The answer, or the function that computes it.
        on: The exception types that trigger the fallback (all `Exception` by default).
        bus: Receives ``fallback.<name>.used``.
        name: The name in event types; defaults to the wrapped function's name.

    Returns:
        A `Fallback` policy.
    """
    if callable(value_or_func):
        return Fallback(func=value_or_func, on=on, bus=bus, name=name)
    return Fallback(value=value_or_func, on=on, bus=bus, name=name)
