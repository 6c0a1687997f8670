"""The article's `RecoveryManager`: one recovery function per event type, run off the publisher.

Kept call-compatible with the article (``RecoveryManager(event_bus)``,
``register_recovery(event_type, fn)``, ``<type>.recovered`` / ``<type>.recovery_failed``
events), without its prints and with async recovery functions supported. For verification,
escalation, cooldowns and the rest, use `RecoveryEngine`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from selfheal._calls import is_async_callable
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._redact import redact
from selfheal._tasks import Tasks
from selfheal._threads import in_own_thread
from selfheal.events import Event, EventBus, Severity, Subscription, matches

__all__ = ["RecoveryManager"]

logger = logging.getLogger("selfheal.recovery")

#: The source of the events this manager publishes (as in the article).
SOURCE = "recovery_manager"

RecoveryFunc = Callable[[Event], object]


class RecoveryManager:
    """Runs a registered recovery function when its event type is published.

    At most one recovery runs per (event type, source) at a time; events arriving meanwhile
    are ignored (logged). Sync functions run in a thread of their own, coroutine functions as
    a task on the publisher's running loop (or in a thread with its own loop if there is
    none), so the publisher never waits. When the function returns, ``<type>.recovered`` is
    published; when it raises, ``<type>.recovery_failed`` with the error.

    Args:
        event_bus: Where the failure events come from and the outcome events go.
        clock: Stamps the outcome events.
    """

    def __init__(self, event_bus: EventBus, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.event_bus = event_bus
        self.clock = clock
        self.recovery_handlers: dict[str, RecoveryFunc] = {}
        self._subs: dict[str, Subscription] = {}
        self._active: dict[str, float] = {}
        self._cond = threading.Condition()
        self._tasks = Tasks()

    def __repr__(self) -> str:
        return f"RecoveryManager(handlers={sorted(self.recovery_handlers)})"

    @property
    def active_recoveries(self) -> dict[str, float]:
        """Return the running recoveries: ``"<type>:<source>"`` to wall-clock start time."""
        with self._cond:
            return dict(self._active)

    def register_recovery(self, event_type: str, recovery_func: RecoveryFunc) -> None:
        """Run `recovery_func(event)` whenever an event of `event_type` is published.

        Registering the same type again replaces the function.

        Args:
            event_type: An event type, or a pattern with ``*`` wildcards.
            recovery_func: A function or coroutine function taking the `Event`.

        Raises:
            TypeError: If `recovery_func` is not callable.
        """
        if not callable(recovery_func):
            raise TypeError(
                f"register_recovery: recovery_func for {event_type!r} must be callable, "
                f"got {recovery_func!r}"
            )
        self.recovery_handlers[event_type] = recovery_func
        if event_type not in self._subs:
            self._subs[event_type] = self.event_bus.subscribe(event_type, self.handle_event)

    def _handler_for(self, event: Event) -> RecoveryFunc | None:
        found = self.recovery_handlers.get(event.type)
        if found is not None:
            return found
        for pattern, fn in self.recovery_handlers.items():
            if matches(pattern, event.type):
                return fn
        return None

    def handle_event(self, event: Event) -> None:
        """Start the recovery for `event` unless one for its type and source is running."""
        if event.source == SOURCE:
            # Our own outcome events can match a wildcard registration; never recover those.
            return
        handler = self._handler_for(event)
        if handler is None:
            logger.debug("no recovery handler for %s", event.type)
            return
        key = f"{event.type}:{event.source}"
        with self._cond:
            if key in self._active:
                logger.info("recovery already in progress for %s", key)
                return
            self._active[key] = self.clock.time()
        logger.info("starting recovery for %s", key)
        if is_async_callable(handler):
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            if loop is not None:
                self._tasks.spawn(self._run_async(handler, event, key), loop=loop)
                return
        threading.Thread(
            target=self._run_in_thread,
            args=(handler, event, key),
            name=f"selfheal-recovery-{key}",
            daemon=True,
        ).start()

    def _run_in_thread(self, handler: RecoveryFunc, event: Event, key: str) -> None:
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                asyncio.run(_await(result))
        except Exception as exc:  # noqa: BLE001 - reported as an event
            self._finish(event, key, exc)
        except BaseException as exc:  # noqa: BLE001 - sys.exit() in a recovery is a failure
            # Not re-raised: this is the recovery's own thread, and skipping `_finish` would
            # leave the key "in progress" for ever.
            self._finish(event, key, RuntimeError(f"recovery raised {exc!r}"))
        else:
            self._finish(event, key, None)

    async def _run_async(self, handler: RecoveryFunc, event: Event, key: str) -> None:
        try:
            result = handler(event)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:  # noqa: BLE001 - reported as an event
            self._finish(event, key, exc)
        except BaseException as exc:
            # Cancelled (the loop is shutting down): still release the key, then go on.
            self._finish(event, key, RuntimeError(f"recovery interrupted: {exc!r}"))
            raise
        else:
            self._finish(event, key, None)

    def _finish(self, event: Event, key: str, error: BaseException | None) -> None:
        data: dict[str, Any] = {
            "original_event": dict(event.data),
            "original_type": event.type,
            "original_source": event.source,
        }
        try:
            if error is None:
                logger.info("recovery completed for %s", key)
                self.event_bus.publish(
                    Event(f"{event.type}.recovered", SOURCE, Severity.INFO, self.clock.time(), data)
                )
            else:
                message = redact(f"{type(error).__name__}: {error}")
                logger.warning("recovery failed for %s: %s", key, message)
                data["error"] = message
                self.event_bus.publish(
                    Event(
                        f"{event.type}.recovery_failed",
                        SOURCE,
                        Severity.ERROR,
                        self.clock.time(),
                        data,
                    )
                )
        finally:
            with self._cond:
                self._active.pop(key, None)
                self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no recovery runs (for shutdown and tests).

        Args:
            timeout: Real seconds to wait at most; None waits as long as it takes.

        Returns:
            True when idle, False on timeout.
        """
        with self._cond:
            return self._cond.wait_for(lambda: not self._active, timeout)

    async def start(self) -> None:
        """Nothing to start: recoveries run when their events arrive (`Component` protocol)."""

    async def stop(self) -> None:
        """Stop reacting to events and wait for running recoveries to finish."""
        for sub in self._subs.values():
            sub.unsubscribe()
        self._subs.clear()
        await self._tasks.wait()
        # Not asyncio.to_thread: the shared pool may be full of hung user code.
        await in_own_thread(self.wait)


async def _await(aw: Any) -> None:
    await aw
