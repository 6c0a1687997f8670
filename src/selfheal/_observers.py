"""A list of callbacks that are all told the same thing, none of them able to break the others.

Components that record results (the scheduler, the health monitor) tell observers about each
one: metrics, status pages, the synthetic tester's history. An observer is user code: its
exceptions are logged, never raised into the component, and it may remove itself while the
others are being called.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Generic, ParamSpec

__all__ = ["Observers"]

_P = ParamSpec("_P")

# Every Observers' lock, replaced in a forked child: the thread that held one is gone there.
_ALL: weakref.WeakSet[Observers[...]] = weakref.WeakSet()


class Observers(Generic[_P]):
    """Callbacks called in the order they were added, each isolated from the others' errors.

    Args:
        logger: Where an observer's exception is logged.
        what: Names the observers in that log line (``"health observer"``).
    """

    __slots__ = ("__weakref__", "_callbacks", "_lock", "_logger", "_what")

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self._logger = logger
        self._what = what
        self._lock = threading.Lock()
        # Replaced, never mutated: `notify` iterates over a snapshot without the lock.
        self._callbacks: tuple[Callable[_P, object], ...] = ()
        _ALL.add(self)

    def add(self, callback: Callable[_P, object]) -> Callable[[], None]:
        """Add `callback`; return a function that removes it again."""
        with self._lock:
            self._callbacks = (*self._callbacks, callback)

        def remove() -> None:
            with self._lock:
                self._callbacks = tuple(c for c in self._callbacks if c is not callback)

        return remove

    def notify(self, *args: _P.args, **kwargs: _P.kwargs) -> None:
        """Call every callback with these arguments; log, and go on past, their exceptions."""
        for callback in self._callbacks:
            try:
                callback(*args, **kwargs)
            except Exception:
                self._logger.exception("%s %r failed", self._what, callback)


def _after_fork_in_child() -> None:
    for observers in list(_ALL):
        observers._lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)
