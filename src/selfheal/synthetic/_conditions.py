"""Gatus-style placeholders: conditions on a response, and values captured from one.

Conditions are a convenience over `HttpConditions`, the one condition engine that HTTP health
checks use too; each string maps onto one of its fields:

- ``[STATUS] == 200`` (also ``!=``, ``<``, ``<=``, ``>``, ``>=``): the statuses that pass;
- ``[RESPONSE_TIME] < 300`` (or ``<=``): milliseconds the response may take at most;
- ``[BODY].user.id == 1``: a field of the JSON body (the value is JSON if it parses as JSON,
  ``"1"`` for a string, else the bare text: ``[BODY].status == UP``);
- ``[BODY] == pat(*welcome*)``: the body matches a shell-style pattern; ``[BODY] == ok`` the
  whole body is exactly that text;
- ``[HEADER].Content-Type == application/json``: a response header has exactly that value.

A capture (``order_id = "[BODY].id"``) reads ``[BODY].<path>``, ``[BODY]``, ``[STATUS]`` or
``[HEADER].<name>`` out of a response, for later steps' ``{order_id}`` templates.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from selfheal._httpcheck import MISSING, HttpConditions, Response, json_path
from selfheal.errors import CheckError

__all__ = ["Capture", "parse_capture", "parse_conditions"]

_FORM = re.compile(
    r"^\s*\[(?P<what>[A-Z_]+)\](?:\.(?P<path>[^\s=!<>]+))?"
    r"\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.*?)\s*$"
)
_PLACEHOLDER = re.compile(r"^\s*\[(?P<what>[A-Z_]+)\](?:\.(?P<path>\S+))?\s*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_STATUSES = range(100, 600)
_CONDITION_FORMS = (
    "'[STATUS] == 200' (or !=, <, <=, >, >=), '[RESPONSE_TIME] < 300' (ms), "
    "'[BODY].path == value', '[BODY] == pat(*text*)', '[HEADER].Name == value'"
)
_CAPTURE_FORMS = "'[BODY].path', '[BODY]', '[STATUS]' or '[HEADER].Name'"


def _literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_conditions(
    conditions: Iterable[str], base: HttpConditions | None = None
) -> HttpConditions:
    """Return `base` narrowed by Gatus-style condition strings.

    Args:
        conditions: Strings such as ``[STATUS] == 201`` or ``[BODY].id == 7``.
        base: The conditions to start from (default: any 2xx or 3xx status). Status
            conditions replace its statuses; the others add to it.

    Returns:
        The combined conditions.

    Raises:
        ValueError: A string that is no supported condition; the message quotes it and lists
            the forms that are.
    """
    parts = _Parts(base if base is not None else HttpConditions())
    for text in conditions:
        match = _FORM.match(text) if isinstance(text, str) else None
        if match is None:
            raise ValueError(f"{text!r} is not a condition: use {_CONDITION_FORMS}")
        parts.add(text, *match.group("what", "path", "op", "value"))
    return parts.build()


class _Parts:
    """The fields of `HttpConditions` as the strings build them up."""

    def __init__(self, base: HttpConditions) -> None:
        self.base = base
        self.statuses: set[int] | None = None
        self.json_fields = dict(base.json_fields)
        self.headers = dict(base.headers)
        self.changes: dict[str, Any] = {}

    def add(self, text: str, what: str, path: str | None, op: str, raw: str) -> None:
        if what == "STATUS" and path is None:
            self._status(text, op, raw)
        elif what == "RESPONSE_TIME" and path is None:
            self._response_time(text, op, raw)
        elif op != "==":
            raise ValueError(f"{text!r}: [{what}] conditions compare with == only")
        elif what == "BODY" and path is not None:
            self.json_fields[path] = _literal(raw)
        elif what == "BODY":
            self.changes["body_matches"] = _body_pattern(raw)
        elif what in ("HEADER", "HEADERS") and path is not None:
            self.headers[path] = raw
        else:
            raise ValueError(f"{text!r} is not a condition: use {_CONDITION_FORMS}")

    def _status(self, text: str, op: str, raw: str) -> None:
        code = _literal(raw)
        if isinstance(code, bool) or not isinstance(code, int):
            raise ValueError(f"{text!r}: [STATUS] compares with a whole number, got {raw!r}")
        allowed = {s for s in _STATUSES if _OPS[op](s, code)}
        self.statuses = allowed if self.statuses is None else self.statuses & allowed

    def _response_time(self, text: str, op: str, raw: str) -> None:
        limit = _literal(raw)
        if op not in ("<", "<=") or isinstance(limit, bool) or not isinstance(limit, int | float):
            raise ValueError(f"{text!r}: use '[RESPONSE_TIME] < N' with N in milliseconds")
        seconds = float(limit) / 1000
        current = self.changes.get("max_response_time", self.base.max_response_time)
        self.changes["max_response_time"] = seconds if current is None else min(current, seconds)

    def build(self) -> HttpConditions:
        changes = dict(self.changes)
        if self.statuses is not None:
            if not self.statuses:
                raise ValueError("the [STATUS] conditions together allow no status at all")
            changes["status"] = frozenset(self.statuses)
        return dataclasses.replace(
            self.base, json_fields=self.json_fields, headers=self.headers, **changes
        )


def _body_pattern(raw: str) -> re.Pattern[str]:
    if raw.startswith("pat(") and raw.endswith(")"):
        # fnmatch anchors the end only; \A anchors the start, as Gatus' pat() does.
        return re.compile(r"\A" + fnmatch.translate(raw[4:-1]))
    return re.compile(r"\A" + re.escape(raw) + r"\Z")


@dataclass(frozen=True, slots=True)
class Capture:
    """Where a value comes from in a response (see `parse_capture`).

    Attributes:
        source: ``body`` (a JSON path, or the whole text), ``status`` or ``header``.
        path: The JSON path or header name ("" for the whole body or the status).
        text: The expression as written, for messages.
    """

    source: Literal["body", "status", "header"]
    path: str
    text: str

    def read(self, response: Response) -> Any:
        """Return the value in `response`.

        Raises:
            CheckError: The response has no such value; the message names the expression.
        """
        if self.source == "status":
            return response.status_code
        if self.source == "header":
            value = response.headers.get(self.path)
            if value is None:
                raise CheckError(f"cannot capture {self.text}: the response has no such header")
            return value
        if not self.path:
            return response.text
        try:
            document = response.json()
        except ValueError:
            raise CheckError(f"cannot capture {self.text}: the body is not JSON") from None
        value = json_path(document, self.path)
        if value is MISSING:
            raise CheckError(f"cannot capture {self.text}: the JSON body has no such field")
        return value


def parse_capture(text: str) -> Capture:
    """Return the capture an expression such as ``[BODY].id`` describes.

    Raises:
        ValueError: An expression of no supported form; the message lists the forms.
    """
    match = _PLACEHOLDER.match(text) if isinstance(text, str) else None
    what, path = match.group("what", "path") if match else ("", None)
    if what == "BODY":
        return Capture("body", path or "", text.strip())
    if what == "STATUS" and path is None:
        return Capture("status", "", text.strip())
    if what in ("HEADER", "HEADERS") and path:
        return Capture("header", path, text.strip())
    raise ValueError(f"{text!r} is not a value to capture: use {_CAPTURE_FORMS}")
