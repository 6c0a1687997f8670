"""CLI commands of the supervisor: run, status, start, stop, restart, reload, logs.

``run`` is the daemon; the others find it through ``<state_dir>/control.json`` (its address
and the path of its token file), where the state dir comes from ``--state-dir``, else from the
config (``-c``, default ``./selfheal.toml``), else ``./.selfheal``.
"""

from __future__ import annotations

import glob
import json
import os
import signal
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import click

from selfheal.cli._common import console, fail
from selfheal.errors import ConfigError

__all__ = ["commands"]

_config_option = click.option(
    "-c",
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=None,
    help="The selfheal.toml of the daemon (default: ./selfheal.toml).",
)
_state_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="The daemon's state directory (default: from the config, else ./.selfheal).",
)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("-v", "--verbose", is_flag=True, help="Log every event to stderr.")
def run(config: str, verbose: bool) -> None:
    """Run the daemon in the foreground: supervise CONFIG's programs until SIGINT/SIGTERM.

    SIGHUP (or `selfheal reload`) re-reads CONFIG and restarts only what changed.
    """
    from selfheal.runtime import compile_plan

    try:
        plan = compile_plan(config)
    except ConfigError as exc:
        fail(str(exc))
    # The validated plan goes to a lean daemon through a memfd; exec keeps the pid, drops
    # click, rich and pydantic from the long-running process.
    fd = os.memfd_create("selfheal-plan", 0)
    os.write(fd, plan.to_json().encode())
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    argv = [sys.executable, "-m", "selfheal.cli.daemon", "daemon", "--plan-fd", str(fd)]
    if verbose:
        argv.append("--verbose")
    sys.stdout.flush()
    sys.stderr.flush()
    # The mask survives exec: a SIGINT/SIGTERM while the daemon imports stays pending until
    # it has handlers (`Runtime.run` unblocks them), a clean shutdown instead of a traceback.
    signal.pthread_sigmask(signal.SIG_BLOCK, _DAEMON_SIGNALS)
    os.execv(sys.executable, argv)  # noqa: S606 - an argv list, no shell


_DAEMON_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


@click.command()
@_config_option
@_state_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
def status(config: str | None, state_dir: str | None, as_json: bool) -> None:
    """Show every supervised process: state, pid, uptime, restarts."""
    body = _request("GET", "/status", config, state_dir)
    if as_json:
        click.echo(json.dumps(body, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"selfheal daemon (pid {body.get('pid')})")
    for col in ("name", "state", "pid", "uptime", "restarts", "info"):
        table.add_column(col)
    colors = {"RUNNING": "green", "STARTING": "yellow", "BACKOFF": "yellow", "FATAL": "red"}
    for p in body.get("processes", []):
        state = p["state"]
        uptime = _duration(p["uptime"]) if p.get("uptime") is not None else "-"
        info = p.get("status") or p.get("reason") or ""
        if p.get("waiting_for"):
            info = f"waiting for {', '.join(p['waiting_for'])}"
        elif state in ("EXITED", "FATAL", "BACKOFF") and p.get("exit_code") is not None:
            info = f"{info} (exit {p['exit_code']})"
        table.add_row(
            p["name"],
            f"[{colors.get(state, 'white')}]{state}[/]",
            str(p.get("pid") or "-"),
            uptime,
            str(p.get("restarts", 0)),
            info,
        )
    console().print(table)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _action_command(verb: str, help_text: str) -> click.Command:
    @click.command(name=verb, help=help_text)
    @click.argument("name")
    @_config_option
    @_state_option
    def command(name: str, config: str | None, state_dir: str | None) -> None:
        quoted = urllib.parse.quote(name, safe="")
        body = _request("POST", f"/programs/{quoted}/{verb}", config, state_dir, timeout=75)
        # After a start, STOPPED means it could not start (waiting for a dependency nobody
        # starts, or stopped meanwhile).
        bad = {"FATAL", "EXITED", "BACKOFF", "STOPPED"} if verb != "stop" else {"FATAL"}
        for p in body.get("processes", []):
            line = f"{p['name']}: {p['state']}" + (f" (pid {p['pid']})" if p["pid"] else "")
            if p.get("waiting_for"):
                line += f" (waiting for {', '.join(p['waiting_for'])})"
            elif p["state"] in bad and p.get("reason"):
                code = p.get("exit_code")
                line += f" ({p['reason']}" + (f", exit {code})" if code is not None else ")")
            console().print(line, markup=False)
        if any(p["state"] in bad for p in body.get("processes", [])):
            raise SystemExit(1)

    return command


start = _action_command("start", "Start program NAME (or one process NAME:N).")
stop = _action_command("stop", "Stop program NAME: stop signal, grace period, SIGKILL.")
restart = _action_command("restart", "Restart program NAME.")


@click.command()
@_config_option
@_state_option
def reload(config: str | None, state_dir: str | None) -> None:
    """Re-read the daemon's config; restart only programs whose config changed.

    Recovery rules are reloaded too; [control] and [journal] changes need a daemon restart.
    """
    body = _request("POST", "/reload", config, state_dir, timeout=75)
    for key in ("added", "removed", "changed", "unchanged"):
        names = body.get(key) or []
        console().print(f"{key}: {', '.join(names) if names else '-'}", markup=False)
    if "recovery_rules" in body:
        console().print(f"recovery rules: {body['recovery_rules']} (reloaded)")
    if body.get("restart_needed"):
        console().print(
            f"needs a daemon restart: {', '.join(body['restart_needed'])} "
            "(changed, but applied only when the daemon starts)",
            markup=False,
        )


@click.command()
@click.argument("name")
@_config_option
@_state_option
@click.option("-n", "--lines", default=20, show_default=True, help="How many last lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output (Ctrl-C ends).")
def logs(
    name: str,
    config: str | None,
    state_dir: str | None,
    lines: int,
    follow: bool,
) -> None:
    """Print the output of program NAME (NAME:N for one of several processes)."""
    from selfheal.supervisor import log_path

    log_dir = _log_dir(config, state_dir)
    path = log_path(log_dir, name)
    if not path.exists():
        # A program with numprocs > 1 has one log per process: NAME:N is NAME_N.log.
        numbered = sorted(
            (int(n), f"{name}:{n}")
            for p in Path(log_dir).glob(f"{glob.escape(name)}_*.log")
            if (n := p.name.removesuffix(".log").removeprefix(f"{name}_")).isdigit()
        )
        if numbered:
            names = ", ".join(n for _, n in numbered)
            fail(f"{name!r} runs several processes: {names}; name one (selfheal logs {name}:0)")
        known = sorted(p.name.removesuffix(".log") for p in Path(log_dir).glob("*.log"))
        fail(f"no log for {name!r} in {log_dir}; known: {', '.join(known) or 'none'}")
    for line in _last_lines(path, lines):
        click.echo(line)
    if follow:
        try:
            for chunk in _follow(path):
                click.echo(chunk, nl=False)
        except KeyboardInterrupt:
            pass


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


def _state_dir(config: str | None, state_dir: str | None) -> Path:
    if state_dir is not None:
        return Path(state_dir)
    path = Path(config) if config is not None else Path("selfheal.toml")
    if config is None and not path.exists():
        return Path(".selfheal")
    from selfheal.config import load_config

    try:
        cfg = load_config(path)
    except ConfigError as exc:
        fail(str(exc))
    return path.resolve().parent / cfg.control.state_dir


def _log_dir(config: str | None, state_dir: str | None) -> Path:
    sdir = _state_dir(config, state_dir)
    try:
        from selfheal.web.control import read_control_file

        info = read_control_file(sdir)
        if info.get("log_dir"):
            return Path(info["log_dir"])
    except (OSError, ValueError):
        pass
    if config is not None or state_dir is None:
        path = Path(config) if config is not None else Path("selfheal.toml")
        if path.exists():
            from selfheal.config import load_config

            try:
                cfg = load_config(path)
            except ConfigError as exc:
                fail(str(exc))
            if cfg.control.log_dir:
                return path.resolve().parent / cfg.control.log_dir
    return sdir / "logs"


def _request(
    method: str,
    path: str,
    config: str | None,
    state_dir: str | None,
    *,
    timeout: float = 10.0,
) -> dict[str, Any]:
    import httpx

    from selfheal.web.control import read_control_file

    sdir = _state_dir(config, state_dir)
    try:
        info = read_control_file(sdir)
    except (OSError, ValueError):
        fail(f"no daemon is running with state dir {sdir} (start one: selfheal run CONFIG)")
    if not (
        isinstance(info, dict)
        and isinstance(info.get("pid"), int)
        and isinstance(info.get("url") or info.get("socket"), str)
    ):
        fail(
            f"no daemon is running with state dir {sdir} ({sdir / 'control.json'} is not one "
            "a daemon wrote; start one: selfheal run CONFIG)"
        )
    if not Path(f"/proc/{info['pid']}").exists():
        fail(
            f"no daemon is running (pid {info['pid']} in {sdir / 'control.json'} is gone: it "
            "was killed; start one: selfheal run CONFIG)"
        )
    headers = {}
    try:
        headers["Authorization"] = "Bearer " + Path(info["token_file"]).read_text().strip()
    except (OSError, KeyError):
        if method != "GET":
            fail(f"cannot read the daemon's token file ({info.get('token_file')})")
    if info.get("socket"):
        client = httpx.Client(
            transport=httpx.HTTPTransport(uds=info["socket"]),
            base_url="http://selfheal",
            timeout=timeout,
        )
    else:
        client = httpx.Client(base_url=info["url"], timeout=timeout)
    try:
        with client:
            response = client.request(method, path, headers=headers)
    except httpx.TransportError as exc:
        fail(f"cannot reach the daemon (pid {info.get('pid')}) at {sdir}: {exc}")
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"error": response.text}
    if response.status_code >= 400:
        fail(str(body.get("error") or f"HTTP {response.status_code}"), code=1)
    return body


commands: list[click.Command] = [run, status, start, stop, restart, reload, logs]
