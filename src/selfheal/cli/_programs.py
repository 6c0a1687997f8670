"""The program names a config file declares, read without validating it.

``selfheal avail`` compares them with the daemon's: a typo elsewhere in the file must not
hide what the daemon runs, so this reads TOML only (the file and its ``include`` globs) and
reports a problem instead of failing.
"""

from __future__ import annotations

import glob
import tomllib
from pathlib import Path

from selfheal._bounds import read_config_text
from selfheal.errors import ConfigError

__all__ = ["configured_programs"]


def configured_programs(config: str) -> tuple[list[str], str]:
    """Return the program names of `config` (and its included files) in order, and a problem.

    Returns:
        The names, and "" or why they could not all be read.
    """
    path = Path(config)
    try:
        data = tomllib.loads(read_config_text(path))
    except ConfigError as exc:
        return [], f"{path} cannot be read: {exc.issues[0].message}"
    except tomllib.TOMLDecodeError as exc:
        return [], f"{path} cannot be read as TOML: {exc}"
    names = list(_programs(data))
    patterns = data.get("include", [])
    if not isinstance(patterns, list):
        return names, f"{path}: include must be a list of file patterns"
    for pattern in patterns:
        if not isinstance(pattern, str):
            continue
        for file in sorted(glob.glob(str(path.resolve().parent / pattern))):
            try:
                names += _programs(tomllib.loads(read_config_text(file)))
            except ConfigError as exc:
                return names, f"{file} (included by {path}) cannot be read: {exc.issues[0].message}"
            except tomllib.TOMLDecodeError as exc:
                return names, f"{file} (included by {path}) cannot be read as TOML: {exc}"
    return names, ""


def _programs(data: dict[str, object]) -> list[str]:
    programs = data.get("programs")
    return list(programs) if isinstance(programs, dict) else []
