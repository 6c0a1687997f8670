"""Bad options fail when the breaker is built; its error pickles; its repr reads well."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

from policy_helpers import OPEN
from selfheal import (
    CircuitBreaker,
    CircuitBreakerError,
    FailureRateWindow,
    SlowCallRule,
)
from selfheal.testing import FakeClock


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_threshold": 0}, "failure_threshold"),
        ({"failure_threshold": True}, "failure_threshold"),
        ({"failure_threshold": 1.5}, "failure_threshold"),
        ({"recovery_timeout": -1}, "recovery_timeout"),
        ({"recovery_timeout": "30"}, "recovery_timeout"),
        ({"name": ""}, "name"),
        ({"name": "a.b"}, "name"),
        ({"half_open_max_calls": 0}, "half_open_max_calls"),
        ({"window": 10}, "window"),
        ({"slow_call": 1.0, "window": FailureRateWindow()}, "slow_call"),
        ({"slow_call": SlowCallRule(1.0)}, "slow_call needs window"),
        ({"failure_threshold": None}, "failure_threshold=None needs window"),
        ({"ignore": "ValueError"}, "ignore"),
        ({"ignore": (ValueError, 3)}, "ignore"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        CircuitBreaker(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"size": 0}, "size"),
        ({"size": 2.5}, "size"),
        ({"size": 0, "kind": "time"}, "size"),
        ({"kind": "calls"}, "kind"),
        ({"min_calls": 0}, "min_calls"),
        ({"min_calls": 1.0}, "min_calls"),
        ({"threshold": 0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
    ],
)
def test_bad_window_options_name_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        FailureRateWindow(**kwargs)


def test_bad_slow_call_options_name_the_field() -> None:
    with pytest.raises(ValueError, match="duration"):
        SlowCallRule(0)
    with pytest.raises(ValueError, match="rate_threshold"):
        SlowCallRule(1.0, rate_threshold=2)


def test_error_pickles_and_repr_reads_well(clock: FakeClock) -> None:
    err = CircuitBreakerError("db", OPEN, 1.5)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.name, copy.state, copy.remaining) == ("db", OPEN, 1.5)
    assert str(copy) == str(err)
    breaker = CircuitBreaker(failure_threshold=3, recovery_timeout=60, name="db", clock=clock)
    assert repr(breaker) == (
        "CircuitBreaker(name='db', state=closed, failure_threshold=3, "
        "recovery_timeout=60.0, half_open_max_calls=1)"
    )
    assert FailureRateWindow() == FailureRateWindow(100, "count", 10, 0.5)
