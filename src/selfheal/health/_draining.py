"""Draining before shutdown: readiness fails for a while, then the SIGTERM goes through.

Load balancers take a pod out of rotation only after its readiness probe has failed, so on
SIGTERM a server should keep serving for a few seconds with readiness failing, and only then
shut down. `Draining` keeps that period on the injected clock and turns the first SIGTERM into
"drain, then deliver the signal to whoever handled it before". `HealthMonitor` is one.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterable
from types import FrameType
from typing import Any

from selfheal._clock import Clock

__all__ = ["Draining"]

logger = logging.getLogger("selfheal.health")


class Draining:
    """The drain period of a service, on a clock.

    Args:
        clock: Measures the drain period.
    """

    def __init__(self, clock: Clock) -> None:
        self._drain_clock = clock
        self._drain_lock = threading.Lock()
        self._drain_started: float | None = None
        self._drain_seconds = 0.0

    def _drain_began(self) -> None:
        """Called once, when draining starts (readers' cached answers are now wrong)."""

    def start_draining(self, seconds: float = 0.0) -> None:
        """Fail readiness from now on, so load balancers stop sending traffic before shutdown.

        Liveness is unaffected. `drained` turns true after `seconds`, the time the caller
        should keep serving before it shuts down.

        Args:
            seconds: The drain period.
        """
        seconds = max(0.0, float(seconds))
        with self._drain_lock:
            began = self._drain_started is None
            if began:
                self._drain_seconds = seconds
                self._drain_started = self._drain_clock.monotonic()
        if began:
            self._drain_began()
        logger.info("health: draining for %g s; readiness now fails", seconds)

    @property
    def draining(self) -> bool:
        """Return whether `start_draining` was called (readiness fails)."""
        return self._drain_started is not None

    @property
    def drained(self) -> bool:
        """Return whether the drain period has passed."""
        started = self._drain_started
        return (
            started is not None and self._drain_clock.monotonic() - started >= self._drain_seconds
        )

    async def wait_drained(self) -> None:
        """Wait (on the clock) until the drain period has passed.

        Raises:
            RuntimeError: If draining was never started.
        """
        started = self._drain_started
        if started is None:
            raise RuntimeError(
                f"{type(self).__name__}.wait_drained: start_draining() was not called"
            )
        remaining = started + self._drain_seconds - self._drain_clock.monotonic()
        if remaining > 0:
            await self._drain_clock.asleep(remaining)

    def install_signal_handlers(
        self,
        drain_seconds: float = 5.0,
        *,
        signals: Iterable[signal.Signals] = (signal.SIGTERM,),
    ) -> Callable[[], None]:
        """On SIGTERM, fail readiness for `drain_seconds`, then deliver the signal as before.

        The first signal starts draining and puts the previous handler back; after the drain
        period the signal is sent again, so the server's own shutdown (uvicorn's, gunicorn's,
        or the default termination) runs then. A second signal during the drain goes straight
        to the previous handler. Call it from the main thread, after the server installed its
        handlers (e.g. in the ASGI lifespan startup).

        Args:
            drain_seconds: How long readiness fails before the shutdown proceeds.
            signals: The signals to intercept.

        Returns:
            A function that puts the previous handlers back.

        Raises:
            RuntimeError: If called outside the main thread.
        """
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                f"{type(self).__name__}.install_signal_handlers: signal handlers can only be "
                "installed from the main thread"
            )
        previous: dict[int, Any] = {}

        def handler(signum: int, frame: FrameType | None) -> None:
            old = previous.get(signum, signal.SIG_DFL)
            signal.signal(signum, old if old is not None else signal.SIG_DFL)
            self.start_draining(drain_seconds)

            def redeliver() -> None:
                self._drain_clock.sleep(drain_seconds)
                os.kill(os.getpid(), signum)

            threading.Thread(target=redeliver, name="selfheal-drain", daemon=True).start()

        for sig in signals:
            previous[int(sig)] = signal.signal(sig, handler)

        def restore() -> None:
            for signum, old in previous.items():
                if signal.getsignal(signum) is handler:
                    signal.signal(signum, old if old is not None else signal.SIG_DFL)

        return restore
