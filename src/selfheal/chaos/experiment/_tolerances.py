"""Steady-state tolerances, with Chaos Toolkit's meaning for every kind.

A tolerance is written as a bare value or a table:

- ``true`` / ``false``: the output equals it.
- an integer: the output's ``status`` (process exit code, HTTP status) equals it, or the
  output itself does.
- a list: the output's ``status`` is one of the list; without a ``status``, a list of two is
  an inclusive range ``[low, high]`` and any other list is a set of accepted values.
- a string: the output equals it exactly.
- ``{type = "regex", pattern, target?}``: the pattern is found in the output (or in its
  ``target`` field, such as ``stdout`` or ``body``).
- ``{type = "jsonpath", path, target?, count?, expect?}``: the path matches something; with
  ``count``, that many things; with ``expect``, exactly those values.
- ``{type = "range", range = [low, high], target?}``: the output is a number in the range.
- ``{type = "probe", provider = {...}}``: another provider, called with ``value=<output>``,
  returns something true.

Where Chaos Toolkit would crash (a range over a dict, a regex over a number), the output is
simply not within tolerance.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from selfheal.chaos.experiment._model import ActivityContext, ActivityError, Provider, Tolerance

if TYPE_CHECKING:
    from selfheal.chaos.experiment._fields import Fields
    from selfheal.chaos.experiment._providers import ProviderRegistry

__all__ = [
    "Among",
    "Equals",
    "JsonPath",
    "ProbeTolerance",
    "Range",
    "Regex",
    "StatusCode",
    "parse_tolerance",
]

_KINDS = ("regex", "jsonpath", "range", "probe")


def _target(value: Any, target: str | None) -> Any:
    if target and isinstance(value, Mapping):
        return value.get(target, value)
    return value


def _status(value: Any) -> tuple[bool, Any]:
    if isinstance(value, Mapping) and "status" in value:
        return True, value["status"]
    return False, value


@dataclass(frozen=True, slots=True)
class Equals:
    """The output equals `expected` (a boolean or an exact string)."""

    expected: bool | str

    def within(self, value: Any, context: ActivityContext) -> bool:
        """Return whether `value` equals the expected value."""
        return bool(value == self.expected)

    def describe(self) -> str:
        """Return e.g. ``== 'ok'``."""
        return f"== {self.expected!r}"


@dataclass(frozen=True, slots=True)
class StatusCode:
    """The output's ``status`` (or the output) equals `expected`."""

    expected: int

    def within(self, value: Any, context: ActivityContext) -> bool:
        """Return whether the status (or value) equals the expected integer."""
        return bool(_status(value)[1] == self.expected)

    def describe(self) -> str:
        """Return e.g. ``status 200``."""
        return f"status {self.expected}"


@dataclass(frozen=True, slots=True)
class Among:
    """A list: status in the list; else an inclusive range for two items, else membership."""

    values: tuple[Any, ...]

    def within(self, value: Any, context: ActivityContext) -> bool:
        """Return whether `value` is accepted by the list."""
        has_status, found = _status(value)
        if has_status:
            return found in self.values
        if len(self.values) == 2:
            try:
                return bool(self.values[0] <= found <= self.values[1])
            except TypeError:
                return False
        return found in self.values

    def describe(self) -> str:
        """Return e.g. ``in [200, 204]``."""
        return f"in {list(self.values)!r}"


@dataclass(frozen=True, slots=True)
class Regex:
    """The pattern is found in the output (or in its `target` field)."""

    pattern: re.Pattern[str]
    target: str | None = None

    def within(self, value: Any, context: ActivityContext) -> bool:
        """Return whether the pattern is found in the (targeted) output."""
        found = _target(value, self.target)
        if isinstance(found, bytes):
            found = found.decode("utf-8", "replace")
        return isinstance(found, str) and self.pattern.search(found) is not None

    def describe(self) -> str:
        """Return e.g. ``stdout ~ /ok/``."""
        where = f"{self.target} " if self.target else ""
        return f"{where}~ /{self.pattern.pattern}/"


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A JSONPath over the output: matches something, `count` things, or exactly `expect`."""

    path: str
    compiled: Any
    target: str | None = None
    count: int | None = None
    expect: Any = None
    has_expect: bool = False

    def within(self, value: Any, context: ActivityContext) -> bool:
        """Return whether the path's matches satisfy the tolerance."""
        doc = _target(value, self.target)
        if isinstance(doc, bytes):
            doc = doc.decode("utf-8", "replace")
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except ValueError:
                return False
        try:
            values = [match.value for match in self.compiled.find(doc)]
        except Exception:  # noqa: BLE001 - a document the path cannot walk does not match
            return False
        if self.has_expect:
            expected = self.expect if isinstance(self.expect, list) else [self.expect]
            return values == expected
        if self.count is not None:
            return len(values) == self.count
        return bool(values)

    def describe(self) -> str:
        """Return e.g. ``$.status == ['ok']``."""
        if self.has_expect:
            return f"{self.path} == {self.expect!r}"
        if self.count is not None:
            return f"{self.path} matches {self.count}"
        return f"{self.path} matches"


@dataclass(frozen=True, slots=True)
class Range:
    """The output (or its `target` field) is a number within ``[low, high]``."""

    low: Decimal
    high: Decimal
    target: str | None = None

    def within(self, value: Any, context: ActivityContext) -> bool:
        """Return whether the (targeted) output is a number in the range."""
        found = _target(value, self.target)
        if not isinstance(found, int | float | str | Decimal):
            return False
        try:
            return self.low <= Decimal(found) <= self.high
        except ArithmeticError:  # not a number, or NaN
            return False

    def describe(self) -> str:
        """Return e.g. ``in range [0, 0.5]``."""
        return f"in range [{self.low}, {self.high}]"


@dataclass(frozen=True, slots=True)
class ProbeTolerance:
    """Another provider decides: called with ``value=<output>``, it returns something true."""

    provider: Provider

    def within(self, value: Any, context: ActivityContext) -> bool:
        """Return whether the provider, given `value`, returns something true."""
        ctx = dataclasses.replace(context, arguments={**context.arguments, "value": value})
        try:
            return bool(self.provider.run(ctx))
        except ActivityError:
            return False

    def describe(self) -> str:
        """Return e.g. ``probe python checks.ok``."""
        return f"probe {self.provider.describe()}"


def parse_tolerance(fields: Fields, key: str, registry: ProviderRegistry) -> Tolerance | None:
    """Read the tolerance at `key` of `fields`; record an issue and return None if invalid.

    Args:
        fields: The probe's table.
        key: Usually ``tolerance``.
        registry: Resolves the provider of a ``probe`` tolerance.

    Returns:
        The tolerance, or None when it is missing or invalid (an issue was recorded).
    """
    raw = fields.raw(key)
    if raw is None:
        fields.problem(key, "required: a probe of the steady state needs a tolerance")
        return None
    if isinstance(raw, bool | str):
        return Equals(raw)
    if isinstance(raw, int):
        return StatusCode(raw)
    if isinstance(raw, list | tuple):
        return Among(tuple(raw))
    if not isinstance(raw, Mapping):
        fields.problem(
            key,
            "expected a boolean, an integer, a string, a list, or a table with "
            f"type = one of {', '.join(_KINDS)}",
        )
        return None
    table = fields.table(key)
    assert table is not None
    return _parse_table(table, registry)


def _parse_table(table: Fields, registry: ProviderRegistry) -> Tolerance | None:
    kind = table.choice("type", _KINDS)
    table.ignore(("name",))
    tolerance: Tolerance | None = None
    if kind == "probe":
        provider_fields = table.table("provider", required=True)
        table.ignore(("arguments",))
        if provider_fields is not None:
            provider = registry.parse(provider_fields)
            tolerance = ProbeTolerance(provider) if provider is not None else None
    elif kind is not None:
        target = table.string("target")
        if kind == "regex":
            tolerance = _regex(table, target)
        elif kind == "jsonpath":
            tolerance = _jsonpath(table, target)
        else:
            tolerance = _range(table, target)
    table.finish()
    return tolerance


def _regex(table: Fields, target: str | None) -> Tolerance | None:
    pattern = table.string("pattern", required=True)
    if pattern is None:
        return None
    try:
        return Regex(re.compile(pattern), target)
    except re.error as exc:
        table.problem("pattern", f"not a valid regular expression: {exc}")
        return None


def _jsonpath(table: Fields, target: str | None) -> Tolerance | None:
    path = table.string("path", required=True)
    count = table.raw("count")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        table.problem("count", "expected an integer number of matches")
        count = None
    has_expect = table.has("expect")
    if path is None:
        return None
    try:
        from jsonpath_ng.ext.parser import parse
    except ImportError:
        table.problem(
            "type", "jsonpath tolerances need jsonpath-ng: pip install 'selfheal[server]'"
        )
        return None
    try:
        compiled = parse(path.strip())
    except Exception as exc:  # noqa: BLE001 - the parser raises several kinds
        table.problem("path", f"not a valid JSONPath: {exc}")
        return None
    return JsonPath(path, compiled, target, count, table.raw("expect"), has_expect)


def _range(table: Fields, target: str | None) -> Tolerance | None:
    bounds = table.raw("range")
    if (
        not isinstance(bounds, list | tuple)
        or len(bounds) != 2
        or not all(
            isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b)
            for b in bounds
        )
    ):
        table.problem("range", "expected two finite numbers [low, high]")
        return None
    low, high = (Decimal(b) for b in bounds)
    if low > high:
        table.problem("range", f"low bound {bounds[0]} is above high bound {bounds[1]}")
        return None
    return Range(low, high, target)
