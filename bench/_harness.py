"""Measurement harness shared by the policy benchmarks: ns per call over a bare call.

Each case gives a zero-argument callable (sync) or coroutine function (async) that makes one
protected call of a trivial function; the harness times `n` calls, `repeats` times, and
subtracts the bare call measured the same way in the same run.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Case:
    """One row of a benchmark.

    Attributes:
        group: What is compared ("sync retry", "async breaker", ...); ratios are per group.
        name: Library and variant, e.g. "selfheal" or "tenacity".
        make: Builds the callable to time (called once, outside the timing).
        is_async: Whether `make()` returns a coroutine function.
    """

    group: str
    name: str
    make: Callable[[], Callable[[], Any]]
    is_async: bool = False


def _time_sync(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - start) / n


async def _time_async(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        await fn()
    return (time.perf_counter_ns() - start) / n


def measure(case: Case, n: int, repeats: int) -> list[float]:
    """Return `repeats` timings in ns per call of the case's callable."""
    fn = case.make()
    gc.collect()
    if case.is_async:

        async def run() -> list[float]:
            await fn()  # warm up
            return [await _time_async(fn, n) for _ in range(repeats)]

        return asyncio.run(run())
    fn()
    return [_time_sync(fn, n) for _ in range(repeats)]


def cyclic_garbage(case: Case, calls: int = 10_000) -> int:
    """Return how many objects the garbage collector finds after `calls` calls (0 is the goal)."""
    fn = case.make()

    async def arun() -> None:
        for _ in range(calls):
            await fn()

    gc.collect()
    gc.disable()
    try:
        if case.is_async:
            asyncio.run(arun())
            gc.collect()  # asyncio.run's own loop objects are not the policy's garbage
        else:
            for _ in range(calls):
                fn()
        return gc.collect()
    finally:
        gc.enable()


def median(values: list[float]) -> float:
    """Return the median."""
    return statistics.median(values)
