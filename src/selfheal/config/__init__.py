"""The daemon's TOML configuration, validated with pydantic, with errors a person can act on.

Every error names the key (``programs.web.restart``), the line it stands on in the file, what
was wrong and what would be valid; nothing is a traceback. Each section's model lives beside
the component it configures (``selfheal.supervisor.config``, ``selfheal.recovery.config``,
``selfheal.store.config``, ``selfheal.runtime.health_config``); this package composes them and
owns the error reporting: reading the file safely and the values no key may hold (`_text`),
pydantic's errors as issues with lines (`_issues`).
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from selfheal.chaos.config import ChaosConfig
from selfheal.config._cross import check_rules, config_warnings
from selfheal.config._issues import Locator, issues_of, validate_model
from selfheal.config._text import MAX_CONFIG_BYTES, MAX_DEPTH, read_config_text, toml_data
from selfheal.errors import ConfigError, ConfigIssue
from selfheal.recovery.config import RecoveryEngineConfig, RecoveryRuleConfig
from selfheal.runtime.health_config import HealthConfig, check_health
from selfheal.store.config import JournalConfig
from selfheal.supervisor.config import (
    ControlConfig,
    ProgramConfig,
    check_programs,
    supervisord_advice,
)
from selfheal.synthetic.config import SyntheticTable

__all__ = [
    "MAX_CONFIG_BYTES",
    "MAX_DEPTH",
    "ConfigError",
    "ConfigIssue",
    "SelfhealConfig",
    "config_warnings",
    "load_config",
    "parse_config",
    "read_config_text",
    "validate_model",
]

# The most files an ``include`` may add, all patterns together.
_MAX_INCLUDED = 1000


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
    chaos: ChaosConfig = Field(default_factory=ChaosConfig)

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
    return parse_config(read_config_text(path), source=str(path), base_dir=path.parent)


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
    data, problems = toml_data(text, source)
    if "include" in data:
        data = _with_includes(data, text, source, Path(base_dir or "."))
    try:
        config = validate_model(
            SelfhealConfig, data, text=text, source=source, advice=supervisord_advice
        )
        # What no single program can check: dependencies and groups across programs, check
        # names that would clash with them, rules naming what does not exist.
        check_programs(config.programs)
        check_health(config.health, config.programs)
        check_rules(config)
    except ValidationError as exc:
        issues = issues_of(exc, text, supervisord_advice)
        raise _with(problems, ConfigError(source, issues)) from None
    except ConfigError as exc:
        raise _with(problems, exc) from None
    if problems:
        raise ConfigError(source, problems)
    return config


def _with(problems: list[ConfigIssue], error: ConfigError) -> ConfigError:
    """Return `error` with `problems` first (a model's issue of the same key left out)."""
    keys = {p.key for p in problems}
    return ConfigError(error.source, [*problems, *(i for i in error.issues if i.key not in keys)])


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
        line = Locator(text).line_of(("include",))
        message = 'must be a list of file patterns, e.g. include = ["conf.d/*.toml"]'
        raise ConfigError(source, [ConfigIssue("include", line, message)])
    programs = dict(data.get("programs") or {})
    recovery = list(data.get("recovery") or [])
    origin = dict.fromkeys(programs, source)
    names = [name for pattern in patterns for name in sorted(glob.glob(str(base / pattern)))]
    if len(names) > _MAX_INCLUDED:
        line = Locator(text).line_of(("include",))
        message = f"matches {len(names)} files; at most {_MAX_INCLUDED} can be included"
        raise ConfigError(source, [ConfigIssue("include", line, message)])
    for pattern in patterns:
        for name in sorted(glob.glob(str(base / pattern))):
            part_text = read_config_text(name)
            part, problems = toml_data(part_text, name)
            if problems:
                raise ConfigError(name, problems)
            other = [k for k in part if k not in ("programs", "recovery")]
            if other:
                line = Locator(part_text).line_of((other[0],))
                message = "an included file holds only [programs.*] and [[recovery]]"
                raise ConfigError(name, [ConfigIssue(other[0], line, message)])
            validate_model(_Included, part, text=part_text, source=name, advice=supervisord_advice)
            here = str(Path(name).resolve().parent)
            for prog, table in (part.get("programs") or {}).items():
                if prog in programs:
                    line = Locator(part_text).line_of(("programs", prog))
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
