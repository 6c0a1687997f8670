"""The circuit breaker: stop calling what is failing, try again later with a few trial calls.

The decisions live in `_breaker_core` (no I/O); this module is the driver. It reads the clock,
holds a short lock for each state decision (never while the protected call runs), persists
changes to an optional `BreakerStore` and publishes them on an optional `EventBus`.

The success path in the CLOSED state reads one attribute before the call and writes one after
it; failure counting, windows and transitions take the lock.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from types import CoroutineType, TracebackType
from typing import (
    Any,
    ClassVar,
    NoReturn,
    ParamSpec,
    TypeVar,
    cast,
)

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal.errors import PolicyError
from selfheal.events import EventBus, Severity
from selfheal.interfaces import (
    BreakerRecord,
    BreakerState,
    BreakerStore,
    SharedBreakerStore,
    TrialOutcome,
    TrialPermit,
    breaker_store_from_url,
)
from selfheal.policies._base import Policy
from selfheal.policies._breaker_core import (
    BreakerMachine,
    Change,
    ClosedEpoch,
    FailureRateWindow,
    SlowCallRule,
    TrialEpoch,
)

__all__ = [
    "BreakerRecord",
    "BreakerState",
    "BreakerStore",
    "CircuitBreaker",
    "CircuitBreakerError",
    "FailureRateWindow",
    "MemoryBreakerStore",
    "SlowCallRule",
]

P = ParamSpec("P")
R = TypeVar("R")

_Ticket = ClosedEpoch | TrialEpoch
IgnoreSpec = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


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


class MemoryBreakerStore:
    """A `BreakerStore` in a dict: survives re-creating a breaker, shared within a process."""

    __slots__ = ("_lock", "_records")

    def __init__(self) -> None:
        self._records: dict[str, BreakerRecord] = {}
        self._lock = threading.Lock()

    def load(self, name: str) -> BreakerRecord | None:
        """Return the record of breaker `name`, or None if there is none."""
        with self._lock:
            return self._records.get(name)

    def save(self, name: str, record: BreakerRecord) -> None:
        """Store `record` as the state of breaker `name`."""
        with self._lock:
            self._records[name] = record

    def __repr__(self) -> str:
        return f"MemoryBreakerStore(names={sorted(self._records)!r})"


_SEVERITY = {
    BreakerState.OPEN: Severity.ERROR,
    BreakerState.HALF_OPEN: Severity.INFO,
    BreakerState.CLOSED: Severity.INFO,
}


class CircuitBreaker(Policy):
    """Stops calls to a failing dependency, then lets a bounded number of trials test it.

    CLOSED: calls go through; it trips to OPEN after `failure_threshold` consecutive
    failures, or when a `window`'s failure rate or a `slow_call` rule's slow-call rate reaches
    its threshold. OPEN: every call fails at once with `CircuitBreakerError` until
    `recovery_timeout` seconds have passed. HALF_OPEN: at most `half_open_max_calls` trial calls
    run at a time; when that many have succeeded it closes, when one fails it opens again.

    Use it as a decorator (on ``def`` or ``async def``), with ``.execute(func, *args)``, or as
    ``with breaker:`` / ``async with breaker:``. Exceptions that are not `Exception` subclasses
    (cancellation, KeyboardInterrupt) and those matching `ignore` pass through and count as
    neither failure nor success; a trial interrupted that way gives its permit back.

    Args:
        failure_threshold: Consecutive failures that trip the breaker; None to trip only on
            the window's rates.
        recovery_timeout: Seconds the breaker stays OPEN before a trial call.
        name: Names the events (``breaker.<name>.opened``) and the store record; no dots.
        half_open_max_calls: Trial calls allowed at once in HALF_OPEN, and the number of
            successful trials that close the breaker.
        window: Trip on the failure rate over recent calls (`FailureRateWindow`).
        ignore: Exception types (or a predicate on the exception) that do not count, e.g. a
            caller's bad request.
        slow_call: Count slow calls and trip on their rate (`SlowCallRule`); needs `window`.
        store: Where to keep the state (`BreakerStore`), or the URL of a fleet's shared store
            (``"redis://host:6379/0"``: a trip on any node opens the breaker on every node,
            and the half-open trial calls are counted fleet-wide); None keeps it in the object.
        clock: Time source.
        bus: Where to publish ``breaker.<name>.opened``, ``.half_opened``, ``.closed`` and,
            when someone subscribes to it, ``.rejected``.

    Raises:
        ValueError: If an option is out of range; the message names it.
    """

    CLOSED: ClassVar[BreakerState] = BreakerState.CLOSED
    OPEN: ClassVar[BreakerState] = BreakerState.OPEN
    HALF_OPEN: ClassVar[BreakerState] = BreakerState.HALF_OPEN

    __slots__ = (
        "_bus",
        "_clock",
        "_counts",
        "_lean",
        "_lock",
        "_machine",
        "_monotonic",
        "_permits",
        "_saved",
        "_shared",
        "_stack",
        "_store",
        "_timed",
        "_topics",
        "_windowed",
        "name",
    )

    def __init__(
        self,
        failure_threshold: int | None = 5,
        recovery_timeout: float = 30,
        *,
        name: str = "default",
        half_open_max_calls: int = 1,
        window: FailureRateWindow | None = None,
        ignore: IgnoreSpec = (),
        slow_call: SlowCallRule | None = None,
        store: BreakerStore | str | None = None,
        clock: Clock = SYSTEM_CLOCK,
        bus: EventBus | None = None,
    ) -> None:
        if isinstance(store, str):
            store = breaker_store_from_url(store, bus=bus)
        _validate(failure_threshold, recovery_timeout, name, half_open_max_calls)
        if window is not None and not isinstance(window, FailureRateWindow):
            raise ValueError(f"CircuitBreaker: window must be a FailureRateWindow, got {window!r}")
        if slow_call is not None:
            if not isinstance(slow_call, SlowCallRule):
                raise ValueError(
                    f"CircuitBreaker: slow_call must be a SlowCallRule, got {slow_call!r}"
                )
            if window is None:
                raise ValueError(
                    "CircuitBreaker: slow_call needs window= (a FailureRateWindow) to measure "
                    "the slow-call rate over"
                )
        if failure_threshold is None and window is None:
            raise ValueError(
                "CircuitBreaker: failure_threshold=None needs window= so that something trips it"
            )
        self.name = name
        self._clock = clock
        self._monotonic = clock.monotonic
        self._bus = bus
        self._store = store
        # A fleet's store: its trial permits are asked for outside the lock, one per trial.
        self._shared = store if isinstance(store, SharedBreakerStore) else None
        self._permits: list[TrialPermit] = []
        self._saved: BreakerRecord | None = None
        self._lock = threading.Lock()
        self._counts = _classifier(ignore)
        self._timed = slow_call is not None
        self._windowed = window is not None
        # Lean: nothing to record on a CLOSED success but the consecutive-failure reset.
        self._lean = not self._timed and not self._windowed
        self._machine = BreakerMachine(
            failure_threshold=failure_threshold,
            recovery_timeout=float(recovery_timeout),
            half_open_max_calls=half_open_max_calls,
            window=window,
            slow_call=slow_call,
            now=clock.monotonic(),
        )
        self._topics = {
            BreakerState.OPEN: f"breaker.{name}.opened",
            BreakerState.HALF_OPEN: f"breaker.{name}.half_opened",
            BreakerState.CLOSED: f"breaker.{name}.closed",
            None: f"breaker.{name}.rejected",
        }
        # Tickets of `with` blocks, per thread and per task; a linked stack for nesting.
        self._stack: ContextVar[tuple[_Ticket, float, Any] | None] = ContextVar(
            f"selfheal.breaker.{name}", default=None
        )
        if store is not None:
            self._adopt(store.load(name), announce=False)
        if self._shared is not None:
            self._shared.watch(name, self.refresh)

    def __repr__(self) -> str:
        m = self._machine
        return (
            f"CircuitBreaker(name={self.name!r}, state={m.state.value}, "
            f"failure_threshold={m.failure_threshold!r}, recovery_timeout={m.recovery_timeout!r}, "
            f"half_open_max_calls={m.half_open_max_calls!r})"
        )

    # -- observing and steering ----------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        """Return the current state; an OPEN breaker whose timeout has passed turns HALF_OPEN."""
        machine = self._machine
        if machine.gate is not None:
            return BreakerState.CLOSED
        with self._lock:
            now = self._monotonic()
            adopted = self._follow_store_locked(now)
            state, change = machine.current(now)
            if change is not None:
                self._persist(change)
        for c in (adopted, change):
            if c is not None:
                self._announce(c)
        return state

    @property
    def remaining(self) -> float:
        """Return seconds until the next trial call may go through (0.0 unless OPEN)."""
        return self._machine.remaining(self._monotonic())

    @property
    def failure_count(self) -> int:
        """Return the current run of consecutive failures (0 unless CLOSED)."""
        gate = self._machine.gate
        return gate.failures if gate is not None else 0

    @property
    def trials_in_flight(self) -> int:
        """Return how many half-open trial calls are running now."""
        return self._machine.trials_in_flight

    def open(self) -> None:
        """Open the breaker now; trial calls begin after `recovery_timeout`."""
        self._force(BreakerState.OPEN)

    def close(self) -> None:
        """Close the breaker now and forget the failures counted so far."""
        self._force(BreakerState.CLOSED)

    def reset(self) -> None:
        """Close the breaker now (the same as `close`)."""
        self._force(BreakerState.CLOSED)

    def refresh(self) -> None:
        """Adopt the state the store holds (e.g. when told another instance changed it)."""
        if self._store is not None:
            self._adopt(self._store.load(self.name), announce=True)

    def _force(self, state: BreakerState) -> None:
        with self._lock:
            change = self._machine.force(state, self._monotonic())
            self._persist(change)
        self._announce(change)

    # -- the protected call --------------------------------------------------------------

    def execute(self, func: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call `func(*args, **kwargs)` through the breaker (the article's API).

        Args:
            func: The protected function.
            *args: Its positional arguments.
            **kwargs: Its keyword arguments.

        Returns:
            What `func` returns.

        Raises:
            CircuitBreakerError: If the breaker rejects the call.
            TypeError: If `func` is a coroutine function (use `aexecute`).
        """
        ticket = self._machine.gate or self._enter()
        start = self._monotonic() if self._timed else 0.0
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            self._failed(ticket, exc, start)
            raise
        if type(result) is CoroutineType:
            self._misused(ticket, func, cast("CoroutineType[Any, Any, Any]", result))
        self._succeeded(ticket, start)
        return result

    def _misused(
        self, ticket: _Ticket, func: object, coro: CoroutineType[Any, Any, Any]
    ) -> NoReturn:
        # The coroutine has not run: its outcome is unknown, so it counts as nothing.
        coro.close()
        if type(ticket) is TrialEpoch:
            with self._lock:
                self._machine.on_ignored(ticket)
                self._give_back(TrialOutcome.IGNORED)
        raise TypeError(
            f"CircuitBreaker.execute: {func!r} is async; use 'await breaker.aexecute(...)' "
            "(or acall), or its failures would never count"
        )

    async def aexecute(
        self, func: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """Await `func(*args, **kwargs)` through the breaker.

        Args:
            func: The protected coroutine function.
            *args: Its positional arguments.
            **kwargs: Its keyword arguments.

        Returns:
            What `func` returns.

        Raises:
            CircuitBreakerError: If the breaker rejects the call.
        """
        ticket = self._machine.gate or await self._aenter()
        start = self._monotonic() if self._timed else 0.0
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            self._failed(ticket, exc, start)
            raise
        self._succeeded(ticket, start)
        return result

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run `fn(*args, **kwargs)` once through the breaker (no wrapper is built)."""
        return self.execute(fn, *args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Await `fn(*args, **kwargs)` once through the breaker (no wrapper is built)."""
        return await self.aexecute(fn, *args, **kwargs)

    def wrap(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Return a sync function that calls `fn` through this breaker."""
        machine, enter, failed, succeeded = (
            self._machine,
            self._enter,
            self._failed,
            self._succeeded,
        )
        if self._lean:

            def lean(*args: P.args, **kwargs: P.kwargs) -> R:
                gate = machine.gate
                if gate is None:
                    ticket = enter()
                    try:
                        result = fn(*args, **kwargs)
                    except BaseException as exc:
                        failed(ticket, exc, 0.0)
                        raise
                    succeeded(ticket, 0.0)
                    return result
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    failed(gate, exc, 0.0)
                    raise
                # A lone attribute store is atomic; a racing failure at worst trips one
                # call early or late, which consecutive counting under concurrency is anyway.
                gate.failures = 0
                return result

            return lean

        monotonic = self._monotonic
        timed = self._timed

        def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
            ticket = machine.gate or enter()
            start = monotonic() if timed else 0.0
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                failed(ticket, exc, start)
                raise
            succeeded(ticket, start)
            return result

        return recorded

    def awrap(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        """Return a coroutine function that awaits `fn` through this breaker."""
        machine, enter, failed, succeeded = (
            self._machine,
            self._aenter,
            self._failed,
            self._succeeded,
        )
        if self._lean:

            async def lean(*args: P.args, **kwargs: P.kwargs) -> R:
                gate = machine.gate
                if gate is None:
                    ticket = await enter()
                    try:
                        result = await fn(*args, **kwargs)
                    except BaseException as exc:
                        failed(ticket, exc, 0.0)
                        raise
                    succeeded(ticket, 0.0)
                    return result
                try:
                    result = await fn(*args, **kwargs)
                except BaseException as exc:
                    failed(gate, exc, 0.0)
                    raise
                gate.failures = 0
                return result

            return lean

        monotonic = self._monotonic
        timed = self._timed

        async def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
            ticket = machine.gate or await enter()
            start = monotonic() if timed else 0.0
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                failed(ticket, exc, start)
                raise
            succeeded(ticket, start)
            return result

        return recorded

    def __enter__(self) -> CircuitBreaker:
        ticket = self._machine.gate or self._enter()
        start = self._monotonic() if self._timed else 0.0
        self._stack.set((ticket, start, self._stack.get()))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        entry = self._stack.get()
        if entry is None:  # pragma: no cover - only by calling __exit__ by hand
            raise RuntimeError("CircuitBreaker.__exit__ without a matching __enter__")
        ticket, start, outer = entry
        self._stack.set(outer)
        if exc is None:
            self._succeeded(ticket, start)
        else:
            self._failed(ticket, exc, start)

    async def __aenter__(self) -> CircuitBreaker:
        ticket = self._machine.gate or await self._aenter()
        start = self._monotonic() if self._timed else 0.0
        self._stack.set((ticket, start, self._stack.get()))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    # -- the slow paths ------------------------------------------------------------------

    def _enter(self) -> _Ticket:
        """Admit a call when the breaker is not CLOSED (or raise `CircuitBreakerError`)."""
        ticket = self._admit()
        shared = self._shared
        if shared is None or type(ticket) is not TrialEpoch:
            return ticket
        m = self._machine
        permit = shared.acquire_trial(
            self.name, max_calls=m.half_open_max_calls, recovery_timeout=m.recovery_timeout
        )
        return self._trial(ticket, permit)

    async def _aenter(self) -> _Ticket:
        """Async twin of `_enter`: waiting for a fleet's trial permit never blocks the loop."""
        ticket = self._admit()
        shared = self._shared
        if shared is None or type(ticket) is not TrialEpoch:
            return ticket
        m = self._machine
        permit = await shared.aacquire_trial(
            self.name, max_calls=m.half_open_max_calls, recovery_timeout=m.recovery_timeout
        )
        return self._trial(ticket, permit)

    def _trial(self, ticket: TrialEpoch, permit: TrialPermit | None) -> _Ticket:
        """Keep the fleet's permit of a trial, or give the local one back and reject."""
        with self._lock:
            if permit is None:
                self._machine.on_ignored(ticket)
                state, remaining = self._machine.state, self._machine.remaining(self._monotonic())
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

    def _admit(self) -> _Ticket:
        """Admit a call on this breaker's own state (or raise `CircuitBreakerError`)."""
        machine = self._machine
        with self._lock:
            now = self._monotonic()
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

    def _reject(self, state: BreakerState, remaining: float) -> NoReturn:
        bus = self._bus
        topic = self._topics[None]
        if bus is not None and bus.has_subscribers(topic):
            bus.emit(topic, self.name, Severity.WARNING, state=state.value, remaining=remaining)
        raise CircuitBreakerError(self.name, state, remaining)

    def _succeeded(self, ticket: _Ticket, start: float) -> None:
        if self._lean and type(ticket) is ClosedEpoch:
            ticket.failures = 0
            return
        monotonic = self._monotonic
        with self._lock:
            # Read inside the lock, so a time window sees its calls in time order.
            now = monotonic()
            if type(ticket) is TrialEpoch:
                self._give_back(TrialOutcome.SUCCESS)
            change = self._machine.on_success(ticket, now, now - start if self._timed else 0.0)
            if change is not None:
                self._persist(change)
        if change is not None:
            self._announce(change)

    def _failed(self, ticket: _Ticket, exc: BaseException, start: float) -> None:
        if not self._counts(exc):
            if type(ticket) is TrialEpoch:
                with self._lock:
                    self._machine.on_ignored(ticket)
                    self._give_back(TrialOutcome.IGNORED)
            return
        monotonic = self._monotonic
        with self._lock:
            now = monotonic()
            if type(ticket) is TrialEpoch:
                self._give_back(TrialOutcome.FAILURE)
            change = self._machine.on_failure(ticket, now, now - start if self._timed else 0.0)
            if change is not None:
                self._persist(change)
        if change is not None:
            self._announce(change)

    # -- store and events ----------------------------------------------------------------

    def _persist(self, change: Change) -> None:
        store = self._store
        if store is not None:
            machine = self._machine
            wall_opened = self._clock.time() - (change.at - machine.opened_at)
            self._saved = BreakerRecord(change.new, wall_opened)
            store.save(self.name, self._saved)

    def _follow_store_locked(self, now: float) -> Change | None:
        machine, store = self._machine, self._store
        if store is None or machine.state is not BreakerState.OPEN or machine.remaining(now):
            return None
        # The recovery timeout is over: before probing, follow the store in case another
        # instance re-opened or closed the breaker meanwhile.
        return self._adopt_locked(store.load(self.name), now)

    def _adopt(self, record: BreakerRecord | None, *, announce: bool) -> None:
        with self._lock:
            change = self._adopt_locked(record, self._monotonic())
        if change is not None and announce:
            self._announce(change)

    def _adopt_locked(self, record: BreakerRecord | None, now: float) -> Change | None:
        machine = self._machine
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
            data["recovery_timeout"] = self._machine.recovery_timeout
        bus.emit(self._topics[change.new], self.name, _SEVERITY[change.new], **data)


def _classifier(ignore: IgnoreSpec) -> Callable[[BaseException], bool]:
    """Return a predicate telling whether an exception counts as a failure."""
    if isinstance(ignore, type) and issubclass(ignore, BaseException):
        types: tuple[type[BaseException], ...] = (ignore,)
    elif isinstance(ignore, tuple):
        for item in ignore:
            if not (isinstance(item, type) and issubclass(item, BaseException)):
                raise ValueError(
                    f"CircuitBreaker: ignore must hold exception types, got {item!r} in it"
                )
        types = ignore
    elif callable(ignore):
        predicate = cast("Callable[[BaseException], bool]", ignore)

        def counts_unless(exc: BaseException) -> bool:
            return isinstance(exc, Exception) and not predicate(exc)

        return counts_unless
    else:
        raise ValueError(
            "CircuitBreaker: ignore must be an exception type, a tuple of them or a predicate, "
            f"got {ignore!r}"
        )

    def counts(exc: BaseException) -> bool:
        return isinstance(exc, Exception) and not isinstance(exc, types)

    return counts


def _validate(
    failure_threshold: object, recovery_timeout: object, name: object, half_open_max_calls: object
) -> None:
    if failure_threshold is not None and (
        isinstance(failure_threshold, bool)
        or not isinstance(failure_threshold, int)
        or failure_threshold < 1
    ):
        raise ValueError(
            "CircuitBreaker: failure_threshold must be an int >= 1 or None, "
            f"got {failure_threshold!r}"
        )
    if (
        isinstance(recovery_timeout, bool)
        or not isinstance(recovery_timeout, int | float)
        or not recovery_timeout >= 0
    ):
        raise ValueError(
            f"CircuitBreaker: recovery_timeout must be seconds >= 0, got {recovery_timeout!r}"
        )
    if not isinstance(name, str) or not name or "." in name or "*" in name:
        raise ValueError(
            f"CircuitBreaker: name must be a non-empty string without '.' or '*', got {name!r}"
        )
    if (
        isinstance(half_open_max_calls, bool)
        or not isinstance(half_open_max_calls, int)
        or half_open_max_calls < 1
    ):
        raise ValueError(
            f"CircuitBreaker: half_open_max_calls must be an int >= 1, got {half_open_max_calls!r}"
        )
