"""The daemon's TOML configuration, validated with pydantic, with errors a person can act on.

Every error names the key (``programs.web.restart``), the line it stands on in the file, what
was wrong and what would be valid; nothing is a traceback. Each section's model lives beside
the component it configures (``selfheal.supervisor.config``, ``selfheal.recovery.config``,
``selfheal.store.config``); this module composes them and owns the error reporting.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfheal._redact import is_secret_key, redact
from selfheal.errors import ConfigError, ConfigIssue
from selfheal.recovery.config import RecoveryEngineConfig, RecoveryRuleConfig
from selfheal.store.config import JournalConfig
from selfheal.supervisor.config import ControlConfig, ProgramConfig, check_programs

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "SelfhealConfig",
    "load_config",
    "parse_config",
    "validate_model",
]

M = TypeVar("M", bound=BaseModel)


class SelfhealConfig(BaseModel):
    """The whole ``selfheal.toml``: programs to supervise, recovery rules, control API, journal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    programs: dict[str, ProgramConfig] = Field(default_factory=dict)
    recovery: list[RecoveryRuleConfig] = Field(default_factory=list)
    recovery_engine: RecoveryEngineConfig = Field(default_factory=RecoveryEngineConfig)
    control: ControlConfig = Field(default_factory=ControlConfig)
    journal: JournalConfig = Field(default_factory=JournalConfig)

    def journal_path(self, base_dir: str | Path) -> Path:
        """Return the journal's SQLite file for a config file in `base_dir`.

        Without a ``[journal] url`` it is ``<state_dir>/journal.db``, beside the daemon's other
        state; a relative ``url`` is taken relative to `base_dir`, like every path here. The
        daemon and ``selfheal events -c`` both ask this, so they always agree.
        """
        if "url" in self.journal.model_fields_set and self.journal.fleet_url is None:
            return self.journal.path_in(base_dir)
        return Path(base_dir) / self.control.state_dir / "journal.db"


def load_config(path: str | Path) -> SelfhealConfig:
    """Read and validate a ``selfheal.toml``.

    Args:
        path: The file.

    Returns:
        The validated configuration; relative paths in it stay as written.

    Raises:
        ConfigError: If the file is missing, not TOML, or not a valid configuration.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            str(path), [ConfigIssue("", None, f"cannot read: {exc.strerror}")]
        ) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        message = f"not UTF-8 text (byte {data[exc.start]:#04x}); TOML files are UTF-8"
        raise ConfigError(str(path), [ConfigIssue("", line, message)]) from None
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<string>") -> SelfhealConfig:
    """Validate config `text` (TOML) into a `SelfhealConfig`.

    Raises:
        ConfigError: If the text is not TOML or not a valid configuration.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(exc, text)
        raise ConfigError(source, [ConfigIssue("", line, f"not valid TOML: {exc}")]) from exc
    config = validate_model(SelfhealConfig, data, text=text, source=source)
    try:
        # What no single program can check: dependencies and groups across programs.
        check_programs(config.programs)
    except ValidationError as exc:
        raise ConfigError(source, _issues(exc, text)) from None
    return config


def _toml_error_line(exc: tomllib.TOMLDecodeError, text: str) -> int:
    lineno = getattr(exc, "lineno", None)  # Python 3.14 and later
    if isinstance(lineno, int):
        return lineno
    # Before 3.14 the position is only in the message ("... (at line 3, column 7)"): read the
    # number, never the kind of error, and fall back to the last line.
    match = re.search(r"at line (\d+)", str(exc))
    return int(match.group(1)) if match else max(1, len(text.splitlines()))


def validate_model(model: type[M], data: Any, *, text: str = "", source: str = "<string>") -> M:
    """Validate `data` with `model`, turning pydantic's errors into `ConfigIssue`s with lines.

    Args:
        model: The pydantic model.
        data: The parsed TOML (or any mapping).
        text: The TOML source, used to find the line of each offending key.
        source: The file name for messages.

    Raises:
        ConfigError: With one issue per validation error.
    """
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, _issues(exc, text)) from None


def _issues(exc: ValidationError, text: str) -> list[ConfigIssue]:
    locator = _Locator(text)
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not _is_pydantic_branch(p))
        issues.append(ConfigIssue(_dotted(loc), locator.line_of(loc), _explain(err, loc)))
    return issues


def _is_secret_loc(loc: Sequence[object]) -> bool:
    # Environment values and tokens are secrets whatever their names; so is any secret-looking
    # key (``password``, ``api_key``...) anywhere in the file.
    return any(isinstance(p, str) and (p in {"env", "token"} or is_secret_key(p)) for p in loc)


def _is_pydantic_branch(part: object) -> bool:
    # Union and tagged-union errors add the branch name ("function-after[...]", "tcp") to loc.
    return isinstance(part, str) and ("[" in part or part.startswith("function-"))


def _dotted(loc: Sequence[object]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(err: Any, loc: Sequence[object] = ()) -> str:
    kind = err["type"]
    # Our validators' own sentences; pydantic's "Value error, " prefix only adds noise.
    msg = str(err["msg"]).removeprefix("Value error, ")
    if kind == "extra_forbidden":
        return "unknown key (check the spelling; see docs/configuration.md for valid keys)"
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


class _Locator:
    """Finds the line of a key path in TOML text: table headers, then the key inside them.

    TOML gives no positions, so this scans headers (``[a.b]``, ``[[a]]``) and ``key =`` lines;
    inline tables and dotted keys are matched by name on the line. It is a best effort that
    falls back to the nearest enclosing table's line.
    """

    _HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

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

    def _find_header(self, name: str, index: int | None, counts: dict[str, int]) -> int | None:
        seen = 0
        for n, line in enumerate(self.lines):
            m = self._HEADER.match(line)
            if m and _norm(m.group(2)) == name:
                if index is None or seen == index:
                    return n
                seen += 1
        return None

    def _table_end(self, start: int) -> int:
        for n in range(start, len(self.lines)):
            if self._HEADER.match(self.lines[n]):
                return n
        return len(self.lines)

    def _find_key(self, key: str, start: int, end: int) -> int | None:
        for n in range(start, min(end, len(self.lines))):
            line = self.lines[n]
            m = self._KEY.match(line)
            if m and _norm(m.group(1)).split(".")[0] == key:
                return n
            if re.search(rf"(^|[{{,\s]){re.escape(key)}\s*=", line):
                return n
        return None


def _norm(name: str) -> str:
    return ".".join(p.strip().strip("\"'") for p in name.split("."))
