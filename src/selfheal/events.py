"""One event model: everything that notices something publishes, everything that reacts subscribes.

Event types are dotted (``breaker.payments.opened``) and subscriptions match them with
wildcards: ``*`` stands for exactly one segment, except as the last segment of a pattern, where
it stands for one or more (so ``health.*`` sees every health event and ``*`` sees everything).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import itertools
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import CoroutineType, MappingProxyType
from typing import Any, TypeAlias

from selfheal._clock import SYSTEM_CLOCK, Clock

__all__ = [
    "AsyncHandler",
    "Event",
    "EventBus",
    "Handler",
    "Severity",
    "Subscription",
    "SyncHandler",
    "matches",
]

logger = logging.getLogger("selfheal.events")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
# A process-unique prefix and a counter give ids that sort by creation and cost ~100 ns,
# where uuid4 costs microseconds. A forked child gets a prefix of its own.
_ID_PREFIX = ""
_ID_COUNTER = itertools.count(1)


def _new_id_prefix() -> None:
    global _ID_PREFIX, _ID_COUNTER  # noqa: PLW0603 - per-process state, reset at fork
    _ID_PREFIX = f"{os.getpid():x}-{int.from_bytes(os.urandom(4), 'big'):08x}-"
    _ID_COUNTER = itertools.count(1)


_new_id_prefix()
os.register_at_fork(after_in_child=_new_id_prefix)


def _next_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):x}"


class Severity(StrEnum):
    """How bad an event is; plain strings (``"critical"``) are accepted wherever this is."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Event:
    """Something that happened, published on an `EventBus`.

    The field names are the article's, so ``Event(type=..., source=..., severity=...,
    timestamp=..., data=...)`` works unchanged.

    Attributes:
        type: Dotted event type, e.g. ``health.database.failed``.
        source: Who noticed it (a component or subject name).
        severity: One of `Severity`, or any string.
        timestamp: Wall-clock seconds since the epoch (from the publisher's `Clock`).
        data: Details; kept as given, never copied, so publishers must not mutate it later.
        id: Unique per process run; defaults to a fresh id.
    """

    type: str
    source: str
    severity: str
    timestamp: float
    data: Mapping[str, Any]
    id: str

    # Hand-written because every component builds events: setting the slots through their
    # descriptors costs a third less than the generated frozen __init__ (object.__setattr__).
    def __init__(  # noqa: PLR0917 - the article builds events positionally too
        self,
        type: str,
        source: str = "",
        severity: str = Severity.INFO,
        timestamp: float = 0.0,
        data: Mapping[str, Any] = _EMPTY,
        id: str | None = None,
    ) -> None:
        _set_type(self, type)
        _set_source(self, source)
        _set_severity(self, severity)
        _set_timestamp(self, timestamp)
        _set_data(self, data)
        _set_id(self, id if id is not None else f"{_ID_PREFIX}{next(_ID_COUNTER):x}")

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, Event) and other.id == self.id)

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def subject(self) -> str:
        """Return the middle of the type (``database`` in ``health.database.failed``).

        For types of fewer than three segments the source stands in.
        """
        parts = self.type.split(".")
        return ".".join(parts[1:-1]) if len(parts) >= 3 else self.source

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the event."""
        return {
            "id": self.id,
            "type": self.type,
            "source": self.source,
            "severity": str(self.severity),
            "timestamp": self.timestamp,
            "data": dict(self.data),
        }


_set_type, _set_source, _set_severity, _set_timestamp, _set_data, _set_id = (
    Event.__dict__[name].__set__
    for name in ("type", "source", "severity", "timestamp", "data", "id")
)

SyncHandler: TypeAlias = Callable[[Event], object]
AsyncHandler: TypeAlias = Callable[[Event], Awaitable[object]]
Handler: TypeAlias = SyncHandler | AsyncHandler


def matches(pattern: str, event_type: str) -> bool:
    """Return whether a dotted `event_type` matches a subscription `pattern`.

    ``*`` matches one segment; a trailing ``*`` matches one or more segments.

    Args:
        pattern: e.g. ``breaker.*.opened``, ``health.*`` or ``*``.
        event_type: e.g. ``breaker.payments.opened``.

    Returns:
        True when the type matches.
    """
    if pattern == event_type:
        return True
    pats = pattern.split(".")
    parts = event_type.split(".")
    last = len(pats) - 1
    for i, pat in enumerate(pats):
        if i == last and pat == "*":
            return len(parts) > i
        if i >= len(parts) or (pat != "*" and pat != parts[i]):
            return False
    return len(parts) == len(pats)


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
        self._tasks: set[asyncio.Future[Any]] = set()

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
        if not pattern or any(not seg for seg in pattern.split(".")):
            raise ValueError(
                f"EventBus.subscribe: pattern {pattern!r} must be dotted non-empty segments, "
                "e.g. 'health.*' or 'breaker.*.opened'"
            )
        is_async = _is_async_callable(handler)
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
        """Deliver `event`: sync handlers now, async handlers scheduled on their loop."""
        for sub in self._route(event.type):
            if sub.is_async:
                self._schedule(sub, event)
            elif (coro := self._call_sync(sub, event)) is not None:
                self._schedule(sub, event, coro)

    async def apublish(self, event: Event) -> None:
        """Deliver `event` and wait until every handler, sync or async, has finished."""
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
            await (sub.handler(event) if coro is None else coro)  # type: ignore[misc]
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
            task = loop.create_task(self._call_async(sub, event, coro))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
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
                "handler": _describe(sub.handler),
                "pattern": sub.pattern,
                "event_type": event.type,
                "event_id": event.id,
                "error": f"{type(exc).__name__}: {exc}",
            },
        )
        self.publish(failure)

    async def drain(self) -> None:
        """Wait for async handlers that `publish` scheduled on the running loop to finish."""
        loop = asyncio.get_running_loop()
        # Other threads' loops keep their own handler tasks in the same set: not ours to await.
        while mine := [t for t in list(self._tasks) if t.get_loop() is loop]:
            await asyncio.gather(*mine, return_exceptions=True)


def _is_async_callable(fn: object) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async __call__ on instances
    )


def _describe(fn: object) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
