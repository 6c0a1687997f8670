"""A rule's ``when`` conditions and its templates, tested as plain functions."""

from __future__ import annotations

import pytest

from selfheal import Event
from selfheal.recovery import compile_when, event_fields, render


def ev(type_: str = "process.web.exited", source: str = "sup", **data: object) -> Event:
    return Event(type_, source, "error", 1.0, data)


def test_when_equality_operators_and_nested_paths() -> None:
    conds = compile_when({"data.exit_code": {"ne": 0}, "source": "sup"})
    assert all(c.test(ev(exit_code=1)) for c in conds)
    assert not all(c.test(ev(exit_code=0)) for c in conds)
    assert all(c.test(ev()) for c in conds)  # a missing value is "not equal to 0"
    (nested,) = compile_when({"data.db.host": "a"})
    assert nested.test(ev(db={"host": "a"}))
    assert not nested.test(ev(db="a"))
    (member,) = compile_when({"severity": {"in": ["error", "critical"]}})
    assert member.test(ev())
    (gt,) = compile_when({"data.latency": {"gt": 1.5}})
    assert gt.test(ev(latency=2))
    assert not gt.test(ev(latency="3"))
    assert not gt.test(ev())
    (exists,) = compile_when({"data.signal": {"exists": True}})
    assert exists.test(ev(signal=9))
    assert not exists.test(ev())
    (subject,) = compile_when({"subject": "web"})
    assert subject.test(ev())


@pytest.mark.parametrize(
    ("when", "message"),
    [
        ({"exit_code": 1}, "unknown field 'exit_code'"),
        ({"data": 1}, "unknown field 'data'"),
        ({"data.x": {"like": 1}}, "unknown operator 'like'"),
        ({"data.x": {"in": 1}}, "needs a list"),
    ],
)
def test_when_rejects_bad_conditions_with_a_clear_message(
    when: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        compile_when(when)


def test_render_fills_only_plain_names() -> None:
    fields = event_fields(ev(exit_code=3, obj=object()))
    assert render("{subject}:{data.exit_code}:{source}", fields) == "web:3:sup"
    assert render("{unknown} {data.obj} {__class__}", fields) == "{unknown} {data.obj} {__class__}"
    assert render("x {subject}", {"subject": "a b"}, quote=lambda s: f"'{s}'") == "x 'a b'"
