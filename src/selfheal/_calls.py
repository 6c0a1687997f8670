"""What every layer asks of a user's callable: is it async, and what is it called."""

from __future__ import annotations

import functools
import inspect

__all__ = ["describe", "is_async_callable"]


def is_async_callable(fn: object) -> bool:
    """Return whether calling `fn` gives a coroutine.

    True for an ``async def`` function or bound method, a partial of one, and an object whose
    ``__call__`` is ``async def``.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    if isinstance(fn, type):
        return False  # calling a class builds an instance, whatever its __call__ is
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async __call__ on instances
    )


def describe(fn: object) -> str:
    """Return a readable name for `fn` (its qualified name, else its repr)."""
    return str(getattr(fn, "__qualname__", None) or repr(fn))
