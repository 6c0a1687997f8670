"""Job options: defaults, refusals naming the bad field, jittered waits within their bounds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfheal.scheduling import Freshness, JobOptions, freshness, jittered


def test_defaults_follow_the_interval() -> None:
    options = JobOptions.of(interval=10, jitter=0.2)
    assert options.timeout == 5  # at most 5 s by default
    assert options.max_age == 10 * 2.2 + 5  # two (jittered) intervals plus the timeout
    assert JobOptions.of(interval=2).timeout == 2  # never longer than the interval
    assert (options.failure_threshold, options.success_threshold) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": 0}, "interval must be a number of seconds > 0, got 0"),
        ({"interval": True}, "interval must be a number of seconds > 0, got True"),
        ({"interval": float("nan")}, "interval must be a number of seconds > 0, got nan"),
        ({"timeout": -1}, "timeout must be a number of seconds > 0, got -1"),
        ({"failure_threshold": 0}, "failure_threshold must be an integer >= 1, got 0"),
        ({"success_threshold": 2.0}, "success_threshold must be an integer >= 1, got 2.0"),
        ({"jitter": 0.6}, "jitter must be a fraction from 0 to 0.5, got 0.6"),
        ({"jitter": -0.1}, "jitter must be a fraction from 0 to 0.5, got -0.1"),
        ({"max_age": "1"}, "max_age must be a number of seconds > 0, got '1'"),
        (
            {"interval": 10, "timeout": 1, "jitter": 0, "max_age": 10.5},
            r"max_age must be at least interval \* \(1 \+ jitter\) \+ timeout \(11 s\)",
        ),
    ],
)
def test_bad_options_are_refused_naming_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=f"^Poller.every: {message}"):
        JobOptions.of(where="Poller.every", **kwargs)


def test_options_built_directly_are_checked_too() -> None:
    with pytest.raises(ValueError, match=r"^JobOptions: jitter must be"):
        JobOptions(
            interval=1, timeout=1, jitter=2, failure_threshold=1, success_threshold=1, max_age=9
        )


@given(
    interval=st.floats(0.001, 1e6),
    jitter=st.floats(0, 0.5),
    draw=st.floats(0, 1, exclude_max=True),
)
def test_a_jittered_wait_stays_within_its_bounds(
    interval: float, jitter: float, draw: float
) -> None:
    options = JobOptions.of(interval=interval, jitter=jitter)
    wait = jittered(options, draw)
    assert interval * (1 - jitter) * (1 - 1e-12) <= wait <= interval * (1 + jitter) * (1 + 1e-12)


def test_without_jitter_every_wait_is_the_interval() -> None:
    options = JobOptions.of(interval=7, jitter=0)
    assert {jittered(options, draw) for draw in (0.0, 0.3, 0.999)} == {7.0}


def test_freshness_of_results_and_of_a_first_result_that_never_came() -> None:
    inf = float("inf")
    # Never started: nothing is expected yet.
    assert freshness(None, since=None, finished=False, max_age=10, now=100) == Freshness(
        None, False, inf
    )
    # Started at 100: a first result is due by 110.
    assert freshness(None, since=100, finished=False, max_age=10, now=110) == Freshness(
        None, False, 110
    )
    assert freshness(None, since=100, finished=False, max_age=10, now=110.5).stale
    # A result at 100 is fresh until 110, then stale for good (its age keeps changing).
    assert freshness(100, since=90, finished=False, max_age=10, now=104) == Freshness(4, False, 110)
    assert freshness(100, since=90, finished=False, max_age=10, now=111) == Freshness(
        11, True, -inf
    )
    # A finished job's last result is final: old, never stale.
    assert freshness(100, since=90, finished=True, max_age=10, now=1000) == Freshness(
        900, False, inf
    )
