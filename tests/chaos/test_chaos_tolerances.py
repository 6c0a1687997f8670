"""Tolerances mean what Chaos Toolkit's mean: checked against chaoslib's own function.

Where chaoslib raises (a range over a dict, a regex over a number), ours says "not within".
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest
from chaoslib.hypothesis import within_tolerance
from hypothesis import given, settings
from hypothesis import strategies as st

from selfheal.chaos.experiment import (
    ActivityContext,
    ExperimentError,
    Fields,
    default_registry,
    parse_experiment,
    parse_tolerance,
)
from selfheal.testing import FakeClock

CTX = ActivityContext(experiment="t", clock=FakeClock(), random=random.Random(0))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=8),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)
outputs = st.one_of(
    json_values,
    st.fixed_dictionaries({"status": st.integers(0, 600)}, optional={"body": json_values}),
)


def ours(tolerance: Any, value: Any) -> bool:
    fields = Fields({"tolerance": tolerance}, "probe")
    parsed = parse_tolerance(fields, "tolerance", default_registry())
    assert parsed is not None, fields.issues
    return parsed.within(value, CTX)


def theirs(tolerance: Any, value: Any) -> bool:
    try:
        return bool(within_tolerance(tolerance, value))
    except (TypeError, AttributeError, KeyError):
        return False  # chaoslib crashes where we answer "not within"


@given(st.booleans() | st.integers(-5, 600) | st.text(max_size=6), outputs)
def test_scalar_tolerances_agree_with_chaoslib(tolerance: Any, value: Any) -> None:
    assert ours(tolerance, value) == theirs(tolerance, value)


@given(st.lists(st.integers(0, 600) | st.text(max_size=3), max_size=4), outputs)
def test_list_tolerances_agree_with_chaoslib(tolerance: list[Any], value: Any) -> None:
    assert ours(tolerance, value) == theirs(tolerance, value)


@given(
    st.sampled_from(["ok", "^[0-9]+$", "a.c", "(?i)up"]),
    st.sampled_from([None, "stdout", "body"]),
    outputs | st.fixed_dictionaries({"stdout": st.text(max_size=8)}),
)
def test_regex_agrees_with_chaoslib(pattern: str, target: str | None, value: Any) -> None:
    tolerance = {"type": "regex", "pattern": pattern, **({"target": target} if target else {})}
    assert ours(tolerance, value) == theirs(tolerance, value)


@given(
    st.tuples(st.integers(-50, 50), st.integers(0, 60)).map(lambda t: [t[0], t[0] + t[1]]),
    st.integers(-100, 100)
    | st.floats(-100, 100)
    | st.integers(-100, 100).map(str)
    | st.text(max_size=3),
)
def test_range_agrees_with_chaoslib(bounds: list[int], value: Any) -> None:
    tolerance = {"type": "range", "range": bounds}
    try:
        expected = bool(within_tolerance(tolerance, value))
    except (TypeError, ArithmeticError):
        expected = False
    assert ours(tolerance, value) is expected


KEYS = st.sampled_from(["a", "b", "c"])
docs = st.dictionaries(
    KEYS,
    st.integers(0, 3)
    | st.lists(st.integers(0, 3), max_size=3)
    | st.dictionaries(KEYS, st.integers(0, 3), max_size=3),
    max_size=3,
)
paths = st.one_of(
    KEYS.map(lambda k: f"$.{k}"),
    st.tuples(KEYS, KEYS).map(lambda t: f"$.{t[0]}.{t[1]}"),
    st.tuples(KEYS, st.integers(0, 2)).map(lambda t: f"$.{t[0]}[{t[1]}]"),
)
expectations = st.one_of(
    st.just({}),
    st.integers(0, 3).map(lambda n: {"count": n}),
    (st.integers(0, 3) | st.lists(st.integers(0, 3), max_size=2)).map(lambda v: {"expect": v}),
)


@settings(max_examples=300)
@given(docs, paths, expectations, st.booleans())
def test_jsonpath_agrees_with_chaoslib(
    doc: dict[str, Any], path: str, extra: dict[str, Any], wrapped: bool
) -> None:
    tolerance = {"type": "jsonpath", "path": path, **extra}
    value: Any = doc
    if wrapped:  # an HTTP output: the document is the body
        tolerance["target"] = "body"
        value = {"status": 200, "body": doc}
    assert ours(tolerance, value) == theirs(tolerance, value)


def test_jsonpath_reads_a_json_string_and_filters() -> None:
    tolerance = {"type": "jsonpath", "path": "$.items[?(@.up == true)].name", "expect": ["a"]}
    body = '{"items": [{"name": "a", "up": true}, {"name": "b", "up": false}]}'
    assert ours(tolerance, body)
    assert not ours(tolerance, '{"items": []}')
    assert not ours(tolerance, "not json")


def test_integer_means_the_status_of_a_process_or_http_output() -> None:
    assert ours(0, {"status": 0, "stdout": "", "stderr": ""})
    assert not ours(0, {"status": 1, "stdout": "", "stderr": ""})
    assert ours(200, {"status": 200, "headers": {}, "body": ""})
    assert ours(3, 3)


def test_list_of_two_without_status_is_an_inclusive_range() -> None:
    assert ours([1, 5], 5)
    assert not ours([1, 5], 6)
    assert ours([200, 204], {"status": 204})
    assert not ours([200, 204], {"status": 202})  # with a status, a list is a set
    assert ours([1, 2, 3], 2)


def test_range_with_target_and_numeric_text() -> None:
    tolerance = {"type": "range", "range": [0, 0.5], "target": "stdout"}
    assert ours(tolerance, {"status": 0, "stdout": "0.25\n"})
    assert not ours(tolerance, {"status": 0, "stdout": "0.75\n"})
    assert not ours(tolerance, {"status": 0, "stdout": "nan"})
    assert not ours(tolerance, {"status": 0, "stdout": {"nested": 1}})


def test_probe_tolerance_calls_a_provider_with_the_value() -> None:
    tolerance = {
        "type": "probe",
        "provider": {"type": "python", "module": "chaos_probes", "func": "is_positive"},
    }
    fields = Fields({"tolerance": tolerance}, "probe")
    parsed = parse_tolerance(fields, "tolerance", default_registry())
    assert parsed is not None
    assert parsed.within(1, CTX)
    assert not parsed.within(0, CTX)
    assert parsed.describe() == "probe python chaos_probes.is_positive"


@pytest.mark.parametrize(
    ("tolerance", "message"),
    [
        ({"type": "regex", "pattern": "("}, "tolerance.pattern: not a valid regular expression"),
        ({"type": "regex"}, "tolerance.pattern: required"),
        ({"type": "jsonpath", "path": "$[["}, "tolerance.path: not a valid JSONPath"),
        ({"type": "range", "range": [5, 1]}, "tolerance.range: low bound 5 is above"),
        ({"type": "range", "range": [1]}, "tolerance.range: expected two finite numbers"),
        ({"type": "near"}, "tolerance.type: expected one of regex, jsonpath, range, probe"),
        (1.5, "tolerance: expected a boolean, an integer, a string, a list, or a table"),
    ],
)
def test_bad_tolerances_name_the_field(tolerance: Any, message: str) -> None:
    import json

    text = json.dumps(
        {
            "title": "t",
            "steady-state-hypothesis": {
                "title": "h",
                "probes": [
                    {
                        "type": "probe",
                        "name": "p",
                        "provider": {"type": "process", "path": "true"},
                        "tolerance": tolerance,
                    }
                ],
            },
            "method": [
                {"type": "action", "name": "a", "provider": {"type": "process", "path": "true"}}
            ],
        }
    )
    with pytest.raises(ExperimentError) as info:
        parse_experiment(text, format="json")
    assert f"steady-state-hypothesis.probes[0].{message}" in str(info.value)


def test_range_bounds_are_exact_decimals() -> None:
    fields = Fields({"tolerance": {"type": "range", "range": [0.1, 0.3]}}, "p")
    parsed = parse_tolerance(fields, "tolerance", default_registry())
    assert parsed is not None
    assert parsed.within(Decimal("0.2"), CTX)
    assert parsed.describe().startswith("in range [0.1")
