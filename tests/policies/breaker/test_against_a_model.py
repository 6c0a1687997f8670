"""A Hypothesis state machine drives the breaker and checks it against a small model.

Calls can be held open (each in its own `contextvars.Context`, entered with ``with`` semantics
through ``__enter__``/``__exit__``), so trials overlap, outlive their half-open period and
finish in any order. The model is deliberately naive: plain lists and counters, re-deciding
everything from the rules in the documentation.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from policy_helpers import CLOSED, HALF_OPEN, OPEN, BadRequest, Boom
from selfheal import BreakerState, CircuitBreaker, CircuitBreakerError, FailureRateWindow
from selfheal.testing import FakeClock

OUTCOMES = {
    "success": None,
    "failure": Boom,
    "ignored": BadRequest,
    "cancelled": KeyboardInterrupt,
}


@dataclass
class Model:
    threshold: int | None
    recovery: float
    n: int
    window: tuple[int, int, float] | None  # size, min_calls, threshold
    state: BreakerState = CLOSED
    opened_at: float = 0.0
    consecutive: int = 0
    outcomes: list[bool] = field(default_factory=list)  # failed?, since the last close
    closed_epoch: int = 0
    half_epoch: int = 0
    successes: int = 0
    trials: int = 0  # in flight, whatever their period

    def advance_to(self, now: float) -> None:
        if self.state is OPEN and now >= self.opened_at + self.recovery:
            self.state = HALF_OPEN
            self.half_epoch += 1
            self.successes = 0

    def open(self, now: float) -> None:
        self.state = OPEN
        self.opened_at = now

    def close(self) -> None:
        self.state = CLOSED
        self.closed_epoch += 1
        self.consecutive = 0
        self.outcomes = []

    def admit(self, now: float) -> tuple[str, int] | None:
        self.advance_to(now)
        if self.state is CLOSED:
            return ("closed", self.closed_epoch)
        if self.state is HALF_OPEN and self.trials + self.successes < self.n:
            self.trials += 1
            return ("trial", self.half_epoch)
        return None

    def finish(self, ticket: tuple[str, int], outcome: str, now: float) -> None:
        kind, epoch = ticket
        if kind == "trial":
            self.trials -= 1
            if self.state is not HALF_OPEN or epoch != self.half_epoch:
                return
            if outcome == "success":
                self.successes += 1
                if self.successes == self.n:
                    self.close()
            elif outcome == "failure":
                self.open(now)
            return
        if self.state is not CLOSED or epoch != self.closed_epoch:
            return
        if outcome == "success":
            self.consecutive = 0
            self._window(False, now)
        elif outcome == "failure":
            self.consecutive += 1
            if self.threshold is not None and self.consecutive >= self.threshold:
                self.open(now)
                return
            self._window(True, now)

    def _window(self, failed: bool, now: float) -> None:
        if self.window is None:
            return
        size, min_calls, threshold = self.window
        self.outcomes = [*self.outcomes, failed][-size:]
        failures = sum(self.outcomes)
        if (
            len(self.outcomes) >= min(min_calls, size)  # a full window is always judged
            and failures
            and failures >= threshold * len(self.outcomes)
        ):
            self.open(now)


@dataclass
class InFlight:
    context: contextvars.Context
    ticket: tuple[str, int]


class BreakerMachineTest(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.inflight: list[InFlight] = []

    @initialize(
        threshold=st.one_of(st.none(), st.integers(1, 4)),
        recovery=st.sampled_from([1.0, 5.0, 10.0]),
        n=st.integers(1, 3),
        window=st.one_of(
            st.none(),
            st.tuples(st.integers(2, 6), st.integers(1, 8), st.sampled_from([0.5, 0.75, 1.0])),
        ),
    )
    def setup(
        self,
        threshold: int | None,
        recovery: float,
        n: int,
        window: tuple[int, int, float] | None,
    ) -> None:
        if threshold is None and window is None:
            threshold = 2
        self.model = Model(threshold, recovery, n, window)
        self.breaker = CircuitBreaker(
            failure_threshold=threshold,
            recovery_timeout=recovery,
            half_open_max_calls=n,
            window=None if window is None else FailureRateWindow(window[0], "count", *window[1:]),
            ignore=BadRequest,
            clock=self.clock,
        )

    def _start(self) -> InFlight | None:
        now = self.clock.monotonic()
        remaining = max(0.0, self.model.opened_at + self.model.recovery - now)
        expected = self.model.admit(now)
        context = contextvars.copy_context()
        rejection: CircuitBreakerError | None = None
        try:
            context.run(self.breaker.__enter__)
        except CircuitBreakerError as err:
            rejection = err
        if rejection is None:
            assert expected is not None, "admitted, but the model rejects"
            return InFlight(context, expected)
        assert expected is None, f"rejected, but the model admits {expected}"
        if self.model.state is OPEN:
            assert rejection.state is OPEN
            assert rejection.remaining == pytest.approx(remaining)
            assert rejection.remaining > 0  # an OPEN breaker never admits before its timeout
        else:
            assert rejection.state is HALF_OPEN
            assert rejection.remaining == 0.0
        return None

    def _finish(self, call: InFlight, outcome: str) -> None:
        # __exit__ records the outcome; the exception itself is not re-raised by it.
        call.context.run(self._exit_with, OUTCOMES[outcome])
        self.model.finish(call.ticket, outcome, self.clock.monotonic())

    def _exit_with(self, exc_type: type[BaseException] | None) -> None:
        exc = None if exc_type is None else exc_type()
        self.breaker.__exit__(exc_type, exc, None)

    @rule(outcome=st.sampled_from(sorted(OUTCOMES)))
    def call(self, outcome: str) -> None:
        started = self._start()
        if started is not None:
            self._finish(started, outcome)

    @precondition(lambda self: len(self.inflight) < 6)
    @rule()
    def start_call(self) -> None:
        started = self._start()
        if started is not None:
            self.inflight.append(started)

    @precondition(lambda self: self.inflight)
    @rule(data=st.data(), outcome=st.sampled_from(sorted(OUTCOMES)))
    def finish_call(self, data: st.DataObject, outcome: str) -> None:
        index = data.draw(st.integers(0, len(self.inflight) - 1))
        self._finish(self.inflight.pop(index), outcome)

    @rule(seconds=st.sampled_from([0.25, 1.0, 2.5, 5.0, 10.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reopen_and_recover(self) -> None:
        # A shortcut to a fresh HALF_OPEN period, so that trials overlapping two periods
        # (the subtle case) come up often.
        self.manual_open()
        self.clock.advance(self.model.recovery)

    @rule()
    def manual_open(self) -> None:
        self.breaker.open()
        self.model.open(self.clock.monotonic())

    @rule()
    def manual_close(self) -> None:
        self.breaker.close()
        self.model.close()

    @invariant()
    def state_matches_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        self.model.advance_to(self.clock.monotonic())
        state = self.breaker.state
        assert state in set(BreakerState)
        assert state is self.model.state
        assert self.breaker.trials_in_flight == self.model.trials
        assert 0 <= self.breaker.trials_in_flight <= self.model.n
        if state is CLOSED:
            assert self.breaker.failure_count == self.model.consecutive
            assert self.breaker.remaining == 0.0
        if state is OPEN:
            expected = self.model.opened_at + self.model.recovery - self.clock.monotonic()
            assert self.breaker.remaining == pytest.approx(expected)
            assert self.breaker.remaining > 0


BreakerMachineTest.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_breaker_state_machine = BreakerMachineTest.TestCase
