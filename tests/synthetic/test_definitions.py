"""Conditions, captures, templates and step definitions: parsed once, refused with a reason."""

from __future__ import annotations

import re

import pytest

from selfheal.errors import CheckError
from selfheal.synthetic import HttpConditions, HttpScenario, HttpStep, parse_conditions
from selfheal.synthetic._conditions import parse_capture
from selfheal.synthetic._templates import render, render_value, template_names


def test_status_conditions_narrow_the_allowed_statuses() -> None:
    assert parse_conditions(["[STATUS] == 201"]).status == frozenset({201})
    allowed = parse_conditions(["[STATUS] >= 200", "[STATUS] < 300", "[STATUS] != 204"]).status
    assert 200 in allowed
    assert 299 in allowed
    assert 204 not in allowed
    assert 300 not in allowed
    assert 199 not in allowed
    assert HttpConditions().status == range(200, 400)  # the default without a [STATUS]


def test_other_conditions_fill_their_fields() -> None:
    conditions = parse_conditions(
        [
            "[RESPONSE_TIME] < 300",
            "[RESPONSE_TIME] <= 250",
            "[BODY].user.id == 1",
            '[BODY].user.name == "ada"',
            "[BODY].status == UP",
            "[BODY].flags == [1, 2]",
            "[BODY].deleted == null",
            "[HEADER].Content-Type == application/json",
        ]
    )
    assert conditions.max_response_time == 0.25
    assert dict(conditions.json_fields) == {
        "user.id": 1,
        "user.name": "ada",
        "status": "UP",
        "flags": [1, 2],
        "deleted": None,
    }
    assert dict(conditions.headers) == {"Content-Type": "application/json"}


def test_body_patterns_are_anchored_like_gatus_pat() -> None:
    pattern = parse_conditions(["[BODY] == pat(Welcome*)"]).body_matches
    assert pattern is not None
    assert pattern.search("Welcome back, ada")
    assert not pattern.search("Oh. Welcome back")
    exact = parse_conditions(["[BODY] == ok"]).body_matches
    assert exact is not None
    assert exact.search("ok")
    assert not exact.search("ok!")


def test_conditions_add_to_a_base() -> None:
    base = HttpConditions(json_fields={"a": 1}, body_contains="x", max_response_time=0.1)
    merged = parse_conditions(["[BODY].b == 2", "[RESPONSE_TIME] < 500"], base)
    assert dict(merged.json_fields) == {"a": 1, "b": 2}
    assert merged.body_contains == "x"
    assert merged.max_response_time == 0.1  # the tighter limit stays


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("[STATUS] =! 200", "is not a condition: use '[STATUS] == 200'"),
        ("STATUS == 200", "is not a condition"),
        ("[STATUS] == ok", "[STATUS] compares with a whole number"),
        ("[RESPONSE_TIME] > 100", "use '[RESPONSE_TIME] < N' with N in milliseconds"),
        ("[BODY].id != 3", "[BODY] conditions compare with == only"),
        ("[CERTIFICATE_EXPIRATION] == 1", "is not a condition"),
        ("[HEADER] == x", "is not a condition"),
    ],
)
def test_unsupported_conditions_are_refused_with_the_forms_that_work(
    condition: str, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_conditions([condition])


def test_contradicting_status_conditions_are_refused() -> None:
    with pytest.raises(ValueError, match="allow no status at all"):
        parse_conditions(["[STATUS] == 200", "[STATUS] == 201"])


def test_captures_name_where_the_value_comes_from() -> None:
    assert parse_capture("[BODY].order.id").path == "order.id"
    assert parse_capture("[BODY]").source == "body"
    assert parse_capture("[STATUS]").source == "status"
    assert parse_capture("[HEADER].Location").path == "Location"
    for bad in ("[BODY", "[STATUS].x", "[HEADER]", "id"):
        with pytest.raises(ValueError, match="is not a value to capture"):
            parse_capture(bad)


def test_templates_replace_names_and_environment_variables() -> None:
    variables = {"id": 7, "name": "ada"}
    env = {"TOKEN": "s3cret"}
    assert render("/orders/{id}?by={name}", variables, env) == "/orders/7?by=ada"
    assert render("Bearer ${TOKEN}", variables, env) == "Bearer s3cret"
    assert render("{{id}} is literal", variables, env) == "{id} is literal"
    assert render("a {not a name} stays", variables, env) == "a {not a name} stays"
    assert render_value({"id": "{id}", "ids": ["{id}", "n{id}"]}, variables, env) == {
        "id": 7,
        "ids": [7, "n7"],
    }
    assert template_names({"a": ["{x}", "${ENV}", "{{y}}"], "b": "{z}"}) == {"x", "z"}
    with pytest.raises(CheckError, match=r"no value named \{nope\} was captured"):
        render("{nope}", variables, env)
    with pytest.raises(CheckError, match="environment variable MISSING is not set"):
        render("${MISSING}", variables, env)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": ""}, "name must be a non-empty string"),
        ({"method": "FETCH"}, "method must be one of GET, POST"),
        ({"path": ""}, "path must be a non-empty string"),
        ({"json": {}, "body": "x"}, "give json or body, not both"),
        ({"timeout": 0}, "timeout must be a number of seconds > 0"),
        ({"conditions": ["[STATUS] = 1"]}, "conditions: '[STATUS] = 1' is not a condition"),
        ({"capture": {"order-id": "[BODY].id"}}, "capture names must be identifiers"),
        ({"capture": {"id": "BODY.id"}}, "capture id: 'BODY.id' is not a value to capture"),
    ],
)
def test_bad_steps_are_refused_by_name(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"name": "create", "method": "GET", "path": "/", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        HttpStep(**args)  # type: ignore[arg-type]


def test_a_step_normalises_its_method_and_conditions() -> None:
    step = HttpStep("create", "post", "/orders/{id}", conditions=["[STATUS] == 201"])
    assert step.method == "POST"
    assert step.expect.status == frozenset({201})
    assert step.needs == frozenset({"id"})


def test_a_scenario_refuses_templates_no_earlier_step_fills() -> None:
    first = HttpStep("create", "POST", "/orders", capture={"id": "[BODY].id"})
    uses = HttpStep("read", "GET", "/orders/{id}")
    HttpScenario([first, uses], cleanup=[uses])  # fine
    HttpScenario([uses], variables={"id": 1})  # given up front: fine
    with pytest.raises(ValueError, match=r"steps\[0\] \('read'\) uses \{id\}"):
        HttpScenario([uses, first])
    with pytest.raises(ValueError, match="give at least one step"):
        HttpScenario([])
    with pytest.raises(ValueError, match=r"steps\[0\] must be an HttpStep"):
        HttpScenario(["GET /"])  # type: ignore[list-item]
