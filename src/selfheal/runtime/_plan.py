"""The daemon's plan: its validated config in standard-library objects, paths resolved.

``selfheal run`` validates the file (pydantic) into a `DaemonPlan` and hands it to a lean
daemon process as JSON, so the long-running process never imports pydantic, click or rich,
which keeps its memory near supervisord's (see `selfheal.cli.daemon`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfheal.supervisor import ProgramSpec, spec_from_dict, spec_to_dict

if TYPE_CHECKING:
    from selfheal.config import SelfhealConfig

__all__ = ["DaemonPlan", "compile_plan", "load_daemon_config"]


@dataclass(frozen=True, slots=True)
class DaemonPlan:
    """The validated config of a daemon, in standard-library objects, paths resolved.

    Attributes:
        config_path: The absolute path of the ``selfheal.toml`` (reloads re-read it).
        state_dir: Lock, children file, notify socket, control files.
        log_dir: Programs' output files.
        programs: What to supervise, in config order.
        control: The ``[control]`` table as plain data (``enabled``, ``host``, ``port``,
            ``socket`` (absolute or None), ``token``, ``status_requires_token``,
            ``max_connections``, ``minfds``).
        extra: The rest of the config (``recovery``, ``journal``, ``health``...) as plain
            data, for the components that other areas add.
    """

    config_path: str
    state_dir: str
    log_dir: str
    programs: tuple[ProgramSpec, ...]
    control: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Return the plan as JSON (`from_json` reads it back)."""
        return json.dumps(
            {
                "config_path": self.config_path,
                "state_dir": self.state_dir,
                "log_dir": self.log_dir,
                "programs": [spec_to_dict(p) for p in self.programs],
                "control": self.control,
                "extra": self.extra,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> DaemonPlan:
        """Return the plan `to_json` wrote."""
        data = json.loads(text)
        return cls(
            config_path=data["config_path"],
            state_dir=data["state_dir"],
            log_dir=data["log_dir"],
            programs=tuple(spec_from_dict(p) for p in data["programs"]),
            control=dict(data.get("control", {})),
            extra=dict(data.get("extra", {})),
        )


def compile_plan(config_path: str | os.PathLike[str]) -> DaemonPlan:
    """Read, validate and resolve a config file into a `DaemonPlan` (needs pydantic).

    Relative paths (``state_dir``, ``log_dir``, ``socket``, programs' ``cwd``) are relative
    to the config file's directory; a program without ``cwd`` runs there.

    Raises:
        ConfigError: Naming every bad key with its line.
    """
    from dataclasses import replace

    path = Path(config_path).resolve()
    base = path.parent
    config = load_daemon_config(path)
    control = config.control
    programs = []
    for name, prog in config.programs.items():
        spec = prog.to_spec(name, base_dir=base)
        programs.append(spec if spec.cwd is not None else replace(spec, cwd=str(base)))
    return DaemonPlan(
        config_path=str(path),
        state_dir=str(base / control.state_dir),
        log_dir=str(base / (control.log_dir or f"{control.state_dir}/logs")),
        programs=tuple(programs),
        control={
            "enabled": control.enabled,
            "host": control.host,
            "port": control.port,
            "socket": str(base / control.socket) if control.socket else None,
            "token": control.token,
            "status_requires_token": control.status_requires_token,
            "max_connections": control.max_connections,
            "minfds": control.minfds,
        },
        extra={
            # Validated and complete (defaults filled): the daemon builds its rules from
            # these with the standard library (`selfheal.recovery.rule_from_dict`).
            "recovery": [rule.model_dump(mode="json") for rule in config.recovery],
            "recovery_engine": config.recovery_engine.model_dump(mode="json"),
            "health": config.health.to_plan(base),
            # Only what the user set: the daemon validates these again to build them, and a
            # dump of defaults can trip validators that refuse keys given together.
            "synthetic": {
                name: scenario.model_dump(mode="json", exclude_unset=True)
                for name, scenario in config.synthetic.items()
            },
            "chaos_proxy": (
                config.chaos.proxy.to_plan()
                if config.chaos.proxy is not None and config.chaos.proxy.enabled
                else None
            ),
            "journal": {
                "enabled": config.journal.enabled,
                "path": str(config.journal_path(base)),
                "url": config.journal.fleet_url,
                "local_copy": config.journal.local_copy,
                "synchronous": config.journal.synchronous,
                "options": dataclasses.asdict(config.journal.options()),
            },
        },
    )


def load_daemon_config(path: str | os.PathLike[str]) -> SelfhealConfig:
    """Load and validate a config file, including the checks that span programs.

    Raises:
        ConfigError: Naming every bad key with its line.
    """
    import tomllib

    from selfheal.config import load_config, read_config_text, validate_model
    from selfheal.supervisor.config import ProgramsTable, supervisord_advice

    config = load_config(Path(path))
    text = read_config_text(path)
    with contextlib.suppress(tomllib.TOMLDecodeError):
        data = tomllib.loads(text)
        validate_model(ProgramsTable, data, text=text, source=str(path), advice=supervisord_advice)
    return config
