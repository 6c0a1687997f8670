"""The monitor's pure decisions: a status, the transitions worth an event, probe verdicts."""

from __future__ import annotations

import pytest

from selfheal.health import HealthStatus, Transition
from selfheal.health._core import aggregate, counted_status, effective_status, transition

P, W, F, U = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL, HealthStatus.UNKNOWN


@pytest.mark.parametrize(
    ("healthy", "critical", "stale", "expected"),
    [
        (True, True, False, P),
        (False, True, False, F),
        (False, False, False, W),
        (None, True, False, U),
        (True, True, True, F),
        (True, False, True, W),
        (None, True, True, F),
    ],
)
def test_effective_status(
    healthy: bool | None, critical: bool, stale: bool, expected: HealthStatus
) -> None:
    assert effective_status(healthy, critical=critical, stale=stale) == expected


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (U, P, None),
        (P, P, None),
        (U, F, Transition.FAILED),
        (P, F, Transition.FAILED),
        (P, W, Transition.DEGRADED),
        (F, P, Transition.RECOVERED),
        (W, P, Transition.RECOVERED),
        (F, F, None),
    ],
)
def test_transitions(
    before: HealthStatus, after: HealthStatus, expected: Transition | None
) -> None:
    assert transition(before, after) == expected


def test_aggregate_is_the_worst_status() -> None:
    assert aggregate([], unknown=F) == P
    assert aggregate([P, W, P], unknown=F) == W
    assert aggregate([P, W, F], unknown=F) == F
    assert aggregate([P, U], unknown=F) == F
    assert aggregate([P, U], unknown=P) == P
    assert counted_status(U, critical=True, liveness=True) == P
    assert counted_status(U, critical=True, liveness=False) == F
    assert counted_status(U, critical=False, liveness=False) == W
