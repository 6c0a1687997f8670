"""Registering a check: bad arguments are refused with a message naming them."""

from __future__ import annotations

from typing import Any

import pytest

from health_helpers import CountingCheck
from selfheal.health import HealthMonitor
from selfheal.testing import FakeClock


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "a.b"}, "name must be"),
        ({"name": ""}, "name must be"),
        ({"check": 3}, "check must be a callable"),
        ({"interval": 0}, "interval must be a number of seconds > 0, got 0"),
        ({"interval": "5"}, "interval must be"),
        ({"timeout": -1}, "timeout must be"),
        ({"kind": "sometimes"}, "kind must be one of 'liveness', 'readiness', 'startup'"),
        ({"failure_threshold": 0}, "failure_threshold must be an integer >= 1"),
        ({"success_threshold": 1.5}, "success_threshold must be"),
        ({"jitter": 0.9}, "jitter must be a fraction from 0 to 0.5"),
        ({"max_age": 1, "interval": 10}, "max_age must be at least"),
    ],
)
def test_register_rejects_bad_arguments_naming_them(
    clock: FakeClock, kwargs: dict[str, Any], message: str
) -> None:
    monitor = HealthMonitor(clock=clock)
    args: dict[str, Any] = {"name": "db", "check": CountingCheck()} | kwargs
    with pytest.raises(ValueError, match=message):
        monitor.register(args.pop("name"), args.pop("check"), **args)


def test_duplicate_names_are_rejected(clock: FakeClock) -> None:
    monitor = HealthMonitor(clock=clock)
    monitor.register("db", CountingCheck())
    with pytest.raises(ValueError, match="'db' is already registered"):
        monitor.register("db", CountingCheck())
