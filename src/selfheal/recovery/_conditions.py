"""Conditions on an event's fields: a rule's ``when``, tested as plain code.

``{"data.exit_code": {"ne": 0}}`` compiles to one `Condition` per operator; a rule handles an
event only when all of them hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from selfheal.events import Event

__all__ = ["OPERATORS", "Condition", "compile_when"]

_MISSING = object()


def _lookup(event: Event, path: str) -> Any:  # noqa: PLR0911 - a flat lookup table
    """Return the value at `path` (``data.exit_code``, ``source``...) or `_MISSING`."""
    head, _, rest = path.partition(".")
    if head == "data":
        value: Any = event.data
        for part in rest.split(".") if rest else ():
            if not isinstance(value, Mapping) or part not in value:
                return _MISSING
            value = value[part]
        return value
    if rest:
        return _MISSING
    if head == "subject":
        return event.subject
    if head == "severity":
        return str(event.severity)
    if head in {"type", "source"}:
        return getattr(event, head)
    return _MISSING


_FIELDS = ("type", "source", "severity", "subject")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _cmp(fn: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def test(actual: Any, expected: Any) -> bool:
        a, b = _num(actual), _num(expected)
        return a is not None and b is not None and fn(a, b)

    return test


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, e: a is not _MISSING and a == e,
    "ne": lambda a, e: a is _MISSING or a != e,
    "in": lambda a, e: a is not _MISSING and a in e,
    "not_in": lambda a, e: a is _MISSING or a not in e,
    "gt": _cmp(lambda a, b: a > b),
    "ge": _cmp(lambda a, b: a >= b),
    "lt": _cmp(lambda a, b: a < b),
    "le": _cmp(lambda a, b: a <= b),
    "exists": lambda a, e: (a is not _MISSING) is bool(e),
}

#: The operators a ``when`` condition may use, e.g. ``{ "data.exit_code" = { ne = 0 } }``.
OPERATORS = tuple(_OPERATORS)


@dataclass(frozen=True, slots=True)
class Condition:
    """One test of an event field, e.g. ``data.exit_code ne 0``.

    Attributes:
        path: ``type``, ``source``, ``severity``, ``subject`` or ``data.<key>[.<key>...]``.
        op: One of `OPERATORS`.
        expected: The value compared against.
    """

    path: str
    op: str
    expected: Any

    def test(self, event: Event) -> bool:
        """Return whether `event` satisfies this condition."""
        return _OPERATORS[self.op](_lookup(event, self.path), self.expected)


def compile_when(when: Mapping[str, Any]) -> tuple[Condition, ...]:
    """Turn a ``when`` mapping into conditions that must all hold.

    A plain value means equality (``{"data.exit_code": 1}``); a mapping of operators tests
    each (``{"data.exit_code": {"ne": 0}}``, ``{"severity": {"in": ["error", "critical"]}}``).

    Args:
        when: Field path to expected value or to a mapping of operator to value.

    Returns:
        The conditions.

    Raises:
        ValueError: For an unknown field path or operator, or ``in``/``not_in`` without a list.
    """
    out: list[Condition] = []
    for path, expected in when.items():
        head = path.split(".", 1)[0]
        if not path or (head != "data" and path not in _FIELDS) or path == "data":
            raise ValueError(
                f"when: unknown field {path!r}; use one of {', '.join(_FIELDS)} "
                "or 'data.<key>' (nested keys with dots)"
            )
        tests = expected if isinstance(expected, Mapping) else {"eq": expected}
        for op, value in tests.items():
            if op not in _OPERATORS:
                raise ValueError(
                    f"when: unknown operator {op!r} for {path!r}; valid: {', '.join(OPERATORS)}"
                )
            if op in {"in", "not_in"} and not isinstance(value, list | tuple | set | frozenset):
                raise ValueError(f"when: {path!r} {op} needs a list, got {value!r}")
            out.append(Condition(path, op, value))
    return tuple(out)
