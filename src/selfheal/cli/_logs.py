"""``selfheal tail|logs NAME [-f] [-n N] [--stderr]``: a process's output, as supervisorctl's tail.

The daemon, when it runs, says where each process's output goes (``NAME.log``, and
``NAME.stderr.log`` for a program with ``redirect_stderr = false``); without a daemon the
files are looked for in the log dir (from the last ``control.json``, the config's
``[control] log_dir``, else ``<state_dir>/logs``).
"""

from __future__ import annotations

import glob
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import click

from selfheal.cli._client import Daemon, Location, find, locate
from selfheal.cli._common import config_option, fail, state_dir_option

__all__ = ["commands"]


def _output_command(verb: str) -> click.Command:
    @click.command(name=verb)
    @click.argument("name")
    @config_option
    @state_dir_option
    @click.option("-n", "--lines", default=20, show_default=True, help="How many last lines.")
    @click.option("-f", "--follow", is_flag=True, help="Keep printing new output (Ctrl-C ends).")
    @click.option(
        "--stderr",
        "err",
        is_flag=True,
        help="The stderr log (programs with redirect_stderr = false).",
    )
    def command(
        *,
        name: str,
        config: str | None,
        state_dir: str | None,
        lines: int,
        follow: bool,
        err: bool,
    ) -> None:
        path = _log_file(name, locate(config, state_dir), stderr=err)
        for line in _last_lines(path, lines):
            click.echo(line)
        if follow:
            try:
                for chunk in _follow(path):
                    click.echo(chunk, nl=False)
            except KeyboardInterrupt:
                pass

    command.help = (
        "Print the output of process NAME (NAME:N for one of several): its last lines, or "
        "with -f everything it writes from now on."
    )
    return command


tail = _output_command("tail")
logs = _output_command("logs")


def _log_file(name: str, location: Location, *, stderr: bool) -> Path:
    found = find(location)
    if isinstance(found, Daemon):
        return _from_daemon(found, name, stderr=stderr)
    return _from_log_dir(name, location, stderr=stderr)


def _from_daemon(daemon: Daemon, name: str, *, stderr: bool) -> Path:
    _, body = daemon.request("GET", "/status", params={"name": [name]})
    processes = body.get("processes", [])
    if len(processes) != 1:
        names = ", ".join(p["name"] for p in processes)
        first = processes[0]["name"]
        fail(f"{name!r} runs several processes: {names}; name one (selfheal tail {first})")
    (p,) = processes
    if not stderr:
        return Path(p["log"])
    if not p.get("stderr_log"):
        fail(
            f"{p['name']} writes stderr into its output log (redirect_stderr = true): "
            f"selfheal tail {p['name']}"
        )
    return Path(p["stderr_log"])


def _from_log_dir(name: str, location: Location, *, stderr: bool) -> Path:
    log_dir = _log_dir(location)
    suffix = ".stderr.log" if stderr else ".log"
    stem = name.replace(":", "_").replace("/", "_")
    path = log_dir / f"{stem}{suffix}"
    if path.exists():
        return path
    # A program with numprocs > 1 has one log per process: NAME:N is NAME_N.log.
    numbered = sorted(
        (int(n), f"{name}:{n}")
        for p in log_dir.glob(f"{glob.escape(stem)}_*{suffix}")
        if (n := p.name.removesuffix(suffix).removeprefix(f"{stem}_")).isdigit()
    )
    if numbered:
        names = ", ".join(n for _, n in numbered)
        fail(f"{name!r} runs several processes: {names}; name one (selfheal tail {name}:0)")
    known = sorted(
        p.name.removesuffix(".log") for p in log_dir.glob("*.log") if ".stderr" not in p.name
    )
    note = f" (note: {location.problem})" if location.problem else ""
    return fail(f"no log for {name!r} in {log_dir}; known: {', '.join(known) or 'none'}{note}")


def _log_dir(location: Location) -> Path:
    try:
        info = json.loads((location.state_dir / "control.json").read_text())
        if isinstance(info, dict) and isinstance(info.get("log_dir"), str):
            return Path(info["log_dir"])
    except (OSError, ValueError):
        pass
    return location.log_dir or location.state_dir / "logs"


def _last_lines(path: Path, count: int) -> list[str]:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - max(count, 1) * 1024))
        data = f.read()
    out = data.decode(errors="replace").splitlines()
    return out[-count:] if count > 0 else []


def _follow(path: Path) -> Iterator[str]:
    """Return what is appended to `path` from now on, across rotations (file replaced)."""
    f = path.open("rb")
    f.seek(0, os.SEEK_END)
    return _follow_from(path, f)


def _follow_from(path: Path, f: BinaryIO) -> Iterator[str]:
    from selfheal._clock import SYSTEM_CLOCK

    inode = os.fstat(f.fileno()).st_ino
    try:
        while True:
            data = f.read()
            if data:
                yield data.decode(errors="replace")
                continue
            try:
                rotated = path.stat().st_ino != inode
            except FileNotFoundError:
                rotated = False
            if rotated:
                f.close()
                f = path.open("rb")
                inode = os.fstat(f.fileno()).st_ino
                continue
            # The CLI, not the daemon: a reader of a file polls; 0.2 s keeps up with a human.
            SYSTEM_CLOCK.sleep(0.2)
    finally:
        f.close()


commands: list[click.Command] = [tail, logs]
