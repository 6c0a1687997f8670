"""The monitor's lifetime in an ASGI app: started by the lifespan, or by the first request.

An ASGI server runs the lifespan of the app it serves, never that of an app mounted inside it
(``app.mount("/health", health_app(monitor))`` in FastAPI or Starlette): a monitor started
only by the sub-app's lifespan never started, and the endpoints said "no result yet" for
ever. `health_lifespan` starts and stops a monitor around any app's lifespan (compose it with
your own, or let `selfheal.web.install` do it); `MonitorGuard` is what the endpoints consult
on each request: when no lifespan took charge, it starts the monitor from the first request,
on the server's running loop, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from selfheal.health import HealthMonitor

__all__ = ["MonitorGuard", "health_lifespan"]

logger = logging.getLogger("selfheal.web")


@contextlib.asynccontextmanager
async def health_lifespan(
    monitor: HealthMonitor,
    *,
    thread: bool = False,
    drain_seconds: float | None = None,
    start: bool = True,
) -> AsyncIterator[None]:
    """Run `monitor` for as long as the block lasts: compose it with an app's own lifespan.

    The monitor is started on entry unless it already runs (then it is left as it is, and not
    stopped on exit either)::

        @contextlib.asynccontextmanager
        async def lifespan(app):
            await pool.open()                        # what the checks need comes first
            async with health_lifespan(monitor):     # checks run while the app serves
                yield
            await pool.close()

    Args:
        monitor: The monitor to run.
        thread: Run it on an event loop in a daemon thread of its own
            (`HealthMonitor.start_monitoring`) instead of on the app's loop: needed for an
            `event_loop_lag_check` of the app's loop, which a blocked loop could not run.
        drain_seconds: If given, install a SIGTERM handler that fails readiness for this many
            seconds before the server shuts down (main thread only; elsewhere a warning is
            logged). See `HealthMonitor.install_signal_handlers`.
        start: Whether to start (and stop) the monitor at all; False only sets up draining.

    Yields:
        Nothing; the monitor runs inside the block.
    """
    started = start and not monitor.running
    if started:
        if thread:
            monitor.start_monitoring()
        else:
            await monitor.start()
    restore = None
    if drain_seconds is not None:
        if threading.current_thread() is threading.main_thread():
            restore = monitor.install_signal_handlers(drain_seconds)
        else:
            logger.warning("health lifespan: not in the main thread; SIGTERM draining not set up")
    try:
        yield
    finally:
        if restore is not None:
            restore()
        if started:
            # `stop` also ends the thread of `start_monitoring` (from another thread).
            await monitor.stop()


class MonitorGuard:
    """Makes sure the endpoints of one app serve a running monitor.

    Each request calls `ensure` (a flag test once settled). With ``manage=True`` the guard
    starts the monitor from the first request unless a lifespan has taken charge
    (`lifespan_ran`) or the monitor already runs; with ``manage=False`` the caller starts it,
    and a request finding it stopped with checks that never had a result logs one warning
    naming the fix, since those checks would say "no result yet" for ever.

    Args:
        monitor: The monitor behind the endpoints.
        manage: Whether the app starts the monitor itself.
        thread: Start it in a thread of its own (`HealthMonitor.start_monitoring`) instead of
            on the server's loop.
        where: Names the app in log lines (``health_app``, ``install``).
    """

    def __init__(
        self, monitor: HealthMonitor, *, manage: bool, thread: bool = False, where: str
    ) -> None:
        self._monitor = monitor
        self._manage = manage
        self._thread = thread
        self._where = where
        #: No more work on requests: the monitor was started, a lifespan manages it, or the
        #: warning was given.
        self.settled = False

    def lifespan_ran(self) -> None:
        """Record that a lifespan manages the monitor: requests never start it."""
        self.settled = True

    async def ensure(self) -> None:
        """Start the monitor if nothing else did (``manage=True``), or warn once."""
        if self.settled:
            return
        monitor = self._monitor
        if monitor.running:
            self.settled = True
            return
        if not self._manage:
            if any(report.result is None for report in monitor.reports()):
                self.settled = True
                logger.warning(
                    "%s: the HealthMonitor behind these endpoints is not running, so its "
                    "checks will say 'no result yet' for ever; start it in the app's lifespan "
                    "(selfheal.web.install(app, monitor), or `async with "
                    "selfheal.web.health_lifespan(monitor)`)",
                    self._where,
                )
            return
        # No lifespan ran (a mounted sub-app, or a server run with lifespan off): this is the
        # server's running loop, and the monitor stays on it until the loop ends. Starting
        # has no await point before the monitor counts as running, so concurrent first
        # requests start it once; a start that raises fails the request, and the next tries
        # again.
        if self._thread:
            monitor.start_monitoring()
        else:
            await monitor.start()
        self.settled = True
        logger.info(
            "%s: no lifespan started the HealthMonitor (a mounted app's lifespan never runs); "
            "started it from the first request",
            self._where,
        )
        if not self._thread:
            # This request answers from the first results, not "no result yet": the runs
            # just started are awaited (check_now joins a run in flight), each bounded by its
            # check's timeout.
            pending = [r.name for r in monitor.reports() if r.result is None]
            await asyncio.gather(*(monitor.check_now(n) for n in pending), return_exceptions=True)
