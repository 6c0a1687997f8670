"""What ``selfheal import`` builds: programs and a ``[control]`` table, written as TOML.

The readers of supervisord's and circus's ini files (`_from_supervisord`, `_from_circus`) fill
a `Conversion`; every key they cannot carry over is listed in `Conversion.skipped` with the
reason, and every one carried over only approximately in `Conversion.notes`. Standard library
only.
"""

from __future__ import annotations

import configparser
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "SIGNALS",
    "Conversion",
    "Handler",
    "always_group",
    "byte_size",
    "program_name",
    "read_ini",
    "set_key",
    "stop_signal",
    "to_bool",
    "to_toml",
]

#: The stop signals selfheal accepts.
SIGNALS = ("TERM", "INT", "QUIT", "HUP", "KILL", "USR1", "USR2")
_NAME_BAD = re.compile(r"[^A-Za-z0-9_\-]")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass
class Conversion:
    """The result of reading another supervisor's config.

    Attributes:
        source: The file read.
        kind: ``supervisord`` or ``circus``.
        programs: ``[programs.NAME]`` tables, in the order found.
        control: The ``[control]`` table.
        skipped: One line per key or section not converted, with why.
        notes: One line per key converted with a difference worth knowing.
    """

    source: str
    kind: str
    programs: dict[str, dict[str, Any]] = field(default_factory=dict)
    control: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, where: str, what: str, why: str) -> None:
        """Record that `what` of `where` is not converted, and why."""
        self.skipped.append(f"[{where}] {what}: {why}")

    def note(self, where: str, what: str, how: str) -> None:
        """Record that `what` of `where` is converted with a difference."""
        self.notes.append(f"[{where}] {what}: {how}")


#: Converts one key's value into `table` (the program), noting or raising ValueError.
Handler = Callable[[Conversion, str, dict[str, Any], str], None]


def set_key(key: str, convert: Callable[[str], Any] = str) -> Handler:
    """Return a handler that sets `key` to the converted value."""

    def handler(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
        table[key] = convert(value)

    return handler


def stop_signal(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    """Set ``stop_signal`` from a signal name (``TERM``, ``SIGQUIT``...)."""
    sig = value.strip().upper().removeprefix("SIG")
    if sig not in SIGNALS:
        raise ValueError(f"selfheal stops with one of {', '.join(SIGNALS)}")
    table["stop_signal"] = sig


def always_group(key: str) -> Handler:
    """Return a handler noting that a false `key` changes nothing: the group is signalled."""

    def handler(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
        if not to_bool(value):
            conv.note(where, f"{key} = false", "selfheal always signals the whole process group")

    return handler


def read_ini(path: Path, *, inline_comments: bool) -> configparser.RawConfigParser:
    """Read an ini file the way supervisord and circus do: no interpolation, keys as written.

    Raises:
        OSError: If it cannot be read.
        configparser.Error: If it is not an ini file.
    """
    parser = configparser.RawConfigParser(
        comment_prefixes=(";", "#"),
        inline_comment_prefixes=(";", "#") if inline_comments else None,
        strict=False,
        interpolation=None,
    )
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    with path.open(encoding="utf-8") as f:
        parser.read_file(f, source=str(path))
    return parser


def to_bool(value: str) -> bool:
    """Return an ini boolean (``true``, ``yes``, ``on``, ``1``, and their opposites).

    Raises:
        ValueError: For anything else.
    """
    low = value.strip().lower()
    if low in ("true", "yes", "on", "1"):
        return True
    if low in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def byte_size(value: str) -> int:
    """Return supervisord's ``50MB`` / ``1KB`` / ``1024`` as bytes.

    Raises:
        ValueError: For anything else.
    """
    match = re.fullmatch(r"\s*(\d+)\s*(KB|MB|GB)?\s*", value, re.IGNORECASE)
    if match is None:
        raise ValueError(f"not a size: {value!r}")
    unit = {"KB": 1024, "MB": 1024**2, "GB": 1024**3}.get((match.group(2) or "").upper(), 1)
    return int(match.group(1)) * unit


def program_name(name: str, conv: Conversion, where: str) -> str:
    """Return `name` as a selfheal program name (letters, digits, ``_``, ``-``), noting a change."""
    fixed = _NAME_BAD.sub("_", name) or "program"
    if fixed != name:
        conv.note(where, "name", f"{name!r} becomes {fixed!r} (letters, digits, '_', '-')")
    return fixed


def to_toml(conv: Conversion) -> str:
    """Return `conv` as a ``selfheal.toml``, what was not converted listed at the top."""
    lines = [
        f"# Converted from {conv.source} ({conv.kind}) by `selfheal import`.",
        "# Check it with: selfheal check THIS_FILE",
    ]
    if conv.skipped:
        lines += ["#", "# Not converted:"] + [f"#   {s}" for s in conv.skipped]
    if conv.notes:
        lines += ["#", "# Converted with a difference:"] + [f"#   {n}" for n in conv.notes]
    if conv.control:
        lines += ["", "[control]"] + [f"{k} = {_value(v)}" for k, v in conv.control.items()]
    for name, table in conv.programs.items():
        lines += ["", f"[programs.{_key(name)}]"]
        lines += [f"{_key(k)} = {_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def _key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string (the same escapes).
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
