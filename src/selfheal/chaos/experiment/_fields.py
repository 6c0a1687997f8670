"""Reading an experiment file's nested tables with a path, so every error names its field.

An experiment is plain data (TOML, JSON or YAML) until `Fields` has read it: each getter
checks one key's type and records an `ExperimentIssue` naming the key's full path
(``method[2].provider.type``) when it is wrong, so a file with three mistakes reports all three
at once, like `selfheal check` does for ``selfheal.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ExperimentError", "ExperimentIssue", "Fields"]


@dataclass(frozen=True, slots=True)
class ExperimentIssue:
    """One problem in an experiment file.

    Attributes:
        path: The offending field, e.g. ``method[2].provider.type`` ("" for the whole file).
        message: What is wrong and what would be valid.
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ExperimentError(Exception):
    """An experiment that cannot be run; `issues` lists every problem found.

    Args:
        source: The file name (or ``<string>``).
        issues: The problems, each naming its field.
    """

    def __init__(self, source: str, issues: Sequence[ExperimentIssue]) -> None:
        self.source = source
        self.issues = list(issues)
        if len(self.issues) == 1:
            text = f"{source}: {self.issues[0]}"
        else:
            lines = "\n".join(f"  {issue}" for issue in self.issues)
            text = f"{source}: {len(self.issues)} problems\n{lines}"
        super().__init__(text)


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean"),
    ((int, float), "a number"),
    (str, "a string"),
    (Mapping, "a table"),
    ((list, tuple), "a list"),
)


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return next((name for t, name in _KINDS if isinstance(value, t)), type(value).__name__)


class Fields:
    """A table of the experiment being read, with its path and the shared list of issues.

    Getters return the value when it is valid and `None` (after recording an issue) when it
    is not, so the reader goes on and finds the next problem too.

    Args:
        data: The table.
        path: Its dotted path ("" for the top level).
        issues: Where problems are recorded; shared by every `Fields` of one file.
        strict: When true, `finish` reports keys nobody read (typos in our TOML format);
            Chaos Toolkit files are read leniently, since they carry keys for extensions.
    """

    __slots__ = ("_read", "data", "issues", "path", "strict")

    def __init__(
        self,
        data: Mapping[str, Any],
        path: str = "",
        issues: list[ExperimentIssue] | None = None,
        *,
        strict: bool = False,
    ) -> None:
        self.data = data
        self.path = path
        self.issues: list[ExperimentIssue] = [] if issues is None else issues
        self.strict = strict
        self._read: set[str] = set()

    def at(self, key: str | int) -> str:
        """Return the path of `key` (a name or a list index) below this table."""
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str | int | None, message: str) -> None:
        """Record that `key` (None: this table itself) is wrong, with what would be valid."""
        self.issues.append(ExperimentIssue(self.path if key is None else self.at(key), message))

    def has(self, key: str) -> bool:
        """Return whether `key` is present (and mark it read)."""
        self._read.add(key)
        return key in self.data

    def raw(self, key: str, default: Any = None) -> Any:
        """Return the value of `key` unchecked (and mark it read)."""
        self._read.add(key)
        return self.data.get(key, default)

    def string(self, key: str, *, required: bool = False, default: str | None = None) -> Any:
        """Return a non-empty string, `default` when absent, or None after an issue."""
        value = self.raw(key)
        if value is None:
            if required:
                self.problem(key, "required: a non-empty string")
            return default
        if not isinstance(value, str) or not value:
            self.problem(key, f"expected a non-empty string, got {_kind(value)}")
            return None
        return value

    def number(self, key: str, *, default: float | None = None, positive: bool = False) -> Any:
        """Return a number >= 0 (> 0 if `positive`), `default` when absent, or None."""
        value = self.raw(key)
        if value is None:
            return default
        bound = "> 0" if positive else ">= 0"
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, f"expected a number of seconds {bound}, got {_kind(value)}")
            return None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            self.problem(key, f"expected a number of seconds {bound}, got {value!r}")
            return None
        return float(value)

    def boolean(self, key: str, *, default: bool = False) -> bool:
        """Return a boolean, `default` when absent (or after an issue)."""
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(key, f"expected true or false, got {_kind(value)}")
            return default
        return value

    def choice(self, key: str, choices: Sequence[str], *, default: str | None = None) -> Any:
        """Return one of `choices`, `default` when absent, or None after an issue."""
        value = self.raw(key)
        if value is None:
            if default is None:
                self.problem(key, f"required: one of {', '.join(choices)}")
            return default
        if value not in choices:
            self.problem(key, f"expected one of {', '.join(choices)}, got {value!r}")
            return None
        return str(value)

    def table(self, key: str, *, required: bool = False) -> Fields | None:
        """Return the sub-table at `key` as `Fields`, or None (absent, or after an issue)."""
        value = self.raw(key)
        if value is None:
            if required:
                self.problem(key, "required: a table")
            return None
        if not isinstance(value, Mapping):
            self.problem(key, f"expected a table, got {_kind(value)}")
            return None
        return Fields(value, self.at(key), self.issues, strict=self.strict)

    def tables(self, key: str) -> list[Fields]:
        """Return the list of tables at `key` (empty when absent); bad items are reported."""
        value = self.raw(key)
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            self.problem(key, f"expected a list of tables, got {_kind(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            path = f"{self.at(key)}[{i}]"
            if isinstance(item, Mapping):
                out.append(Fields(item, path, self.issues, strict=self.strict))
            else:
                self.issues.append(ExperimentIssue(path, f"expected a table, got {_kind(item)}"))
        return out

    def strings(self, key: str) -> tuple[str, ...]:
        """Return a list of strings (empty when absent or after an issue)."""
        value = self.raw(key)
        if value is None:
            return ()
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            self.problem(key, "expected a list of strings")
            return ()
        return tuple(value)

    def ignore(self, keys: Iterable[str]) -> None:
        """Mark `keys` as read: known keys this reader accepts and does not use."""
        self._read.update(keys)

    def finish(self) -> None:
        """In strict mode, report every key that no getter read (a typo, or unsupported)."""
        if not self.strict:
            return
        for key in self.data:
            if key not in self._read:
                self.problem(key, "unknown key (check the spelling; see docs/chaos.md)")
