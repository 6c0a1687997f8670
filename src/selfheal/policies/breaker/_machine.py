"""The circuit breaker's decisions, with no I/O, no clock, no lock and no threads.

Everything here is plain code over plain data: the caller passes ``now`` (monotonic seconds)
and holds whatever lock it needs. `transition` is the whole state diagram in one table;
`BreakerMachine` keeps the counters and asks `transition` whenever the state must change.
The driver (`_driver`) reads the clock, takes the lock, runs the protected call and
publishes the `Change` records this module returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from selfheal.interfaces import BreakerState
from selfheal.policies.breaker._windows import (
    FAILED,
    SLOW,
    FailureRateWindow,
    SlowCallRule,
    Window,
    new_window,
)

__all__ = [
    "BreakerMachine",
    "Change",
    "ClosedEpoch",
    "IllegalTransitionError",
    "Signal",
    "Ticket",
    "TrialEpoch",
    "transition",
]


class Signal(Enum):
    """What happened, as far as the state diagram is concerned."""

    TRIPPED = "tripped"  # CLOSED saw too many failures or slow calls
    RECOVERY_DUE = "recovery_due"  # OPEN: the recovery timeout passed and a call arrived
    TRIAL_FAILED = "trial_failed"  # HALF_OPEN: a trial failed (or was too slow)
    TRIALS_PASSED = "trials_passed"  # HALF_OPEN: every trial permit ended in success
    FORCE_OPEN = "force_open"  # an operator (or a shared store) opened it
    FORCE_CLOSE = "force_close"  # an operator (or a shared store) closed it


class IllegalTransitionError(ValueError):
    """A signal arrived in a state where the diagram has no edge for it (a bug, never input)."""


_C, _O, _H = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN

# The state diagram, written down once. Forced edges exist from every state.
_TRANSITIONS: dict[tuple[BreakerState, Signal], BreakerState] = {
    (_C, Signal.TRIPPED): _O,
    (_O, Signal.RECOVERY_DUE): _H,
    (_H, Signal.TRIAL_FAILED): _O,
    (_H, Signal.TRIALS_PASSED): _C,
    **{(state, Signal.FORCE_OPEN): _O for state in BreakerState},
    **{(state, Signal.FORCE_CLOSE): _C for state in BreakerState},
}


def transition(state: BreakerState, signal: Signal) -> BreakerState:
    """Return the state that follows `state` when `signal` happens.

    Args:
        state: The current state.
        signal: What happened.

    Returns:
        The next state (possibly the same one, for forced edges).

    Raises:
        IllegalTransitionError: If the diagram has no such edge.
    """
    try:
        return _TRANSITIONS[state, signal]
    except KeyError:
        message = f"no transition from {state.value} on {signal.value}"
        raise IllegalTransitionError(message) from None


@dataclass(frozen=True, slots=True)
class Change:
    """A state change the machine made; the driver publishes and persists it.

    Attributes:
        old: The state before.
        new: The state after.
        reason: Why, e.g. ``consecutive_failures``, ``failure_rate``, ``trial_failed``.
        at: Monotonic time of the change.
    """

    old: BreakerState
    new: BreakerState
    reason: str
    at: float


class ClosedEpoch:
    """One uninterrupted CLOSED period; the ticket of a call admitted in it.

    A call finishing after its epoch ended (the breaker tripped meanwhile) is recognised by
    ``machine.gate is not epoch`` and its outcome ignored, so a stale failure never counts
    against a later period. `failures` counts consecutive failures; the driver may reset it
    to 0 without a lock on success (one attribute store, atomic under the GIL).
    """

    __slots__ = ("failures",)

    def __init__(self) -> None:
        self.failures = 0


class TrialEpoch:
    """One HALF_OPEN period; the ticket of a trial call admitted in it."""

    __slots__ = ("successes",)

    def __init__(self) -> None:
        self.successes = 0


Ticket = ClosedEpoch | TrialEpoch


class BreakerMachine:
    """The breaker's counters and decisions; not thread-safe, the driver holds a lock.

    Args:
        failure_threshold: Consecutive failures that trip the breaker, or None for none.
        recovery_timeout: Seconds OPEN lasts before a trial is allowed.
        half_open_max_calls: Trial permits in HALF_OPEN; that many successes close it.
        window: Failure-rate window, or None.
        slow_call: Slow-call rule (needs `window`), or None.
        now: Monotonic time at creation.

    Attributes:
        state: The current `BreakerState`.
        gate: The current `ClosedEpoch` while CLOSED, else None. The driver's fast path
            reads only this attribute.
        opened_at: Monotonic time the breaker last opened.
        trials_in_flight: Trial calls admitted and not finished, across half-open periods, so
            that a slow trial from an earlier period still holds its permit.
        reason: Why the last change happened.
    """

    __slots__ = (
        "failure_threshold",
        "gate",
        "half_open_max_calls",
        "opened_at",
        "reason",
        "recovery_timeout",
        "slow_call",
        "state",
        "trial",
        "trials_in_flight",
        "window",
        "window_spec",
    )

    def __init__(
        self,
        *,
        failure_threshold: int | None,
        recovery_timeout: float,
        half_open_max_calls: int,
        window: FailureRateWindow | None,
        slow_call: SlowCallRule | None,
        now: float,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.recovery_timeout = recovery_timeout
        self.half_open_max_calls = half_open_max_calls
        self.window_spec = window
        self.slow_call = slow_call
        self.state = BreakerState.CLOSED
        self.gate: ClosedEpoch | None = ClosedEpoch()
        self.trial: TrialEpoch | None = None
        self.trials_in_flight = 0
        self.opened_at = now
        self.reason = "created"
        self.window: Window | None = new_window(window)

    # -- state changes -------------------------------------------------------------------

    def _move(self, signal: Signal, now: float, reason: str) -> Change:
        old = self.state
        new = transition(old, signal)
        self.state = new
        self.reason = reason
        if new is BreakerState.OPEN:
            self.opened_at = now
            self.gate = None
            self.trial = None
        elif new is BreakerState.HALF_OPEN:
            self.gate = None
            self.trial = TrialEpoch()
        else:
            self.trial = None
            self.window = new_window(self.window_spec)
            self.gate = ClosedEpoch()  # last: publishing the gate re-opens the fast path
        return Change(old, new, reason, now)

    def force(self, state: BreakerState, now: float, reason: str = "manual") -> Change:
        """Put the breaker in OPEN or CLOSED by hand (or because a shared store says so).

        Args:
            state: `BreakerState.OPEN` or `BreakerState.CLOSED`.
            now: Monotonic time; an OPEN breaker counts its recovery timeout from here.
            reason: Recorded in the `Change`.

        Returns:
            The change (old may equal new: forcing restarts the period).

        Raises:
            ValueError: If `state` is HALF_OPEN, which only the recovery timeout leads to.
        """
        if state is BreakerState.HALF_OPEN:
            raise ValueError("a breaker can be forced OPEN or CLOSED, not HALF_OPEN")
        signal = Signal.FORCE_OPEN if state is BreakerState.OPEN else Signal.FORCE_CLOSE
        return self._move(signal, now, reason)

    def remaining(self, now: float) -> float:
        """Return seconds until a trial may go through (0 unless OPEN)."""
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self.opened_at + self.recovery_timeout - now)

    def current(self, now: float) -> tuple[BreakerState, Change | None]:
        """Return the state as of `now`, moving OPEN to HALF_OPEN if its time has come."""
        if self.state is BreakerState.OPEN and now >= self.opened_at + self.recovery_timeout:
            return BreakerState.HALF_OPEN, self._move(Signal.RECOVERY_DUE, now, "recovery_due")
        return self.state, None

    # -- admission -----------------------------------------------------------------------

    def admit(self, now: float) -> tuple[Ticket | None, Change | None]:
        """Decide whether a call may go through.

        Returns:
            (ticket, change): the ticket to pass back with the outcome, or None when the call
            is rejected; and the state change admission caused (OPEN to HALF_OPEN), if any.
        """
        gate = self.gate
        if gate is not None:
            return gate, None
        _, change = self.current(now)
        trial = self.trial
        if trial is None:  # still OPEN
            return None, change
        if self.trials_in_flight + trial.successes >= self.half_open_max_calls:
            return None, change
        self.trials_in_flight += 1
        return trial, change

    # -- outcomes ------------------------------------------------------------------------

    def _slow(self, duration: float) -> int:
        rule = self.slow_call
        return SLOW if rule is not None and duration >= rule.duration else 0

    def on_success(self, ticket: Ticket, now: float, duration: float = 0.0) -> Change | None:
        """Record a call that returned; `duration` (seconds) matters for slow-call rules.

        Returns:
            The state change it caused, if any.
        """
        slow = self._slow(duration)
        if type(ticket) is TrialEpoch:
            self.trials_in_flight -= 1
            if ticket is not self.trial:
                return None
            if slow:
                return self._move(Signal.TRIAL_FAILED, now, "slow_trial")
            ticket.successes += 1
            if ticket.successes >= self.half_open_max_calls:
                return self._move(Signal.TRIALS_PASSED, now, "trials_passed")
            return None
        if ticket is not self.gate:
            return None
        assert isinstance(ticket, ClosedEpoch)
        ticket.failures = 0
        return None if self.window is None else self._judge_window(now, slow)

    def on_failure(self, ticket: Ticket, now: float, duration: float = 0.0) -> Change | None:
        """Record a call that raised an exception that counts as failure.

        Returns:
            The state change it caused, if any.
        """
        if type(ticket) is TrialEpoch:
            self.trials_in_flight -= 1
            if ticket is not self.trial:
                return None
            return self._move(Signal.TRIAL_FAILED, now, "trial_failed")
        if ticket is not self.gate:
            return None
        assert isinstance(ticket, ClosedEpoch)
        ticket.failures += 1
        if self.failure_threshold is not None and ticket.failures >= self.failure_threshold:
            return self._move(Signal.TRIPPED, now, "consecutive_failures")
        if self.window is None:
            return None
        return self._judge_window(now, FAILED | self._slow(duration))

    def on_ignored(self, ticket: Ticket) -> None:
        """Record a call whose outcome does not count (ignored error, cancellation).

        It is neither success nor failure; a trial gives its permit back.
        """
        if type(ticket) is TrialEpoch:
            self.trials_in_flight -= 1

    def _judge_window(self, now: float, flags: int) -> Change | None:
        window, spec = self.window, self.window_spec
        assert window is not None
        assert spec is not None
        calls, failures, slow = window.record(now, flags)
        if calls < spec.min_calls:
            return None
        if failures and failures >= spec.threshold * calls:
            return self._move(Signal.TRIPPED, now, "failure_rate")
        rule = self.slow_call
        if rule is not None and slow and slow >= rule.rate_threshold * calls:
            return self._move(Signal.TRIPPED, now, "slow_call_rate")
        return None
