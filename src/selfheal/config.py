"""The daemon's TOML configuration, validated with pydantic, with errors a person can act on.

Every error names the key (``programs.web.restart``), the line it stands on in the file, what
was wrong and what would be valid; nothing is a traceback. Each section's model lives beside
the component it configures (``selfheal.supervisor.config``, ``selfheal.recovery.config``,
``selfheal.store.config``, ``selfheal.runtime.health_config``); this module composes them and
owns the error reporting.
"""

from __future__ import annotations

import glob
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfheal._redact import is_secret_key, redact
from selfheal.errors import ConfigError, ConfigIssue
from selfheal.recovery.config import RecoveryEngineConfig, RecoveryRuleConfig
from selfheal.runtime.health_config import HealthConfig, check_health
from selfheal.store.config import JournalConfig
from selfheal.supervisor.config import ControlConfig, ProgramConfig, check_programs
from selfheal.synthetic.config import SyntheticTable

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
    """The whole ``selfheal.toml``: programs, health checks, recovery rules, control, journal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include: list[str] = Field(
        default_factory=list,
        description="files whose [programs.*] and [[recovery]] are added, e.g. "
        "['conf.d/*.toml'], relative to this file",
    )
    programs: dict[str, ProgramConfig] = Field(default_factory=dict)
    health: HealthConfig = Field(default_factory=HealthConfig)
    synthetic: SyntheticTable = Field(default_factory=dict)
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
    return parse_config(text, source=str(path), base_dir=path.parent)


def parse_config(
    text: str, *, source: str = "<string>", base_dir: str | Path | None = None
) -> SelfhealConfig:
    """Validate config `text` (TOML) into a `SelfhealConfig`.

    Args:
        text: The TOML.
        source: Its file name, for messages.
        base_dir: Where ``include`` patterns are relative to (default: the current directory).

    Raises:
        ConfigError: If the text (or an included file) is not TOML or not a valid
            configuration.
    """
    data = _toml(text, source)
    if "include" in data:
        data = _with_includes(data, text, source, Path(base_dir or "."))
    config = validate_model(SelfhealConfig, data, text=text, source=source)
    try:
        # What no single program can check: dependencies and groups across programs, and
        # check names that would clash with them.
        check_programs(config.programs)
        check_health(config.health, config.programs)
    except ValidationError as exc:
        raise ConfigError(source, _issues(exc, text)) from None
    return config


def _toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(exc, text)
        raise ConfigError(source, [ConfigIssue("", line, f"not valid TOML: {exc}")]) from exc


class _Included(BaseModel):
    """What an included file may hold: programs and recovery rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    programs: dict[str, ProgramConfig] = Field(default_factory=dict)
    recovery: list[RecoveryRuleConfig] = Field(default_factory=list)


def _with_includes(data: dict[str, Any], text: str, source: str, base: Path) -> dict[str, Any]:
    """Return `data` with the programs and rules of the files its ``include`` names.

    Each included file is validated on its own first, so its errors carry its name and
    lines; a program given twice is an error naming both files. A relative ``cwd`` and
    ``%(here)s`` in an included file are relative to that file.
    """
    patterns = data["include"]
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        line = _Locator(text).line_of(("include",))
        message = 'must be a list of file patterns, e.g. include = ["conf.d/*.toml"]'
        raise ConfigError(source, [ConfigIssue("include", line, message)])
    programs = dict(data.get("programs") or {})
    recovery = list(data.get("recovery") or [])
    origin = dict.fromkeys(programs, source)
    for pattern in patterns:
        for name in sorted(glob.glob(str(base / pattern))):
            part_text = Path(name).read_text(encoding="utf-8")
            part = _toml(part_text, name)
            other = [k for k in part if k not in ("programs", "recovery")]
            if other:
                line = _Locator(part_text).line_of((other[0],))
                message = "an included file holds only [programs.*] and [[recovery]]"
                raise ConfigError(name, [ConfigIssue(other[0], line, message)])
            validate_model(_Included, part, text=part_text, source=name)
            here = str(Path(name).resolve().parent)
            for prog, table in (part.get("programs") or {}).items():
                if prog in programs:
                    line = _Locator(part_text).line_of(("programs", prog))
                    message = f"program {prog!r} is also in {origin[prog]}"
                    raise ConfigError(name, [ConfigIssue(f"programs.{prog}", line, message)])
                programs[prog] = _relative_to(table, here)
                origin[prog] = name
            recovery += part.get("recovery") or []
    return {**data, "programs": programs, "recovery": recovery}


def _relative_to(table: dict[str, Any], here: str) -> dict[str, Any]:
    def x(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("%(here)s", here)
        if isinstance(value, list):
            return [x(v) for v in value]
        if isinstance(value, dict):
            return {k: x(v) for k, v in value.items()}
        return value

    out: dict[str, Any] = x(table)
    cwd = out.get("cwd")
    if isinstance(cwd, str) and not cwd.startswith(("/", "${", "%(")):
        out["cwd"] = str(Path(here) / cwd)
    return out


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
