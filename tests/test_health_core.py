"""The monitor's pure decisions, the redaction helper and the health package's exports."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfheal._redact import MASK, is_secret_key, redact, redact_value
from selfheal.health import HealthStatus
from selfheal.health._core import (
    ThresholdState,
    Transition,
    aggregate,
    counted_status,
    effective_status,
    step,
    transition,
)

P, W, F, U = HealthStatus.PASS, HealthStatus.WARN, HealthStatus.FAIL, HealthStatus.UNKNOWN


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://app:s3cr3t@db:5432/x", "postgresql://app:***@db:5432/x"),
        ("redis://:pw@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("GET https://h/x?token=abc&x=1", "GET https://h/x?token=***&x=1"),
        ("host=db password=hunter2 user=a", "host=db password=*** user=a"),
        ('{"password": "x y", "user": "u"}', '{"password": "***", "user": "u"}'),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("api_key: AKIA123", "api_key: ***"),
        ("DB_PASSWORD=x", "DB_PASSWORD=***"),
        ("passport=1 bypass=2 author=joe", "passport=1 bypass=2 author=joe"),
        ("connect to 127.0.0.1:5432 refused", "connect to 127.0.0.1:5432 refused"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("", ""),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_value_walks_structures() -> None:
    assert redact_value({"password": "x", "n": [1, "token=5", None], "ok": True}) == {
        "password": MASK,
        "n": [1, "token=***", None],
        "ok": True,
    }
    assert is_secret_key("db_token")
    assert not is_secret_key("tokens_used_total_count_of_things_not_secret_x")


PACKAGES = ["selfheal.health", "selfheal.health.checks", "selfheal.web"]


def _isort_key(name: str) -> tuple[int, str]:
    if name.isupper():
        return (0, name)
    return (1 if name[:1].isupper() else 2, name)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_complete_and_documented(name: str) -> None:
    module = importlib.import_module(name)
    exported = list(module.__all__)
    assert exported == sorted(exported, key=_isort_key)
    for attr in exported:
        obj = getattr(module, attr)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__doc__, f"{name}.{attr} has no docstring"


def test_health_package_needs_only_the_standard_library() -> None:
    code = (
        "import sys, selfheal.health, selfheal.health.checks, selfheal.web\n"
        "third = {'starlette', 'httpx', 'redis', 'psycopg', 'prometheus_client', 'psutil'}\n"
        "loaded = third & {m.split('.')[0] for m in sys.modules}\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
