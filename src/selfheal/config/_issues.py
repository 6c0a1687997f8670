"""Pydantic's validation errors as `ConfigIssue`s: the key, its line in the file, a sentence.

TOML gives no positions, so `Locator` finds a key's line by scanning the text; what an error
echoes of a value is shortened, and never shown for secrets.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias, TypeVar

from pydantic import BaseModel, ValidationError

from selfheal._redact import is_secret_key, redact
from selfheal.errors import ConfigError, ConfigIssue

__all__ = ["Advice", "Locator", "dotted", "issues_of", "validate_model"]

M = TypeVar("M", bound=BaseModel)
#: Says what to write instead of an unknown key (at this location) that another tool uses, or
#: None: ``stopsignal`` in a program is supervisord's ``stop_signal``.
Advice: TypeAlias = Callable[[tuple[object, ...]], str | None]


def validate_model(
    model: type[M],
    data: Any,
    *,
    text: str = "",
    source: str = "<string>",
    advice: Advice | None = None,
) -> M:
    """Validate `data` with `model`, turning pydantic's errors into `ConfigIssue`s with lines.

    Args:
        model: The pydantic model.
        data: The parsed TOML (or any mapping).
        text: The TOML source, used to find the line of each offending key.
        source: The file name for messages.
        advice: What to say of an unknown key another tool uses.

    Raises:
        ConfigError: With one issue per validation error.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, issues_of(exc, text, advice)) from None


def issues_of(exc: ValidationError, text: str, advice: Advice | None = None) -> list[ConfigIssue]:
    """Return one `ConfigIssue` per error of `exc`, with its line in `text`."""
    locator = Locator(text)
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_pydantic_branch(p))
        hint = advice(loc) if advice is not None and err["type"] == "extra_forbidden" else None
        message = hint or _explain(err, loc)
        issues.append(ConfigIssue(dotted(loc), locator.line_of(loc), message))
    return issues


def _is_secret_loc(loc: Sequence[object]) -> bool:
    # Environment values and tokens are secrets whatever their names; so is any secret-looking
    # key (``password``, ``api_key``...) anywhere in the file.
    return any(isinstance(p, str) and (p in {"env", "token"} or is_secret_key(p)) for p in loc)


def _is_pydantic_branch(part: object) -> bool:
    # Union and tagged-union errors add the branch name ("function-after[...]", "tcp") to loc.
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def dotted(loc: Sequence[object]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(err: Any, loc: Sequence[object] = ()) -> str:
    kind = err["type"]
    # Our validators' own sentences; pydantic's "Value error, " prefix only adds noise.
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; the valid keys: selfheal help configuration)"
    if kind == "missing":
        return "required key is missing"
    if _is_secret_loc(loc):
        return f"{msg} (value not shown: it may be a secret)"
    # A check of a whole table would print the table back, env and all: the key says where.
    if "input" in err and not isinstance(err["input"], dict):
        shown = redact(repr(err["input"]))
        if len(shown) > 60:
            shown = shown[:57] + "..."
        return f"{msg} (got {shown})"
    return msg


class Locator:
    """Finds the line of a key path in TOML text: table headers, then the key inside them.

    TOML gives no positions, so this scans headers (``[a.b]``, ``[[a]]``) and ``key =`` lines;
    inline tables and dotted keys are matched by name on the line. It is a best effort that
    falls back to the nearest enclosing table's line.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")
    _INLINE_KEY = re.compile(r"(?:^|[{,\s])([^\s{},=]+)\s*=")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # Indexed once, so that each lookup is a dictionary and a bisection, not a scan: a
        # file of 40,000 mistakes must not take 40,000 scans of its 40,000 lines.
        self._headers: dict[str, list[int]] = {}
        self._header_lines: list[int] = []
        self._keys: dict[str, list[int]] = {}
        for n, line in enumerate(self.lines):
            if m := self._HEADER.match(line):
                self._headers.setdefault(_norm(m.group(2)), []).append(n)
                self._header_lines.append(n)
                continue
            keys = set(self._INLINE_KEY.findall(line))
            if m := self._KEY.match(line):
                keys.add(_norm(m.group(1)).split(".")[0])
            for key in keys:
                self._keys.setdefault(key, []).append(n)

    def line_of(self, loc: Sequence[object]) -> int | None:
        best: int | None = None
        start, end = 0, len(self.lines)
        path: list[str] = []
        counts: dict[str, int] = {}
        i = 0
        while i < len(loc):
            part = loc[i]
            if isinstance(part, int):
                i += 1
                continue
            path.append(str(part))
            nxt = loc[i + 1] if i + 1 < len(loc) else None
            header = ".".join(path)
            found = self._find_header(header, nxt if isinstance(nxt, int) else None, counts)
            if found is not None:
                best = found + 1
                start, end = found + 1, self._table_end(found + 1)
            else:
                key_line = self._find_key(str(part), start, end)
                if key_line is not None:
                    best = key_line + 1
                    start = key_line
                    end = key_line + 1
            i += 1
        return best

    def deepest(self, limit: int) -> tuple[int | None, str]:
        """Return the line where brackets first nest past `limit`, and its key (a guess).

        For a file too deep for the TOML parser itself, which then says nothing: brackets
        are counted outside of quotes, which is enough to point at the line.
        """
        depth, header = 0, ""
        for n, line in enumerate(self.lines):
            if depth == 0 and (m := self._HEADER.match(line)):
                header = _norm(m.group(2))
            quote = ""
            for char in line:
                if quote:
                    quote = "" if char == quote else quote
                elif char in "\"'":
                    quote = char
                elif char == "#":
                    break
                elif char in "[{":
                    depth += 1
                elif char in "]}":
                    depth = max(0, depth - 1)
                if depth > limit:
                    key = m.group(1) if (m := self._KEY.match(line)) else ""
                    return n + 1, ".".join(p for p in (header, _norm(key)) if p)
        return None, ""

    def _find_header(self, name: str, index: int | None, counts: dict[str, int]) -> int | None:
        found = self._headers.get(name, [])
        position = 0 if index is None else index
        return found[position] if position < len(found) else None

    def _table_end(self, start: int) -> int:
        i = bisect.bisect_left(self._header_lines, start)
        return self._header_lines[i] if i < len(self._header_lines) else len(self.lines)

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        found = self._keys.get(key, [])
        i = bisect.bisect_left(found, start)
        return found[i] if i < len(found) and found[i] < end else None


def _norm(name: str) -> str:
    return ".".join(p.strip().strip("\"'") for p in name.split("."))
