"""How one experiment run is stopped early: its `Safeguards`, signals, the kill switch.

- Before anything runs, an engaged kill switch (the file ``selfheal chaos stop`` creates, or
  the in-process `kill_switch()`) or a time outside every window means the run does not start.
- Once it started, the runner asks `RunGuard.stop_reason` at every check, and its waits wake
  every ``poll_interval`` to ask when a kill-switch file is watched; the end of the time window
  the run started in is a stop reason as well.
- An activity that blocks (a process, a Python call) cannot be asked anything, so while the run
  owns the signal handlers, `RunGuard.interrupting` looks at the kill switch from a thread
  every ``poll_interval`` (and hears the in-process switch at once) and interrupts the run the
  way SIGTERM does: the activity ends, the rollbacks run.

A ``max_active`` cap does not apply: a run is one sequence of faults.

`Interrupts` turns SIGINT, SIGTERM, chaoslib's SIGUSR1 and SIGUSR2 and the guard's interruption
into `Interrupted` until the rollbacks start; from then on signals are recorded and ignored.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

from selfheal._clock import Clock
from selfheal.chaos._killswitch import watch_kill_switch
from selfheal.chaos._safety import Safeguards
from selfheal.chaos.experiment._report import Outcome

__all__ = ["KILL_SWITCH", "Interrupted", "Interrupts", "RunGuard", "Stop"]

#: `RunRecord.interrupted_by` of a run that the kill switch or its time window ended.
KILL_SWITCH = "kill switch"

_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
# What Chaos Toolkit extensions send to end a run (chaoslib.exit): SIGUSR2 asks to skip the
# rollbacks, which is not granted here.
_REASONS = {
    signal.SIGUSR1: "interrupted by SIGUSR1 (chaoslib's exit_gracefully)",
    signal.SIGUSR2: "interrupted by SIGUSR2 (chaoslib's exit_ungracefully: rollbacks run anyway)",
}


class Stop(BaseException):
    """Ends the method early; a BaseException so user code's ``except Exception`` cannot eat it."""

    def __init__(self, outcome: Outcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class Interrupted(Stop):
    """The run was interrupted from outside: by signal `name`, or by the `KILL_SWITCH`."""

    def __init__(self, name: str, reason: str | None = None) -> None:
        super().__init__(Outcome.ABORTED, reason or f"interrupted by {name}")
        self.name = name


class RunGuard:
    """The safeguards of one run, on the run's clock.

    Args:
        safeguards: What must hold (kill switch, windows).
        clock: The run's clock (windows are read on its wall time).
    """

    __slots__ = ("clock", "next_poll", "safeguards", "window_end")

    def __init__(self, safeguards: Safeguards, clock: Clock) -> None:
        self.safeguards = safeguards
        self.clock = clock
        self.window_end = math.inf
        self.next_poll = math.inf

    def refusal(self) -> str | None:
        """Return why the run must not start, or None; from None on, the guard watches."""
        reason = self.safeguards.stop_reason()
        if reason is not None:
            return reason
        left = self.safeguards.window_left(self.clock.time())
        if left <= 0:
            windows = ", ".join(str(w) for w in self.safeguards.windows)
            return f"outside every time window of the safeguards ({windows})"
        now = self.clock.monotonic()
        self.window_end = now + left
        if self.safeguards.kill_switch is not None:
            self.next_poll = now + self.safeguards.poll_interval
        return None

    def stop_reason(self) -> str | None:
        """Return why the run must stop now (kill switch engaged, window over), or None."""
        now = self.clock.monotonic()
        if now >= self.next_poll:
            self.next_poll = now + self.safeguards.poll_interval
        if now >= self.window_end:
            return "the time window the run started in is over"
        return self.safeguards.stop_reason()

    def due(self) -> list[float]:
        """Return when the runner's waits must wake to ask `stop_reason` again."""
        return [t for t in (self.next_poll, self.window_end) if t != math.inf]

    @contextlib.contextmanager
    def interrupting(self, interrupt: Callable[[str], object]) -> Iterator[None]:
        """While inside, call ``interrupt(reason)`` (from another thread) once chaos must stop.

        The kill-switch file is looked at every ``poll_interval`` seconds of real time: this
        thread stands in for a person at the switch, whatever clock the run uses.
        """
        done = threading.Event()
        fired = threading.Lock()

        def fire(reason: str) -> None:
            if threading.current_thread() is threading.main_thread():
                return  # the run's own thread engaged it: not blocked, its next check sees it
            if not done.is_set() and fired.acquire(blocking=False):
                interrupt(reason)

        def watch() -> None:
            while not done.wait(self.safeguards.poll_interval):
                reason = self.safeguards.stop_reason()
                if reason is not None:
                    fire(reason)
                    return

        # Told at once when the in-process switch is engaged (in the engaging thread).
        unwatch = watch_kill_switch(
            lambda reason: fire(self.safeguards.stop_reason() or f"kill switch: {reason}")
        )
        thread = threading.Thread(target=watch, name="selfheal-chaos-guard", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            unwatch()
            thread.join()


class Interrupts:
    """SIGINT, SIGTERM, SIGUSR1/2 and the guard's interruption: `Interrupted` until `defer`.

    Args:
        guard: Whose thread interrupts a blocked activity while the handlers are installed.
        on_ignored: Called with the name of a signal received after `defer`.
    """

    def __init__(self, guard: RunGuard, on_ignored: Callable[[str], object]) -> None:
        self.guard = guard
        self.on_ignored = on_ignored
        self.deferred = False
        # The guard's thread interrupts with a SIGTERM of its own and says why here first;
        # the lock orders that against `defer`, so a late one is not taken for a person's.
        self._lock = threading.Lock()
        self._kill_reason: str | None = None

    def defer(self) -> None:
        """From now on, record signals and ignore them: the rollbacks must run."""
        with self._lock:
            self.deferred = True

    @contextlib.contextmanager
    def installed(self, enabled: bool) -> Iterator[None]:
        """Handle the signals while inside, if `enabled` and this is the main thread."""
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        try:
            with self.guard.interrupting(self._interrupt):
                yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _interrupt(self, reason: str) -> None:
        """Interrupt the main thread as SIGTERM would, for `reason` (the guard's thread)."""
        with self._lock:
            if self.deferred:
                return
            self._kill_reason = reason
            main = threading.main_thread().ident
            assert main is not None  # the main thread runs: it installed the handlers
            signal.pthread_kill(main, signal.SIGTERM)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._kill_reason is not None and signum == signal.SIGTERM:
            reason, self._kill_reason = self._kill_reason, None
            if not self.deferred:  # else the run was ending anyway: the rollbacks go on
                self.deferred = True
                raise Interrupted(KILL_SWITCH, reason)
            return
        name = signal.Signals(signum).name
        if self.deferred:
            self.on_ignored(name)
            return
        self.deferred = True
        raise Interrupted(name, _REASONS.get(signal.Signals(signum)))
