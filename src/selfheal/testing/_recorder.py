"""A recorder of the events a bus delivers, with bounded waits for the ones a test expects."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

from selfheal.events import Event, EventBus, Subscription, matches

__all__ = ["EventRecorder"]


@dataclass(slots=True)
class _Waiter:
    pattern: str
    count: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Event]


class EventRecorder:
    """Subscribes to `pattern` on `bus` and keeps every event it receives, in order.

    Events may be published from any thread. `wait` (async) and `wait_blocking` (sync) return
    as soon as the event is there and give up after `within` real seconds, with a message
    listing what was seen; the bound is a safety net for a test that would otherwise hang, not
    a way to wait for timers (advance a `FakeClock` for that). Use as a context manager, or
    call `close`, to unsubscribe.

    Args:
        bus: The bus to record.
        pattern: Which types to record (``*`` for all).
    """

    def __init__(self, bus: EventBus, pattern: str = "*") -> None:
        self.events: list[Event] = []
        self._cond = threading.Condition()
        self._waiters: list[_Waiter] = []
        self._sub: Subscription = bus.subscribe(pattern, self._on_event)

    def __repr__(self) -> str:
        return f"EventRecorder({self._sub.pattern!r}, events={len(self.events)})"

    def __enter__(self) -> EventRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop recording (the events recorded so far stay)."""
        self._sub.unsubscribe()

    def types(self) -> list[str]:
        """Return the type of every event recorded, in order."""
        with self._cond:
            return [e.type for e in self.events]

    def of(self, pattern: str) -> list[Event]:
        """Return the events whose type matches `pattern` (``recovery.*``, an exact type)."""
        with self._cond:
            return [e for e in self.events if matches(pattern, e.type)]

    async def wait(self, pattern: str, count: int = 1, *, within: float = 10.0) -> Event:
        """Wait until `count` events matching `pattern` were recorded; return the last of them.

        Args:
            pattern: A type or a pattern.
            count: How many matching events to wait for.
            within: Real seconds to wait at most.

        Raises:
            TimeoutError: If they did not all come within `within` seconds.
        """
        loop = asyncio.get_running_loop()
        with self._cond:
            found = self._nth(pattern, count)
            if found is not None:
                return found
            waiter = _Waiter(pattern, count, loop, loop.create_future())
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(within):
                return await waiter.future
        except TimeoutError:
            raise TimeoutError(self._missing(pattern, count, within)) from None
        finally:
            with self._cond:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)

    def wait_blocking(self, pattern: str, count: int = 1, *, within: float = 10.0) -> Event:
        """Block the calling thread until `count` events matching `pattern` were recorded.

        The sync twin of `wait`, for tests without an event loop.

        Raises:
            TimeoutError: If they did not all come within `within` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._nth(pattern, count) is not None, within):
                raise TimeoutError(self._missing(pattern, count, within))
            found = self._nth(pattern, count)
        assert found is not None
        return found

    def _nth(self, pattern: str, count: int) -> Event | None:
        # Called with the condition held.
        seen = 0
        for event in self.events:
            if matches(pattern, event.type):
                seen += 1
                if seen == count:
                    return event
        return None

    def _missing(self, pattern: str, count: int, within: float) -> str:
        with self._cond:
            got = sum(1 for e in self.events if matches(pattern, e.type))
            seen = [e.type for e in self.events]
        return (
            f"EventRecorder: {got} of {count} event(s) matching {pattern!r} within "
            f"{within:g} s; recorded: {seen}"
        )

    def _on_event(self, event: Event) -> None:
        ready: list[tuple[_Waiter, Event]] = []
        with self._cond:
            self.events.append(event)
            self._cond.notify_all()
            for waiter in list(self._waiters):
                found = self._nth(waiter.pattern, waiter.count)
                if found is not None:
                    self._waiters.remove(waiter)
                    ready.append((waiter, found))
        for waiter, found in ready:
            _resolve(waiter, found)


def _resolve(waiter: _Waiter, event: Event) -> None:
    def settle() -> None:
        if not waiter.future.done():
            waiter.future.set_result(event)

    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is waiter.loop:
        settle()
    elif not waiter.loop.is_closed():
        waiter.loop.call_soon_threadsafe(settle)
