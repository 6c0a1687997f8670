"""A server's Retry-After, read from the exception, replaces the backoff's wait."""

from __future__ import annotations

from datetime import timedelta

import pytest

import selfheal
from policy_helpers import Flaky
from selfheal.testing import FakeClock


class Throttled(Exception):
    def __init__(self, retry_after: object) -> None:
        super().__init__("429")
        self.retry_after = retry_after


@pytest.mark.parametrize(
    ("hint", "expected"), [(7, 7.0), ("2.5", 2.5), (timedelta(seconds=3), 3.0), ("soon", 0.1)]
)
def test_retry_after_hint_replaces_the_backoff(
    clock: FakeClock, hint: object, expected: float
) -> None:
    fn = selfheal.retry(on=Throttled, attempts=2, backoff=0.1, clock=clock)(
        Flaky(1, Throttled(hint))
    )
    assert fn() == "ok"
    assert clock.sleeps == [expected]


def test_custom_hint_extractor_and_disabled_hints(clock: FakeClock) -> None:
    fn = selfheal.retry(on=ValueError, attempts=2, backoff=0.1, hint=lambda e: 9.0, clock=clock)(
        Flaky(1, ValueError())
    )
    fn()
    assert clock.sleeps == [9.0]
    clock.sleeps.clear()
    fn = selfheal.retry(on=Throttled, attempts=2, backoff=0.1, hint=None, clock=clock)(
        Flaky(1, Throttled(50))
    )
    fn()
    assert clock.sleeps == [0.1]
