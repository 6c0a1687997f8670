"""Read a supervisord.conf into a `Conversion`: programs, groups, includes, the HTTP server.

supervisord's keys and their selfheal counterparts are in the table of
``selfheal help supervisor``; a key with none is listed as not converted, never dropped
silently.
"""

from __future__ import annotations

import configparser
import glob
import re
import shlex
from pathlib import Path
from typing import Any

from selfheal.cli._convert import (
    Conversion,
    Handler,
    always_group,
    byte_size,
    program_name,
    read_ini,
    set_key,
    stop_signal,
    to_bool,
)

__all__ = ["from_supervisord"]

_PERCENTS = re.compile(r"%%(?!\()")
_DEFAULT_NAMES = ("%(program_name)s", "%(program_name)s_%(process_num)d")
_QUIET = ("supervisorctl", "rpcinterface:")
_UNSUPPORTED = {
    "eventlistener:": "event listeners: selfheal publishes events on its bus, for [[recovery]] "
    "rules and the journal",
    "fcgi-program:": "FastCGI programs (a socket shared by the processes) are not supported",
    "ctlplugin:": "supervisorctl plugins do not apply",
}
_DAEMON_KEYS = {
    "logfile": "the daemon logs to stderr (selfheal run --log-format json for shippers)",
    "logfile_maxbytes": "the daemon logs to stderr",
    "logfile_backups": "the daemon logs to stderr",
    "loglevel": "selfheal run -v logs every event",
    "pidfile": "selfheal pid prints the daemon's pid",
    "nodaemon": "selfheal run always runs in the foreground (use a service manager)",
    "silent": "the daemon logs to stderr",
    "minfds": "set limits in the service unit (LimitNOFILE=)",
    "minprocs": "set limits in the service unit (LimitNPROC=)",
    "umask": "the daemon's umask is inherited; set umask per program",
    "user": "run selfheal as that user (its programs can have a user each)",
    "identifier": "not needed",
    "directory": "a program without cwd runs in the config file's directory",
    "nocleanup": "not needed",
    "strip_ansi": "output is written as the program writes it",
}


def from_supervisord(path: Path) -> Conversion:
    """Read `path` (and the files its ``[include]`` names).

    Raises:
        OSError: If a file cannot be read.
        configparser.Error: If a file is not an ini file.
    """
    conv = Conversion(str(path), "supervisord")
    parser = read_ini(path, inline_comments=True)
    parsers = [(path, parser)]
    if parser.has_section("include"):
        for pattern in parser.get("include", "files", fallback="").split():
            files = sorted(glob.glob(str(path.parent / pattern)))
            parsers += [(Path(f), read_ini(Path(f), inline_comments=True)) for f in files]
    groups: dict[str, tuple[str, int | None]] = {}
    for _, p in parsers:
        for section in p.sections():
            if section.startswith("group:"):
                group = section.removeprefix("group:")
                prio = p.get(section, "priority", fallback=None)
                for member in p.get(section, "programs", fallback="").split(","):
                    if member.strip():
                        groups[member.strip()] = (group, int(prio) if prio else None)
    env: dict[str, str] = {}
    for file, p in parsers:
        for section in p.sections():
            _section(conv, p, section, file=file, groups=groups, env=env)
    if env:
        for table in conv.programs.values():
            table["env"] = {**env, **table.get("env", {})}
    return conv


def _section(
    conv: Conversion,
    p: configparser.RawConfigParser,
    section: str,
    *,
    file: Path,
    groups: dict[str, tuple[str, int | None]],
    env: dict[str, str],
) -> None:
    # supervisord's %(here)s is the directory of the file it is in, which the converted file
    # may not share; and its %% is a '%' (selfheal keeps a '%' as written).
    here = str(file.resolve().parent)
    items = {k: _PERCENTS.sub("%", v.replace("%(here)s", here)) for k, v in p.items(section)}
    if section.startswith("program:"):
        _program(conv, section, items, groups)
    elif section == "supervisord":
        for key, value in items.items():
            if key == "environment":
                env.update(_environment(value))
            elif key == "childlogdir":
                conv.control["log_dir"] = value
            else:
                conv.skip(section, key, _DAEMON_KEYS.get(key, "unknown key"))
    elif section == "unix_http_server":
        conv.control["socket"] = items.get("file", "supervisor.sock")
        for key in items.keys() - {"file"}:
            conv.skip(section, key, "the control socket is 0600; state changes need a token")
    elif section == "inet_http_server":
        _inet(conv, items)
    elif section in ("include",) or section.startswith("group:"):
        return
    elif section.startswith(_QUIET):
        return  # supervisorctl's and the RPC interface's: nothing to carry over
    else:
        why = next((w for k, w in _UNSUPPORTED.items() if section.startswith(k)), None)
        conv.skip(section, "(whole section)", why or f"unknown section in {file.name}")


def _inet(conv: Conversion, items: dict[str, str]) -> None:
    where = "inet_http_server"
    host, _, port = items.get("port", "").rpartition(":")
    if "socket" in conv.control:
        conv.skip(where, "port", "selfheal serves one control address: the unix socket is kept")
    elif port.isdigit():
        conv.control["host"] = "0.0.0.0" if host in ("", "*") else host  # noqa: S104 - as written
        conv.control["port"] = int(port)
        if host in ("", "*"):
            conv.note(where, "port", "every interface, as written: 127.0.0.1 is safer")
    for key in items.keys() - {"port"}:
        conv.skip(where, key, "state changes need the token in <state_dir>/control.token")


def _program(
    conv: Conversion,
    section: str,
    items: dict[str, str],
    groups: dict[str, tuple[str, int | None]],
) -> None:
    raw = section.removeprefix("program:")
    name = program_name(raw, conv, section)
    table: dict[str, Any] = {}
    if "command" not in items:
        conv.skip(section, "(whole section)", "no command")
        return
    for key, value in items.items():
        handler = _KEYS.get(key)
        if handler is None:
            conv.skip(section, key, _SKIPPED.get(key, "unknown key"))
            continue
        try:
            handler(conv, section, table, value)
        except ValueError as exc:
            conv.skip(section, f"{key} = {value}", str(exc))
    if raw in groups:
        group, prio = groups[raw]
        table["group"] = program_name(group, conv, f"group:{group}")
        if prio is not None and "priority" not in table:
            table["priority"] = prio
    # supervisord's default: stderr in a file of its own.
    table.setdefault("redirect_stderr", False)
    conv.programs[name] = table


def _command(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    # supervisord execs the command itself (no shell): the same split, kept as an argv.
    table["command"] = shlex.split(value)


def _autorestart(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    low = value.strip().lower()
    if low == "unexpected":
        table["restart"] = "on-failure"
    else:
        table["restart"] = "always" if to_bool(value) else "never"


def _startretries(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    table["max_restarts"] = int(value)
    conv.note(
        where,
        "startretries",
        "max_restarts: more restarts than that within restart_window (60 s) is FATAL, "
        "counted over the whole run, not only while starting",
    )


def _startsecs(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    if int(value) > 0:
        conv.note(
            where,
            f"startsecs = {value}",
            "selfheal counts a program ready at spawn (or on its readiness probe / sd_notify "
            "READY=1); a crash soon after is restarted with backoff",
        )


def _logfile(key: str) -> Handler:
    def handler(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
        if value.strip().upper() not in ("AUTO", ""):
            conv.skip(
                where,
                f"{key} = {value}",
                "selfheal writes output to <log_dir>/NAME.log (and NAME.stderr.log); "
                "[control] log_dir moves them all",
            )

    return handler


def _log_max(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    size = max(byte_size(value), 1024)
    if table.setdefault("log_max_bytes", size) != size:
        conv.note(where, "stderr_logfile_maxbytes", "one size for both logs (stdout's)")


def _log_backups(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    if table.setdefault("log_backups", int(value)) != int(value):
        conv.note(where, "stderr_logfile_backups", "one count for both logs (stdout's)")


def _process_name(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    if value.replace("%(process_num)02d", "%(process_num)d") not in _DEFAULT_NAMES:
        conv.note(where, f"process_name = {value}", "processes are named NAME, or NAME:N")


def _env(conv: Conversion, where: str, table: dict[str, Any], value: str) -> None:
    table["env"] = _environment(value)


def _environment(value: str) -> dict[str, str]:
    """Parse ``KEY="value",KEY2=value2`` as supervisord does (quotes allow commas)."""
    lexer = shlex.shlex(value, posix=True)
    lexer.wordchars += "/.+-():$%{}@*~"
    lexer.whitespace += ","
    lexer.whitespace_split = False
    tokens = list(lexer)
    out: dict[str, str] = {}
    i = 0
    while i < len(tokens):
        if i + 2 >= len(tokens) or tokens[i + 1] != "=":
            raise ValueError(f"cannot read the key=value pairs of {value!r}")
        out[tokens[i]] = tokens[i + 2]
        i += 3
    return out


def _codes(value: str) -> list[int]:
    return [int(c) for c in value.split(",") if c.strip()]


def _umask(value: str) -> str:
    int(value, 8)  # a ValueError says it is not octal
    return value.strip()


_KEYS: dict[str, Handler] = {
    "command": _command,
    "process_name": _process_name,
    "numprocs": set_key("numprocs", int),
    "numprocs_start": set_key("numprocs_start", int),
    "directory": set_key("cwd"),
    "umask": set_key("umask", _umask),
    "priority": set_key("priority", int),
    "autostart": set_key("autostart", to_bool),
    "startsecs": _startsecs,
    "startretries": _startretries,
    "autorestart": _autorestart,
    "exitcodes": set_key("exit_codes", _codes),
    "stopsignal": stop_signal,
    "stopwaitsecs": set_key("stop_grace", float),
    "stopasgroup": always_group("stopasgroup"),
    "killasgroup": always_group("killasgroup"),
    "user": set_key("user"),
    "redirect_stderr": set_key("redirect_stderr", to_bool),
    "stdout_logfile": _logfile("stdout_logfile"),
    "stderr_logfile": _logfile("stderr_logfile"),
    "stdout_logfile_maxbytes": _log_max,
    "stderr_logfile_maxbytes": _log_max,
    "stdout_logfile_backups": _log_backups,
    "stderr_logfile_backups": _log_backups,
    "environment": _env,
}
_SKIPPED = {
    "stdout_capture_maxbytes": "capture mode (for event listeners) is not supported",
    "stderr_capture_maxbytes": "capture mode (for event listeners) is not supported",
    "stdout_events_enabled": "output events are not published (the .exited event has the "
    "last lines)",
    "stderr_events_enabled": "output events are not published (the .exited event has the "
    "last lines)",
    "stdout_syslog": "output goes to files only",
    "stderr_syslog": "output goes to files only",
    "serverurl": "programs talk to the daemon through the CLI and the control API",
}
