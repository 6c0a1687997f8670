"""The lifecycle every long-running part of the daemon shares."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Component"]


@runtime_checkable
class Component(Protocol):
    """Something the daemon starts and stops: a supervisor, a health monitor, a journal...

    `start` returns once the component is running (it may start background tasks on the
    running loop); `stop` returns once they are finished and everything is flushed.
    """

    async def start(self) -> None:
        """Start background work on the running event loop."""
        ...

    async def stop(self) -> None:
        """Stop background work, flush, release resources; safe to call twice."""
        ...
