"""The `EventBus`: sync and async subscribers, wildcards, handler isolation."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from types import CoroutineType
from typing import Any, TypeAlias

from selfheal._calls import awaited, describe, is_async_callable
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._tasks import Tasks
from selfheal.events._event import Event, Severity
from selfheal.events._vocabulary import check_pattern, matches

__all__ = ["HANDLER_FAILED", "AsyncHandler", "EventBus", "Handler", "Subscription", "SyncHandler"]

logger = logging.getLogger("selfheal.events")

SyncHandler: TypeAlias = Callable[[Event], object]
AsyncHandler: TypeAlias = Callable[[Event], Awaitable[object]]
Handler: TypeAlias = SyncHandler | AsyncHandler


@dataclass(frozen=True, slots=True, eq=False)
class _Sub:
    pattern: str
    handler: Handler
    is_async: bool
    loop: asyncio.AbstractEventLoop | None


class Subscription:
    """The handle `EventBus.subscribe` returns; `unsubscribe()` or use it as a context manager."""

    __slots__ = ("_bus", "_sub")

    def __init__(self, bus: EventBus, sub: _Sub) -> None:
        self._bus = bus
        self._sub = sub

    @property
    def pattern(self) -> str:
        """Return the pattern this subscription matches."""
        return self._sub.pattern

    def unsubscribe(self) -> None:
        """Stop delivering events to the handler; calling it twice is harmless."""
        self._bus._remove(self._sub)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()

    def __repr__(self) -> str:
        return f"Subscription(pattern={self._sub.pattern!r}, handler={self._sub.handler!r})"


#: Published when a handler raises; its data names the handler, the event and the error.
HANDLER_FAILED = "eventbus.handler.failed"


class EventBus:
    """Delivers events to the subscribers whose patterns match, isolating each handler.

    Thread-safe: subscribe, unsubscribe and publish from any thread. A handler that raises
    never affects the publisher or the other handlers; the failure is logged and published
    as an ``eventbus.handler.failed`` event (whose own handler failures are only logged).

    Sync handlers run in the publisher's thread. Async handlers run on the event loop that was
    running when they subscribed (or, if none was, the publisher's running loop); `publish`
    schedules them and returns, `apublish` awaits them. A sync handler that returns a
    coroutine (``lambda e: notify(e, channel="ops")``) has it run the same way.

    Args:
        clock: Stamps the events built by `emit`.
    """

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._subs: tuple[_Sub, ...] = ()
        # event type -> matching subscriptions; rebuilt lazily after any (un)subscribe.
        self._routes: dict[str, tuple[_Sub, ...]] = {}
        self._tasks = Tasks()

    def __repr__(self) -> str:
        return f"EventBus(subscriptions={len(self._subs)})"

    def subscribe(self, pattern: str, handler: Handler) -> Subscription:
        """Call `handler` with every event whose type matches `pattern`.

        Args:
            pattern: Dotted type with ``*`` wildcards.
            handler: A function or coroutine function taking the `Event`.

        Returns:
            A `Subscription` whose `unsubscribe()` removes the handler.

        Raises:
            ValueError: If the pattern is empty or has an empty segment.
        """
        try:
            check_pattern(pattern)
        except ValueError as exc:
            raise ValueError(f"EventBus.subscribe: {exc}") from None
        is_async = is_async_callable(handler)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        sub = _Sub(pattern, handler, is_async, loop if is_async else None)
        with self._lock:
            self._subs = (*self._subs, sub)
            self._routes = {}
        return Subscription(self, sub)

    def _remove(self, sub: _Sub) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs = tuple(s for s in self._subs if s is not sub)
                self._routes = {}

    def has_subscribers(self, event_type: str) -> bool:
        """Return whether publishing `event_type` would reach anyone (to skip building events)."""
        return bool(self._route(event_type))

    def _route(self, event_type: str) -> tuple[_Sub, ...]:
        routes = self._routes
        found = routes.get(event_type)
        if found is None:
            found = tuple(s for s in self._subs if matches(s.pattern, event_type))
            with self._lock:
                # Only cache if nobody changed the subscriptions meanwhile.
                if routes is self._routes:
                    routes[event_type] = found
        return found

    def emit(
        self,
        type: str,
        source: str = "",
        severity: str = Severity.INFO,
        **data: Any,
    ) -> Event | None:
        """Build an event stamped by the bus's clock and publish it, if anyone listens.

        Returns:
            The published event, or None when no subscription matched (nothing was built).
        """
        if not self._route(type):
            return None
        event = Event(type, source, severity, self.clock.time(), data)
        self.publish(event)
        return event

    def publish(self, event: Event) -> None:
        """Deliver `event`: sync handlers now, async handlers scheduled on their loop.

        An event built without a timestamp (0.0) is delivered stamped by the bus's clock.
        """
        if not event.timestamp:
            event = _stamped(event, self.clock)
        for sub in self._route(event.type):
            if sub.is_async:
                self._schedule(sub, event)
            elif (coro := self._call_sync(sub, event)) is not None:
                self._schedule(sub, event, coro)

    async def apublish(self, event: Event) -> None:
        """Deliver `event` and wait until every handler, sync or async, has finished.

        An event built without a timestamp (0.0) is delivered stamped by the bus's clock.
        """
        if not event.timestamp:
            event = _stamped(event, self.clock)
        waits: list[Awaitable[None]] = []
        current = asyncio.get_running_loop()
        for sub in self._route(event.type):
            if not sub.is_async:
                if (coro := self._call_sync(sub, event)) is not None:
                    waits.append(self._call_async(sub, event, coro))
            elif sub.loop is None or sub.loop is current:
                waits.append(self._call_async(sub, event))
            else:
                fut = self._submit(sub, event, sub.loop)
                if fut is not None:
                    waits.append(asyncio.wrap_future(fut))
        if waits:
            await asyncio.gather(*waits)

    def _call_sync(self, sub: _Sub, event: Event) -> Coroutine[Any, Any, Any] | None:
        """Call a sync handler; return the coroutine it returned, if it did, to be run."""
        try:
            result = sub.handler(event)
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            self._report(sub, event, exc)
            return None
        # `lambda e: notify(e, ...)` over an async notify: run the coroutine, do not drop it.
        return result if type(result) is CoroutineType else None

    async def _call_async(
        self, sub: _Sub, event: Event, coro: Coroutine[Any, Any, Any] | None = None
    ) -> None:
        try:
            # A SystemExit would end the whole event loop: it ends only this handler's call.
            call = sub.handler(event) if coro is None else coro
            await awaited(call, "the handler")  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            self._report(sub, event, exc)

    def _schedule(
        self, sub: _Sub, event: Event, coro: Coroutine[Any, Any, Any] | None = None
    ) -> None:
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        loop = sub.loop or running
        if loop is None:
            # Nobody runs a loop for this handler: run it to completion here rather than drop it.
            asyncio.run(self._call_async(sub, event, coro))
            return
        if loop is running:
            self._tasks.spawn(self._call_async(sub, event, coro))
        else:
            self._submit(sub, event, loop)

    def _submit(
        self, sub: _Sub, event: Event, loop: asyncio.AbstractEventLoop
    ) -> concurrent.futures.Future[None] | None:
        """Run the handler on its own loop (another thread's); None if that loop is closed."""
        if not loop.is_closed():
            coro = self._call_async(sub, event)
            try:
                return asyncio.run_coroutine_threadsafe(coro, loop)
            except RuntimeError:  # the loop closed just now
                coro.close()
        logger.warning("event %s not delivered to %r: its loop is closed", event.type, sub)
        return None

    def _report(self, sub: _Sub, event: Event, exc: BaseException) -> None:
        logger.error(
            "event handler %r failed on %s: %r", sub.handler, event.type, exc, exc_info=exc
        )
        if event.type == HANDLER_FAILED:
            return
        failure = Event(
            HANDLER_FAILED,
            "eventbus",
            Severity.ERROR,
            self.clock.time(),
            {
                "handler": describe(sub.handler),
                "pattern": sub.pattern,
                "event_type": event.type,
                "event_id": event.id,
                "error": f"{type(exc).__name__}: {exc}",
            },
        )
        self.publish(failure)

    async def drain(self) -> None:
        """Wait for async handlers that `publish` scheduled on the running loop to finish."""
        # Other threads' loops keep their own handler tasks in the same set: not ours to await.
        await self._tasks.wait()


def _stamped(event: Event, clock: Clock) -> Event:
    # Subscribers (the journal, metrics, incident times) must never see the epoch.
    return Event(event.type, event.source, event.severity, clock.time(), event.data, event.id)
