"""Kubernetes' thresholds as a pure step: healthy flips only after enough results in a row."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from selfheal.scheduling import ThresholdState, step


@given(
    runs=st.lists(st.booleans(), max_size=60),
    failure_threshold=st.integers(1, 5),
    success_threshold=st.integers(1, 5),
)
def test_thresholds_flip_only_after_enough_results_in_a_row(
    runs: list[bool], failure_threshold: int, success_threshold: int
) -> None:
    state = ThresholdState()
    history: list[bool] = []
    for ok in runs:
        before = state.healthy
        state = step(
            state, ok, failure_threshold=failure_threshold, success_threshold=success_threshold
        )
        history.append(ok)
        if state.healthy is False and before is not False:
            assert history[-failure_threshold:] == [False] * failure_threshold
        if state.healthy is True and before is False:
            assert history[-success_threshold:] == [True] * success_threshold
        if state.healthy is True and before is None:
            assert ok
        # Counters count the current streak.
        streak = state.consecutive_successes if ok else state.consecutive_failures
        tail = 0
        for value in reversed(history):
            if value != ok:
                break
            tail += 1
        assert streak == tail


def test_first_success_decides_and_failures_wait_for_the_threshold() -> None:
    state = step(ThresholdState(), False, failure_threshold=2, success_threshold=3)
    assert state.healthy is None
    state = step(state, True, failure_threshold=2, success_threshold=3)
    assert state.healthy is True
