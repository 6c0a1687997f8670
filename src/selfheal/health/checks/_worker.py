"""One check's blocking call at a time, in a daemon thread (sqlite, statvfs, a loop's lag)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from selfheal._threads import start_in_thread

__all__ = ["Worker"]

_T = TypeVar("_T")


class Worker:
    """Runs one check's blocking call in a daemon thread, one call at a time.

    Not `asyncio.to_thread`: its pool is shared and joined at exit, so a hung check would
    keep a worker forever and could block the interpreter from exiting. And not a new thread
    per run either: the caller abandons a run at its deadline (cancelling the await), but the
    blocked call keeps its thread, so a mount that stays dead would gain a thread every
    interval. A run that finds the previous call still blocked waits for that one instead.
    """

    __slots__ = ("_lock", "_name", "_pending")

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._pending: concurrent.futures.Future[Any] | None = None

    async def run(self, fn: Callable[[], _T]) -> _T:
        """Return `fn()`, computed in a thread (or the result of the call still running)."""
        with self._lock:
            future = self._pending
            if future is None or future.done():
                future = self._pending = start_in_thread(fn, name=self._name)
        result: _T = await asyncio.wrap_future(future)
        return result
