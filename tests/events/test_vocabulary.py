"""The event vocabulary: patterns, the parts of a type, and what an event says about its subject."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from selfheal import Event
from selfheal.events import Signal, TypeParts, classify, matches, parse_type, pattern_prefix


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("*", "a", True),
        ("*", "a.b.c", True),
        ("health.*", "health.db.failed", True),
        ("health.*", "health", False),
        ("breaker.*.opened", "breaker.payments.opened", True),
        ("breaker.*.opened", "breaker.payments.closed", False),
        ("breaker.*.opened", "breaker.a.b.opened", False),
        ("a.b", "a.b", True),
        ("a.b", "a.b.c", False),
        ("a.b.c", "a.b", False),
        ("*.failed", "health.failed", True),
        ("*.failed", "health.db.failed", False),
    ],
)
def test_matches(pattern: str, event_type: str, expected: bool) -> None:
    assert matches(pattern, event_type) is expected


segment = st.text(alphabet="abc", min_size=1, max_size=2)


@given(st.lists(segment, min_size=1, max_size=5))
def test_star_matches_everything_and_exact_matches_itself(parts: list[str]) -> None:
    t = ".".join(parts)
    assert matches("*", t)
    assert matches(t, t)
    assert matches(".".join(["*"] * len(parts)), t)


@pytest.mark.parametrize(
    ("event_type", "expected"),
    [
        ("process.web.exited", TypeParts("process", "web", "exited")),
        ("recovery.db.primary.started", TypeParts("recovery", "db.primary", "started")),
        ("db.failed", TypeParts("db", "monitor", "failed")),
        ("tick", TypeParts("tick", "monitor", "tick")),
    ],
)
def test_a_type_parses_into_area_subject_and_what(event_type: str, expected: TypeParts) -> None:
    assert parse_type(event_type, "monitor") == expected


@given(st.lists(segment, min_size=1, max_size=5), st.lists(segment, min_size=1, max_size=5))
def test_every_type_a_pattern_matches_starts_with_its_prefix(
    pattern_parts: list[str], type_parts: list[str]
) -> None:
    # Wildcards anywhere in the pattern: the prefix must never exclude a match.
    pattern = ".".join(p if p != "c" else "*" for p in pattern_parts)
    event_type = ".".join(type_parts)
    if matches(pattern, event_type):
        assert event_type.startswith(pattern_prefix(pattern))


@pytest.mark.parametrize(
    ("type_", "data", "expected"),
    [
        ("health.db.failed", {}, (Signal.FAILURE, "db")),
        ("breaker.pay.opened", {}, (Signal.FAILURE, "pay")),
        ("breaker.pay.closed", {}, (Signal.RECOVERY, "pay")),
        ("process.web.exited", {"exit_code": 1}, (Signal.FAILURE, "web")),
        ("process.web.exited", {"exit_code": 0}, (Signal.NEUTRAL, "web")),
        ("process.web.exited", {"exit_code": -9, "expected": True}, (Signal.NEUTRAL, "web")),
        ("process.web.exited", {"exit_code": 0, "signal": 15}, (Signal.FAILURE, "web")),
        ("process.web.fatal", {}, (Signal.FAILURE, "web")),
        ("process.web.started", {}, (Signal.RECOVERY, "web")),
        ("recovery.web.started", {}, (Signal.NEUTRAL, "web")),
        ("recovery.web.suppressed", {}, (Signal.NEUTRAL, "web")),
        ("recovery.web.succeeded", {}, (Signal.RECOVERY, "web")),
        ("recovery.web.failed", {}, (Signal.FAILURE, "web")),
        ("system.database.failure", {}, (Signal.FAILURE, "database")),
        ("system.database.failure.recovered", {}, (Signal.RECOVERY, "database")),
        ("system.database.failure.recovery_failed", {}, (Signal.FAILURE, "database")),
        ("journal.dropped", {}, (Signal.NEUTRAL, "")),
        ("eventbus.handler.failed", {}, (Signal.NEUTRAL, "")),
    ],
)
def test_classification(type_: str, data: dict[str, object], expected: tuple[Signal, str]) -> None:
    assert classify(Event(type_, "src", "info", 1.0, data)) == expected
