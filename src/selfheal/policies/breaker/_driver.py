"""The breaker's driver: runs the pure `BreakerMachine` against a real clock, lock, store and bus.

Every front end of `CircuitBreaker` (the sync and async wrappers, ``execute``, ``with``) does
the same three steps: read ``machine.gate`` (the CLOSED fast path) or ask `enter` (sync) or
`aenter` (async) for a ticket, run the call, then report `succeeded` or `failed`. The steps
are written once, here; they hold a short lock for each state decision (never while the
protected call runs), persist changes to an optional `BreakerStore` and publish them on an
optional `EventBus`, after the lock is released. With a fleet's `SharedBreakerStore`, a
half-open trial also needs the fleet's permit, asked for outside the lock: `enter` waits for
it blocking, `aenter` awaits it, and that is the only difference between the two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NoReturn

from selfheal._clock import Clock
from selfheal.errors import PolicyError
from selfheal.events import EventBus, Severity
from selfheal.interfaces import (
    BreakerRecord,
    BreakerState,
    BreakerStore,
    SharedBreakerStore,
    TrialOutcome,
    TrialPermit,
)
from selfheal.policies.breaker._machine import (
    BreakerMachine,
    Change,
    ClosedEpoch,
    Ticket,
    TrialEpoch,
)

__all__ = ["BreakerDriver", "CircuitBreakerError"]


class CircuitBreakerError(PolicyError):
    """Raised instead of calling through an open breaker (or a half-open one with no permit).

    Attributes:
        name: The breaker's name.
        state: Its state when the call was rejected.
        remaining: Seconds until the next trial call may go through (0.0 when half-open: a
            permit comes back as soon as a running trial ends).
    """

    def __init__(self, name: str, state: BreakerState, remaining: float) -> None:
        self.name = name
        self.state = state
        self.remaining = remaining
        if state is BreakerState.OPEN:
            detail = f"is open; next trial call in {remaining:.3f} s"
        else:
            detail = "is half-open and all its trial calls are in progress"
        super().__init__(f"circuit breaker {name!r} {detail}")

    @property
    def retry_after(self) -> float:
        """Return `remaining`, under the name retry policies look for as a delay hint."""
        return self.remaining

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.state, self.remaining))


_SEVERITY = {
    BreakerState.OPEN: Severity.ERROR,
    BreakerState.HALF_OPEN: Severity.INFO,
    BreakerState.CLOSED: Severity.INFO,
}


class BreakerDriver:
    """One breaker's machine, lock, store and events; the steps every front end takes.

    Args:
        machine: The decisions.
        name: The breaker's name (events, store key, errors).
        clock: Time source.
        store: Where the state is kept beyond this object, or None.
        bus: Where state changes are published, or None.
        counts: Tells whether an exception counts as a failure.
        timed: Whether call durations matter (a slow-call rule).
        lean: Whether a CLOSED success records nothing but the consecutive-failure reset.
    """

    __slots__ = (
        "_bus",
        "_clock",
        "_counts",
        "_lock",
        "_permits",
        "_saved",
        "_shared",
        "_topics",
        "lean",
        "machine",
        "monotonic",
        "name",
        "store",
        "timed",
    )

    def __init__(
        self,
        machine: BreakerMachine,
        *,
        name: str,
        clock: Clock,
        store: BreakerStore | None,
        bus: EventBus | None,
        counts: Callable[[BaseException], bool],
        timed: bool,
        lean: bool,
    ) -> None:
        self.machine = machine
        self.name = name
        self._clock = clock
        self.monotonic = clock.monotonic
        self.store = store
        self._bus = bus
        self._counts = counts
        self.timed = timed
        self.lean = lean
        # A fleet's store: its trial permits are asked for outside the lock, one per trial.
        self._shared = store if isinstance(store, SharedBreakerStore) else None
        self._permits: list[TrialPermit] = []
        self._saved: BreakerRecord | None = None
        self._lock = threading.Lock()
        self._topics = {
            BreakerState.OPEN: f"breaker.{name}.opened",
            BreakerState.HALF_OPEN: f"breaker.{name}.half_opened",
            BreakerState.CLOSED: f"breaker.{name}.closed",
            None: f"breaker.{name}.rejected",
        }
        if store is not None:
            self.adopt(store.load(name), announce=False)
        if self._shared is not None:
            self._shared.watch(name, self.refresh)

    # -- the steps of a call -------------------------------------------------------------

    def enter(self) -> Ticket:
        """Admit a call when the breaker is not CLOSED (or raise `CircuitBreakerError`)."""
        ticket = self._admit()
        shared = self._shared
        if shared is None or type(ticket) is not TrialEpoch:
            return ticket
        m = self.machine
        permit = shared.acquire_trial(
            self.name, max_calls=m.half_open_max_calls, recovery_timeout=m.recovery_timeout
        )
        return self._trial(ticket, permit)

    async def aenter(self) -> Ticket:
        """`enter` for async callers: waiting for a fleet's trial permit never blocks the loop."""
        ticket = self._admit()
        shared = self._shared
        if shared is None or type(ticket) is not TrialEpoch:
            return ticket
        m = self.machine
        permit = await shared.aacquire_trial(
            self.name, max_calls=m.half_open_max_calls, recovery_timeout=m.recovery_timeout
        )
        return self._trial(ticket, permit)

    def _admit(self) -> Ticket:
        """Admit a call on this breaker's own state (or raise `CircuitBreakerError`)."""
        machine = self.machine
        with self._lock:
            now = self.monotonic()
            adopted = self._follow_store_locked(now)
            ticket, moved = machine.admit(now)
            if moved is not None:
                self._persist(moved)
            state, remaining = machine.state, machine.remaining(now)
        if adopted is not None:
            self._announce(adopted)
        if moved is not None:
            self._announce(moved)
        if ticket is None:
            self._reject(state, remaining)
        return ticket

    def _trial(self, ticket: TrialEpoch, permit: TrialPermit | None) -> Ticket:
        """Keep the fleet's permit of a trial, or give the local one back and reject."""
        with self._lock:
            if permit is None:
                self.machine.on_ignored(ticket)
                state, remaining = self.machine.state, self.machine.remaining(self.monotonic())
            else:
                self._permits.append(permit)
        if permit is None:
            self._reject(state, remaining)
        return ticket

    def _give_back(self, outcome: TrialOutcome) -> None:
        """Tell a fleet's store how a trial ended (called with the lock held; never waits)."""
        if self._permits:
            assert self._shared is not None
            self._shared.release_trial(self._permits.pop(0), outcome)

    def succeeded(self, ticket: Ticket, start: float) -> None:
        """Record that the call admitted with `ticket` (at `start`) returned."""
        if self.lean and type(ticket) is ClosedEpoch:
            ticket.failures = 0
            return
        with self._lock:
            # Read inside the lock, so a time window sees its calls in time order.
            now = self.monotonic()
            if type(ticket) is TrialEpoch:
                self._give_back(TrialOutcome.SUCCESS)
            duration = now - start if self.timed else 0.0
            change = self.machine.on_success(ticket, now, duration)
            if change is not None:
                self._persist(change)
        if change is not None:
            self._announce(change)

    def failed(self, ticket: Ticket, exc: BaseException, start: float) -> None:
        """Record that the call admitted with `ticket` raised `exc` (counted or not)."""
        if not self._counts(exc):
            self.ignored(ticket)
            return
        with self._lock:
            now = self.monotonic()
            if type(ticket) is TrialEpoch:
                self._give_back(TrialOutcome.FAILURE)
            duration = now - start if self.timed else 0.0
            change = self.machine.on_failure(ticket, now, duration)
            if change is not None:
                self._persist(change)
        if change is not None:
            self._announce(change)

    def ignored(self, ticket: Ticket) -> None:
        """Record that the call admitted with `ticket` ended in a way that counts as nothing."""
        if type(ticket) is TrialEpoch:
            with self._lock:
                self.machine.on_ignored(ticket)
                self._give_back(TrialOutcome.IGNORED)

    def _reject(self, state: BreakerState, remaining: float) -> NoReturn:
        bus = self._bus
        topic = self._topics[None]
        if bus is not None and bus.has_subscribers(topic):
            bus.emit(topic, self.name, Severity.WARNING, state=state.value, remaining=remaining)
        raise CircuitBreakerError(self.name, state, remaining)

    # -- observing and steering ----------------------------------------------------------

    def state(self) -> BreakerState:
        """Return the current state, moving an OPEN breaker whose time is up to HALF_OPEN."""
        machine = self.machine
        with self._lock:
            now = self.monotonic()
            adopted = self._follow_store_locked(now)
            state, change = machine.current(now)
            if change is not None:
                self._persist(change)
        for c in (adopted, change):
            if c is not None:
                self._announce(c)
        return state

    def force(self, state: BreakerState) -> None:
        """Put the breaker in `state` (OPEN or CLOSED) now."""
        with self._lock:
            change = self.machine.force(state, self.monotonic())
            self._persist(change)
        self._announce(change)

    def refresh(self) -> None:
        """Adopt the state the store holds, if there is a store."""
        if self.store is not None:
            self.adopt(self.store.load(self.name), announce=True)

    # -- store and events ----------------------------------------------------------------

    def _persist(self, change: Change) -> None:
        store = self.store
        if store is not None:
            wall_opened = self._clock.time() - (change.at - self.machine.opened_at)
            self._saved = BreakerRecord(change.new, wall_opened)
            store.save(self.name, self._saved)

    def _follow_store_locked(self, now: float) -> Change | None:
        machine, store = self.machine, self.store
        if store is None or machine.state is not BreakerState.OPEN or machine.remaining(now):
            return None
        # The recovery timeout is over: before probing, follow the store in case another
        # instance re-opened or closed the breaker meanwhile.
        return self._adopt_locked(store.load(self.name), now)

    def adopt(self, record: BreakerRecord | None, *, announce: bool) -> None:
        """Take on `record` (from the store) unless it is what this instance saved itself."""
        with self._lock:
            change = self._adopt_locked(record, self.monotonic())
        if change is not None and announce:
            self._announce(change)

    def _adopt_locked(self, record: BreakerRecord | None, now: float) -> Change | None:
        machine = self.machine
        if record is None or record == self._saved:
            return None  # nothing stored, or what this instance stored itself
        self._saved = record
        if record.state is BreakerState.CLOSED:
            if machine.state is BreakerState.CLOSED:
                return None
            return machine.force(BreakerState.CLOSED, now, "store")
        # OPEN, or HALF_OPEN elsewhere: here it is OPEN since then, and trials start locally
        # once the recovery timeout is over.
        opened_at = now - max(0.0, self._clock.time() - record.opened_at)
        if machine.state is not BreakerState.CLOSED and opened_at <= machine.opened_at:
            return None
        return machine.force(BreakerState.OPEN, opened_at, "store")

    def _announce(self, change: Change) -> None:
        bus = self._bus
        if bus is None or change.old is change.new:
            return
        data: dict[str, Any] = {"old": change.old.value, "reason": change.reason}
        if change.new is BreakerState.OPEN:
            data["recovery_timeout"] = self.machine.recovery_timeout
        bus.emit(self._topics[change.new], self.name, _SEVERITY[change.new], **data)
