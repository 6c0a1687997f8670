"""Pipeline: several policies around one call, outermost first.

``Pipeline(a, b, c)(fn)`` is ``a(b(c(fn)))``: the wrappers are nested once, when the pipeline
wraps the function, so a successful call costs only what each policy's own wrapper costs;
the pipeline adds no frame and allocates nothing per call.

The order you give is kept. The recommended one, outermost first::

    fallback            answer something useful when everything below gave up
    bulkhead            limit concurrency for the whole operation, retries included
    retry(deadline=)    try again, within an overall deadline
    circuit breaker     fail fast while the dependency is down (each attempt counts)
    timeout             bound each attempt; fires at the overall deadline if that is nearer
    the call

Why: the fallback must see the final failure; the bulkhead must count a call once, not per
attempt; the breaker inside the retry records every attempt, and its open state stops the
retry quickly (retry ``on=`` should not include `CircuitBreakerError` for that reason); the
timeout is innermost so each attempt gets its own time, and the retry's ``deadline`` is
visible to it (and to the call, via `selfheal.remaining()`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from selfheal.policies._base import Policy

__all__ = ["Pipeline", "pipeline"]

P = ParamSpec("P")
R = TypeVar("R")


class Pipeline(Policy):
    """Policies applied around a call, the first given outermost.

    Any `Policy` subclass can take part; a pipeline is itself a `Policy`, so pipelines nest.

    Args:
        *policies: The policies, outermost first.

    Raises:
        TypeError: If an argument is not a `Policy`.
    """

    __slots__ = ("policies",)

    def __init__(self, *policies: Policy) -> None:
        for position, policy in enumerate(policies):
            if not isinstance(policy, Policy):
                raise TypeError(
                    f"Pipeline: argument {position} must be a selfheal Policy (retry, "
                    f"CircuitBreaker, Timeout, Bulkhead, Fallback, Pipeline), got {policy!r}"
                )
        self.policies: tuple[Policy, ...] = policies

    def __repr__(self) -> str:
        return f"Pipeline({', '.join(map(repr, self.policies))})"

    def __len__(self) -> int:
        return len(self.policies)

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return `fn` wrapped by every policy, the first outermost (sync)."""
        wrapped = fn
        for policy in reversed(self.policies):
            layer = policy.wrap(wrapped)
            if layer is not wrapped:
                # Each layer takes the original's name, so outer policies' events name the call.
                wrapped = functools.update_wrapper(layer, fn)
        return wrapped

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return `fn` wrapped by every policy, the first outermost (async)."""
        if not self.policies:
            return _as_coroutine_function(fn)
        wrapped: Callable[P, Coroutine[Any, Any, R]] | None = None
        for policy in reversed(self.policies):
            inner = wrapped or fn
            layer = policy.awrap(inner)
            wrapped = layer if layer is inner else functools.update_wrapper(layer, fn)
        assert wrapped is not None
        return wrapped


def _as_coroutine_function(fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    @functools.wraps(fn)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        return await fn(*args, **kwargs)

    return call


def pipeline(*policies: Policy) -> Pipeline:
    """Compose `policies` around a call, outermost first (see `Pipeline` for the order).

    Args:
        *policies: The policies, outermost first.

    Returns:
        A `Pipeline`, usable as a decorator on ``def`` and ``async def``.
    """
    return Pipeline(*policies)
