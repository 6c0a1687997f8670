"""Read a circus ini file into a `Conversion`: watchers, their env sections, ``umask``.

``$(circus.wid)`` (1, 2, ...) becomes ``%(process_num)d`` with ``numprocs_start = 1``;
``$(circus.env.X)`` and ``$X`` in env values become ``${X}``. Circus starts the watchers of
the *highest* priority first; selfheal the lowest, so priority ``p`` becomes ``999 - p``.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any

from selfheal.cli._convert import (
    Conversion,
    Handler,
    always_group,
    program_name,
    read_ini,
    set_key,
    stop_signal,
    to_bool,
)

__all__ = ["from_circus", "is_circus"]

# Circus writes its variables $(circus.X) or ((circus.X)), in any case.
_WID = re.compile(r"\$\(circus\.wid\)|\(\(circus\.wid\)\)", re.IGNORECASE)
_CIRCUS_ENV = re.compile(
    r"\$\(circus\.env\.([A-Za-z_]\w*)\)|\(\(circus\.env\.([A-Za-z_]\w*)\)\)", re.IGNORECASE
)
_SOCKETS = re.compile(r"\$\(circus\.sockets\.|\(\(circus\.sockets\.", re.IGNORECASE)
_SHELL_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_SKIPPED = {
    "use_sockets": "sockets shared by the processes are not supported",
    "on_demand": "programs start with the daemon (autostart) or by hand",
    "virtualenv": "give the virtualenv's python in command",
    "virtualenv_py_ver": "give the virtualenv's python in command",
    "copy_path": "programs inherit the daemon's environment, PATH included",
    "executable": "the command's first element is what runs",
    "max_age": "programs are not restarted by age",
    "max_age_variance": "programs are not restarted by age",
    "send_hup": "selfheal restarts a changed program; selfheal signal HUP NAME sends HUP",
    "close_child_stdin": "stdin is always /dev/null",
    "close_child_stdout": "output always goes to the program's log",
    "close_child_stderr": "output always goes to the program's log",
    "check_flapping": "restart intensity (max_restarts in restart_window) does this",
    "stdin_socket": "stdin is always /dev/null",
    "shell_args": "with shell = true the command runs with /bin/sh -c",
}


def is_circus(path: Path) -> bool:
    """Whether `path` looks like a circus config (a ``[circus]`` or ``[watcher:...]`` section)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^\s*\[(circus|watcher:[^\]]+)\]", text, re.MULTILINE) is not None


def from_circus(path: Path) -> Conversion:
    """Read `path`.

    Raises:
        OSError: If it cannot be read.
        configparser.Error: If it is not an ini file.
    """
    conv = Conversion(str(path), "circus")
    p = read_ini(path, inline_comments=False)
    common = dict(p.items("env")) if p.has_section("env") else {}
    umask = ""
    envs = [
        ([s.strip() for s in section.removeprefix("env:").split(",")], dict(p.items(section)))
        for section in p.sections()
        if section.startswith("env:")
    ]
    for section in p.sections():
        items = dict(p.items(section))
        if section.startswith("watcher:"):
            raw = section.removeprefix("watcher:")
            env = dict(common)
            for patterns, values in envs:
                if any(fnmatch.fnmatch(raw, pat) for pat in patterns):
                    env.update(values)
            _watcher(conv, section, program_name(raw, conv, section), items, env)
        elif section == "circus":
            umask = _daemon_section(conv, items) or umask
        elif section != "env" and not section.startswith("env:"):
            conv.skip(section, "(whole section)", "sockets and plugins are not supported")
    for table in conv.programs.values():
        if umask:
            table.setdefault("umask", umask)
    if conv.programs:
        conv.note(
            "watcher:*",
            "copy_env",
            "selfheal programs always inherit the daemon's environment, plus their env",
        )
    return conv


def _daemon_section(conv: Conversion, items: dict[str, str]) -> str:
    """Note what ``[circus]`` holds; return its umask, which every program gets."""
    for key in items:
        if key == "umask":
            conv.note("circus", "umask", "given to each program")
        else:
            conv.skip("circus", key, "the daemon's own settings do not carry over")
    return items.get("umask", "").strip()


def _watcher(
    conv: Conversion, section: str, name: str, items: dict[str, str], env: dict[str, str]
) -> None:
    cmd = items.get("cmd")
    if not cmd:
        conv.skip(section, "(whole section)", "no cmd")
        return
    line = f"{cmd} {items.get('args', '')}".strip()
    if _SOCKETS.search(line):
        conv.skip(section, "(whole section)", "$(circus.sockets.*): shared sockets unsupported")
        return
    table: dict[str, Any] = {}
    shell = to_bool(items.get("shell", "false"))
    line = _CIRCUS_ENV.sub(_env_ref, line)
    numbered = _WID.search(line) is not None
    line = _WID.sub("%(process_num)d", line)
    table["command"] = [line] if shell else shlex.split(line)
    if shell:
        table["shell"] = True
    if numbered:
        table["numprocs_start"] = 1  # circus numbers its processes from 1
    for key, value in items.items():
        if key in ("cmd", "args", "shell"):
            continue
        try:
            _option(conv, section, table, key, value)
        except ValueError as exc:
            conv.skip(section, f"{key} = {value}", str(exc))
    if env:
        table["env"] = {k: _env_value(v) for k, v in env.items()}
    if "uid" in items or "gid" in items:
        user = items.get("uid", "")
        table["user"] = f"{user}:{items['gid']}" if "gid" in items else user
        if not user:
            conv.skip(section, "gid", "a group needs a uid to go with it")
            del table["user"]
    conv.programs[name] = table


def _env_ref(m: re.Match[str]) -> str:
    return "${" + (m.group(1) or m.group(2)) + "}"


def _env_value(value: str) -> str:
    return _SHELL_VAR.sub(r"${\1}", _CIRCUS_ENV.sub(_env_ref, value))


def _option(conv: Conversion, section: str, table: dict[str, Any], key: str, value: str) -> None:
    if key in ("uid", "gid"):
        return  # taken together, after the loop
    handler = _OPTIONS.get(key)
    if handler is not None:
        handler(conv, section, table, value)
    elif key.startswith(("stdout_stream.", "stderr_stream.")):
        if key.startswith("stderr_stream."):
            table["redirect_stderr"] = False
        conv.skip(section, key, "output goes to <log_dir>/NAME.log (and NAME.stderr.log)")
    elif key.startswith(("hooks.", "rlimit_")):
        conv.skip(section, key, "hooks and rlimits are not supported (rlimits: the service unit)")
    else:
        conv.skip(section, key, _SKIPPED.get(key, "unknown key"))


def _singleton(conv: Conversion, section: str, table: dict[str, Any], value: str) -> None:
    if to_bool(value):
        table["numprocs"] = 1


def _respawn(conv: Conversion, section: str, table: dict[str, Any], value: str) -> None:
    table["restart"] = "always" if to_bool(value) else "never"


def _max_retry(conv: Conversion, section: str, table: dict[str, Any], value: str) -> None:
    retries = int(value)
    table["max_restarts"] = retries if retries >= 0 else 1_000_000
    conv.note(section, "max_retry", "max_restarts within restart_window (60 s), then FATAL")


def _priority(conv: Conversion, section: str, table: dict[str, Any], value: str) -> None:
    table["priority"] = 999 - int(value)
    conv.note(section, "priority", "circus starts the highest first, selfheal the lowest: 999 - p")


def _warmup(conv: Conversion, section: str, table: dict[str, Any], value: str) -> None:
    conv.note(section, "warmup_delay", "processes start at once; priority orders the starts")


_OPTIONS: dict[str, Handler] = {
    "numprocesses": set_key("numprocs", int),
    "singleton": _singleton,
    "working_dir": set_key("cwd"),
    "respawn": _respawn,
    "autostart": set_key("autostart", to_bool),
    "stop_signal": stop_signal,
    "graceful_timeout": set_key("stop_grace", float),
    "stop_children": always_group("stop_children"),
    "max_retry": _max_retry,
    "priority": _priority,
    "warmup_delay": _warmup,
}
