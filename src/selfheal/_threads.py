"""Blocking calls run in a daemon thread of their own, awaited from asyncio.

Not `asyncio.to_thread`: its pool is shared and joined at interpreter exit, so a call that
hangs (a check on a dead mount, a user's recovery function, a close at shutdown while the pool
is full of those) would keep a worker for good, starve everything else that uses the pool and
block exit. A thread per call costs ~50 µs, which is nothing next to what these calls do.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from selfheal._calls import contained

__all__ = ["in_own_thread", "start_in_thread"]

_T = TypeVar("_T")


def start_in_thread(fn: Callable[..., _T], *args: Any, name: str) -> concurrent.futures.Future[_T]:
    """Start ``fn(*args)`` in a daemon thread named ``selfheal-<name>``; return its future.

    The future is already running, so cancelling it (or a waiter's cancellation) never
    abandons a result half-delivered. `BaseException`s such as ``sys.exit()`` in user code
    become a `RuntimeError`: they must end that call, not the daemon.
    """
    future: concurrent.futures.Future[_T] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            value = fn(*args)
        except Exception as exc:  # noqa: BLE001 - handed to whoever awaits the future
            future.set_exception(exc)
        except BaseException as exc:  # noqa: BLE001 - see the docstring
            future.set_exception(contained(exc, name))
        else:
            future.set_result(value)

    threading.Thread(target=run, name=f"selfheal-{name}", daemon=True).start()
    return future


async def in_own_thread(fn: Callable[..., _T], *args: Any, name: str | None = None) -> _T:
    """Return ``fn(*args)``, computed in a daemon thread of its own.

    Cancelling the awaiting task abandons the call; its thread ends when the call does.

    Args:
        fn: The blocking callable.
        *args: Its arguments.
        name: For the thread's name and errors (default: `fn`'s qualified name).
    """
    label = name or str(getattr(fn, "__qualname__", None) or repr(fn))
    result: _T = await asyncio.wrap_future(start_in_thread(fn, *args, name=label))
    return result
