"""A config file's text, read safely, and its TOML parsed into data no key may misuse.

`read_config_text` (from `selfheal._bounds`, which the CLI's light readers share) refuses what
is not a small regular file before reading a byte (a FIFO would hang, ``/dev/zero`` would fill
memory); `toml_data` parses, refuses nesting too deep to
validate and finds the values no key may hold (nan, inf, integers past 64 bits, NUL).
"""

from __future__ import annotations

import math
import re
import tomllib
from typing import Any

from selfheal._bounds import MAX_CONFIG_BYTES, read_config_text
from selfheal.config._issues import Locator, dotted
from selfheal.errors import ConfigError, ConfigIssue

__all__ = ["MAX_CONFIG_BYTES", "MAX_DEPTH", "read_config_text", "toml_data"]

#: How deep tables and arrays may nest; a real config needs a handful of levels.
MAX_DEPTH = 32
# TOML integers are 64-bit; tomllib reads any size, which SQLite and timers cannot hold.
_INT64 = (-(1 << 63), (1 << 63) - 1)


def toml_data(text: str, source: str) -> tuple[dict[str, Any], list[ConfigIssue]]:
    """Return the parsed `text` and the values no key may hold (see `_value_issues`).

    Raises:
        ConfigError: If it is not TOML, or nested too deeply to validate at all.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(exc, text)
        raise ConfigError(source, [ConfigIssue("", line, f"not valid TOML: {exc}")]) from exc
    except RecursionError:
        # tomllib parses nested values recursively: far deeper than MAX_DEPTH, so refused too.
        where, key = Locator(text).deepest(MAX_DEPTH)
        message = f"nested too deeply (at most {MAX_DEPTH} levels)"
        raise ConfigError(source, [ConfigIssue(key, where, message)]) from None
    too_deep, problems = _value_issues(data, text)
    if too_deep:
        raise ConfigError(source, too_deep)
    return data, problems


def _value_issues(data: dict[str, Any], text: str) -> tuple[list[ConfigIssue], list[ConfigIssue]]:
    """Return what no key may hold: deep nesting, and nan or inf, integers past 64 bits, NUL.

    Checked on the parsed file (iteratively: the depth is the problem), so every section,
    and every free-form table (``when``, ``body``, ``json_fields``), is covered once. Too
    deep a value cannot be validated further; the others are reported with the models'
    findings.
    """
    locator = Locator(text)
    too_deep: list[ConfigIssue] = []
    found: list[tuple[tuple[object, ...], str]] = []
    stack: list[tuple[tuple[object, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, dict | list):
            if len(loc) > MAX_DEPTH:
                message = f"nested too deeply (at most {MAX_DEPTH} levels)"
                line = locator.line_of(loc[:MAX_DEPTH])
                too_deep.append(ConfigIssue(dotted(loc[:MAX_DEPTH]), line, message))
                continue
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack += [((*loc, k), v) for k, v in reversed(list(items))]
        elif isinstance(value, float) and not math.isfinite(value):
            found.append((loc, "must be a finite number (nan and inf are not allowed)"))
        elif isinstance(value, int) and not _INT64[0] <= value <= _INT64[1]:
            found.append((loc, "is out of range: TOML integers are 64-bit"))
        elif isinstance(value, str) and "\0" in value:
            found.append((loc, "contains a NUL character, which no name, path or argument can"))
        if any(isinstance(k, str) and "\0" in k for k in loc[-1:]):
            found.append((loc, "the key contains a NUL character"))
    problems = [ConfigIssue(dotted(loc), locator.line_of(loc), msg) for loc, msg in found[:50]]
    return too_deep, problems


def _toml_error_line(exc: tomllib.TOMLDecodeError, text: str) -> int:
    lineno = getattr(exc, "lineno", None)  # Python 3.14 and later
    if isinstance(lineno, int):
        return lineno
    # Before 3.14 the position is only in the message ("... (at line 3, column 7)"): read the
    # number, never the kind of error, and fall back to the last line.
    match = re.search(r"at line (\d+)", str(exc))
    return int(match.group(1)) if match else max(1, len(text.splitlines()))
