"""The pure lifecycle: `transition(state, trigger, now)` and the backoff schedule."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from selfheal.supervisor import (
    BackoffSpec,
    IntensitySpec,
    Lifecycle,
    ProcessState,
    ProgramSpec,
    Trigger,
    transition,
)

S = ProcessState
T = Trigger
SPEC = ProgramSpec(
    "p",
    ("true",),
    backoff=BackoffSpec(initial=1.0, factor=2.0, maximum=8.0, jitter=0.0, reset_after=10.0),
    intensity=IntensitySpec(max_restarts=3, window=60.0),
)


def run(life: Lifecycle, *steps: tuple[Trigger, float], spec: ProgramSpec = SPEC) -> Lifecycle:
    for trigger, now in steps:
        life = transition(life, trigger, now, spec)
    return life


def test_start_ready_crash_backoff_restart() -> None:
    life = run(Lifecycle(), (T.START, 0.0))
    assert life.state is S.STARTING
    life = run(life, (T.READY, 0.1))
    assert life.state is S.RUNNING
    life = run(life, (T.EXIT_FAILURE, 0.5))
    assert life.state is S.BACKOFF
    assert life.delay == 0.0  # the first restart is immediate
    assert life.restarts == (0.5,)
    life = run(life, (T.BACKOFF_ELAPSED, 0.5))
    assert life.state is S.STARTING


def test_backoff_grows_is_capped_and_resets_after_a_healthy_run() -> None:
    life = run(Lifecycle(), (T.START, 0.0))
    delays = []
    now = 0.0
    for _ in range(6):
        now += 0.01
        life = transition(life, T.EXIT_FAILURE, now, SPEC)
        if life.state is S.FATAL:
            break
        delays.append(life.delay)
        now += life.delay
        life = transition(life, T.BACKOFF_ELAPSED, now, SPEC)
    assert delays == [0.0, 1.0, 2.0]
    assert life.state is S.FATAL  # the 4th restart within 60 s is one too many
    assert "more than 3 restarts in 60 s" in life.reason
    many = ProgramSpec(
        "p",
        ("true",),
        backoff=SPEC.backoff,
        intensity=IntensitySpec(max_restarts=100, window=60.0),
    )
    life = run(Lifecycle(), (T.START, 0.0), spec=many)
    now = 0.0
    for _ in range(8):
        now += 0.01
        life = transition(life, T.EXIT_FAILURE, now, many)
        now += life.delay
        life = transition(life, T.BACKOFF_ELAPSED, now, many)
    assert life.delay == 8.0  # capped
    # A run longer than reset_after starts the schedule over.
    life = transition(life, T.EXIT_FAILURE, now + 11.0, many)
    assert life.delay == 0.0
    assert life.attempt == 1


def test_restart_window_forgets_old_restarts() -> None:
    life = run(Lifecycle(), (T.START, 0.0))
    for now in (100.0, 200.0, 300.0, 400.0, 500.0):
        life = run(life, (T.EXIT_FAILURE, now), (T.BACKOFF_ELAPSED, now))
        assert life.state is S.STARTING


def test_restart_policies() -> None:
    never = ProgramSpec("p", ("true",), restart="never")
    on_failure = ProgramSpec("p", ("true",), restart="on-failure", exit_codes=frozenset({0, 3}))
    started = Lifecycle(S.RUNNING, 0.0)
    assert transition(started, T.EXIT_FAILURE, 1.0, never).state is S.EXITED
    assert transition(started, T.EXIT_SUCCESS, 1.0, on_failure).state is S.EXITED
    assert transition(started, T.EXIT_FAILURE, 1.0, on_failure).state is S.BACKOFF
    assert transition(started, T.EXIT_SUCCESS, 1.0, SPEC).state is S.BACKOFF


def test_stop_and_restart_by_hand_do_not_count() -> None:
    life = run(Lifecycle(), (T.START, 0.0), (T.READY, 0.0), (T.RESTART, 1.0))
    assert life.state is S.STOPPING
    assert life.then_start
    life = run(life, (T.EXIT_FAILURE, 1.1))
    assert life.state is S.STARTING
    assert life.restarts == ()
    life = run(life, (T.STOP, 2.0), (T.EXIT_FAILURE, 2.1))
    assert life.state is S.STOPPED


def test_unhealthy_restarts_through_stopping_and_counts() -> None:
    life = run(Lifecycle(), (T.START, 0.0), (T.READY, 0.0), (T.UNHEALTHY, 5.0))
    assert life.state is S.STOPPING
    life = run(life, (T.EXIT_FAILURE, 5.1))
    assert life.state is S.BACKOFF
    assert life.restarts == (5.1,)
    assert life.reason == "unhealthy"


def test_stop_during_backoff_and_start_leaves_fatal() -> None:
    life = run(Lifecycle(), (T.START, 0.0), (T.EXIT_FAILURE, 0.1), (T.STOP, 0.2))
    assert life.state is S.STOPPED
    fatal = Lifecycle(S.FATAL, 0.0, restarts=(1.0, 2.0, 3.0), attempt=3)
    life = transition(fatal, T.START, 10.0, SPEC)
    assert life.state is S.STARTING
    assert life.restarts == ()
    assert life.attempt == 0


def test_irrelevant_triggers_return_the_same_object() -> None:
    stopped = Lifecycle()
    for trigger in (T.READY, T.EXIT_FAILURE, T.BACKOFF_ELAPSED, T.UNHEALTHY, T.STOP):
        assert transition(stopped, trigger, 1.0, SPEC) is stopped


@pytest.mark.parametrize(
    ("attempt", "rand", "expected"),
    [(0, 0.9, 0.0), (1, 0.5, 0.1), (2, 0.5, 0.2), (1, 0.0, 0.08), (1, 1.0, 0.12), (20, 0.5, 30.0)],
)
def test_backoff_delay(attempt: int, rand: float, expected: float) -> None:
    assert BackoffSpec().delay(attempt, rand) == pytest.approx(expected)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(list(Trigger)), st.floats(0, 30)), min_size=1, max_size=60),
    st.floats(0, 0.999),
)
def test_invariants_under_random_sequences(steps: list[tuple[Trigger, float]], rand: float) -> None:
    life = Lifecycle()
    now = 0.0
    for trigger, dt in steps:
        now += dt
        before = life
        life = transition(life, trigger, now, SPEC, rand=rand)
        # At most max_restarts automatic restarts are ever remembered within the window.
        assert len([t for t in life.restarts if now - t < 60.0]) <= 3
        assert 0.0 <= life.delay <= SPEC.backoff.maximum
        if life.state is S.FATAL and before.state is not S.FATAL:
            assert len(before.restarts) >= 3
        if life.state is S.STOPPING:
            assert before.state in (S.STARTING, S.RUNNING, S.STOPPING)
        if life.state is S.RUNNING and before.state is not S.RUNNING:
            assert trigger is T.READY
        if life is not before and life.state is not before.state:
            assert life.since == now


def test_a_spawn_short_of_resources_backs_off_uncounted_whatever_the_policy() -> None:
    never = replace(SPEC, restart="never")
    life = run(Lifecycle(), (T.START, 0.0), spec=never)
    for n in range(1, 8):  # more than max_restarts: never FATAL, never EXITED
        life = run(life, (T.NO_RESOURCES, float(n)), spec=never)
        assert life.state is S.BACKOFF
        assert life.restarts == ()
        assert life.delay > 0
        life = run(life, (T.BACKOFF_ELAPSED, n + 0.5), spec=never)
        assert life.state is S.STARTING
    running = run(life, (T.READY, 9.0))
    assert transition(running, T.NO_RESOURCES, 9.5, SPEC) is running
