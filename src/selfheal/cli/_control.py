"""The control commands, as supervisorctl and systemctl have them.

``status [NAME...]``, ``start|stop|restart NAME...``, ``signal SIG NAME...``,
``pid [NAME...]``, ``avail``, ``shutdown``. A NAME is ``all``, a program (``web``), a process
(``worker:1``), every process of a program or group (``worker:*``, ``GROUP:*``) or a program
of a group (``GROUP:web``). They talk to the running daemon (`selfheal.cli._client`).
"""

from __future__ import annotations

import concurrent.futures
import signal
from typing import Any

import click

from selfheal._json import dumps
from selfheal.cli._client import Daemon, connect, locate
from selfheal.cli._common import config_option, console, err_console, fail, state_dir_option
from selfheal.cli._programs import configured_programs

__all__ = ["commands"]

_COLORS = {"RUNNING": "green", "STARTING": "yellow", "BACKOFF": "yellow", "FATAL": "red"}
_GOOD = {"start": {"RUNNING"}, "restart": {"RUNNING"}, "stop": {"STOPPED", "EXITED", "FATAL"}}
#: LSB's "program is not running": what ``status NAME`` exits with, as systemctl does.
EXIT_NOT_RUNNING = 3


@click.command()
@click.argument("names", nargs=-1)
@config_option
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON.")
def status(
    names: tuple[str, ...], config: str | None, state_dir: str | None, as_json: bool
) -> None:
    """Show supervised processes: state, pid, uptime, restarts (all, or NAMES).

    With NAMES, the exit status is 3 when one of them is not RUNNING (as systemctl's).
    """
    daemon = connect(config, state_dir)
    params = {"name": list(names)} if names else None
    _, body = daemon.request("GET", "/status", params=params)
    processes = body.get("processes", [])
    if as_json:
        click.echo(dumps(body, indent=2))
    else:
        from rich.table import Table
        from rich.text import Text

        table = Table(title=Text(f"selfheal daemon (pid {body.get('pid')})"))
        for col in ("name", "state", "pid", "uptime", "restarts", "info"):
            table.add_column(col)
        for p in processes:
            state = str(p["state"])
            uptime = _duration(p["uptime"]) if p.get("uptime") is not None else "-"
            # Text, never markup: programs write the status and the reasons ("[Errno 2]").
            table.add_row(
                Text(str(p["name"])),
                Text(state, style=_COLORS.get(state, "white")),
                Text(str(p.get("pid") or "-")),
                uptime,
                Text(str(p.get("restarts", 0))),
                Text(_info(p)),
            )
        console().print(table)
    if names and any(p["state"] != "RUNNING" for p in processes):
        raise SystemExit(EXIT_NOT_RUNNING)


def _info(p: dict[str, Any]) -> str:
    """Return what a person wants to know about a process beside its state."""
    state = p["state"]
    if p.get("waiting_for"):
        return f"waiting for {', '.join(p['waiting_for'])}"
    if state in ("STARTING", "RUNNING") and p.get("probe"):
        return str(p["probe"])
    info = str(p.get("status") or p.get("reason") or "")
    if state in ("EXITED", "FATAL", "BACKOFF") and p.get("exit_code") is not None:
        info = f"{info} ({_exit(p['exit_code'])})"
    return info


def _exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def _duration(seconds: float) -> str:
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _action_command(verb: str, help_text: str) -> click.Command:
    @click.command(name=verb, help=help_text)
    @click.argument("names", nargs=-1, required=True)
    @config_option
    @state_dir_option
    @click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=None,
        help="Give up waiting after this many seconds (default: the programs' start_timeout "
        "or stop_grace plus 5 s; 60 s for a start without a start_timeout).",
    )
    @click.option("--no-wait", is_flag=True, help="Return as soon as the action is under way.")
    def command(
        names: tuple[str, ...],
        config: str | None,
        state_dir: str | None,
        timeout: float | None,
        no_wait: bool,
    ) -> None:
        daemon = connect(config, state_dir)
        code, body = _act(daemon, verb, list(names), timeout=timeout, wait=not no_wait)
        if not _report(verb, body, waited=not no_wait):
            raise SystemExit(1)
        if code == 504:
            raise SystemExit(1)

    return command


start = _action_command(
    "start",
    "Start NAMES (programs, processes NAME:N, NAME:*, GROUP:*, or all); wait until they are "
    "ready, or say why not.",
)
stop = _action_command(
    "stop",
    "Stop NAMES: stop signal, grace period, SIGKILL. Programs that depend on them are "
    "stopped first.",
)
restart = _action_command(
    "restart",
    "Restart NAMES; the programs that depend on them are restarted once they are ready.",
)


def _act(
    daemon: Daemon, verb: str, names: list[str], *, timeout: float | None, wait: bool
) -> tuple[int, dict[str, Any]]:
    """Ask the daemon for `verb` of `names`; report progress (stderr) until it answers."""
    from selfheal.web.control import action_bound

    _, body = daemon.request("GET", "/status", params={"name": names})
    before = body.get("processes", [])
    limit = timeout if timeout is not None else action_bound(before, verb)
    payload = {"names": names, "wait": wait, "timeout": limit}
    if not wait:
        return daemon.request("POST", f"/processes/{verb}", json=payload, ok=(504,))
    seen = {p["name"]: _progress(p) for p in before}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(
            daemon.request,
            "POST",
            f"/processes/{verb}",
            json=payload,
            timeout=limit + 15,
            ok=(504,),
        )
        while True:
            try:
                return answer.result(timeout=0.25)
            except concurrent.futures.TimeoutError:
                pass
            # The CLI, not the daemon, polls: a person watching a start wants to see it move.
            _, now = daemon.request("GET", "/status", params={"name": names})
            for p in now.get("processes", []):
                line = _progress(p)
                if seen.get(p["name"]) != line:
                    seen[p["name"]] = line
                    err_console().print(f"... {line}", markup=False)


def _progress(p: dict[str, Any]) -> str:
    line = f"{p['name']}: {p['state']}" + (f" (pid {p['pid']})" if p.get("pid") else "")
    info = _info(p) if p["state"] != "RUNNING" else ""
    return f"{line}: {info}" if info else line


def _report(verb: str, body: dict[str, Any], *, waited: bool) -> bool:
    """Print each process acted on and, for those left badly, why; return whether all went well."""
    good = _GOOD.get(verb, set())
    also = set(body.get("also") or [])
    timed_out = bool(body.get("timed_out"))
    all_good = True
    for p in body.get("processes", []):
        line = f"{p['name']}: {p['state']}" + (f" (pid {p['pid']})" if p.get("pid") else "")
        bad = waited and p["state"] not in good
        if p.get("waiting_for"):
            line += f" (waiting for {', '.join(p['waiting_for'])})"
        elif p["name"] in also and p.get("reason"):
            line += f" ({p['reason']})"
        elif bad and (p.get("reason") or p.get("probe")):
            line += f" ({_why(p)})"
        console().print(line, markup=False)
        if bad:
            all_good = False
            for tail_line in p.get("tail") or []:
                console().print(f"    | {tail_line}", markup=False)
    if timed_out:
        click.echo(f"error: {body.get('error')}; gave up waiting (it goes on)", err=True)
    return all_good


def _why(p: dict[str, Any]) -> str:
    parts = []
    if p["state"] in ("STARTING", "RUNNING") and p.get("probe"):
        parts.append(str(p["probe"]))
    elif p.get("reason"):
        parts.append(str(p["reason"]))
    if p["state"] in ("EXITED", "FATAL", "BACKOFF") and p.get("exit_code") is not None:
        parts.append(_exit(p["exit_code"]))
    return ", ".join(parts)


@click.command(name="signal")
@click.argument("sig", metavar="SIG")
@click.argument("names", nargs=-1, required=True)
@config_option
@state_dir_option
@click.option("--group", is_flag=True, help="Signal each process's whole process group.")
def signal_command(
    sig: str, names: tuple[str, ...], config: str | None, state_dir: str | None, group: bool
) -> None:
    """Send signal SIG (HUP, USR1, 15...) to the processes NAMES."""
    daemon = connect(config, state_dir)
    payload = {"names": list(names), "signal": sig, "group": group}
    _, body = daemon.request("POST", "/processes/signal", json=payload)
    sent = body.get("signalled", {})
    shown = sig.upper().removeprefix("SIG")
    for name, pid in sent.items():
        if pid is None:
            console().print(f"{name}: not running (no signal sent)", markup=False)
        else:
            console().print(f"{name}: sent SIG{shown} to pid {pid}", markup=False)
    if any(pid is None for pid in sent.values()):
        raise SystemExit(1)


@click.command()
@click.argument("names", nargs=-1)
@config_option
@state_dir_option
def pid(names: tuple[str, ...], config: str | None, state_dir: str | None) -> None:
    """Print the daemon's pid, or the pid of each process of NAMES (one a line).

    A process that is not running is named on stderr (exit status 1), never printed as 0.
    """
    daemon = connect(config, state_dir)
    if not names:
        click.echo(str(daemon.pid))
        return
    _, body = daemon.request("GET", "/status", params={"name": list(names)})
    missing = []
    for p in body.get("processes", []):
        if p.get("pid"):
            click.echo(str(p["pid"]))
        else:
            missing.append(f"{p['name']} ({p['state']})")
    if missing:
        fail(f"not running: {', '.join(missing)}", code=1)


@click.command()
@config_option
@state_dir_option
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    help="Seconds to wait for the daemon to stop its programs and exit.",
)
def shutdown(config: str | None, state_dir: str | None, timeout: float) -> None:
    """Stop the daemon: its programs stop first (dependents first), then it exits."""
    from selfheal._clock import SYSTEM_CLOCK

    daemon = connect(config, state_dir)
    daemon.request("POST", "/shutdown")
    err_console().print(f"... the daemon (pid {daemon.pid}) is stopping its programs", markup=False)
    deadline = SYSTEM_CLOCK.monotonic() + timeout
    while daemon.alive():
        if SYSTEM_CLOCK.monotonic() > deadline:
            fail(f"the daemon (pid {daemon.pid}) is still running after {timeout:g} s", code=1)
        SYSTEM_CLOCK.sleep(0.1)  # the CLI waits for another process: no event to wait on
    console().print(f"shut down: the daemon (pid {daemon.pid}) has exited", markup=False)


@click.command()
@config_option
@state_dir_option
def avail(config: str | None, state_dir: str | None) -> None:
    """List every configured process: in use or available, auto or manual start, priority.

    Programs the config file has but the daemon does not yet (or no longer) are named too:
    ``selfheal reload`` adds or removes them.
    """
    daemon = connect(config, state_dir)
    _, body = daemon.request("GET", "/status")
    processes = body.get("processes", [])
    loaded = {p["program"] for p in processes}
    for p in processes:
        use = "in use" if p["state"] in ("STARTING", "RUNNING", "BACKOFF", "STOPPING") else "avail"
        auto = "auto" if p.get("autostart", True) else "manual"
        console().print(
            f"{p['name']:<32} {use:<9} {auto:<9} {p.get('priority', 999):<5} {p['state']}",
            markup=False,
        )
    location = locate(config, state_dir)
    path = location.config or daemon.info.get("config")
    if not path:
        return
    on_disk, problem = configured_programs(str(path))
    if problem:
        err_console().print(f"note: {problem} (selfheal check {path})", markup=False)
        return
    for name in on_disk:
        if name not in loaded:
            console().print(
                f"{name:<32} {'not loaded':<9} (in {path}: selfheal reload adds it)", markup=False
            )
    for name in sorted(loaded - set(on_disk)):
        console().print(
            f"{name:<32} {'removed':<9} (gone from {path}: selfheal reload stops it)",
            markup=False,
        )


commands: list[click.Command] = [status, start, stop, restart, signal_command, pid, avail, shutdown]
