"""How the control commands find the running daemon and talk to it.

The daemon writes ``<state_dir>/control.json`` (its pid, address and token file). Before it
believes the file, and before it sends the token in ``<state_dir>/control.token``, the CLI
checks that no other user could have written them (`selfheal._safepath`). The state dir
comes from ``--state-dir``, else from the config's ``[control] state_dir`` (``-c``,
default ``./selfheal.toml``), else ``./.selfheal``. The config is only *read* for that key,
never validated: a typo made in the file after the daemon started must not lock the operator
out of it (``run``, ``check`` and ``reload`` are what validate).
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from selfheal._bounds import read_config_bytes
from selfheal._safepath import UnsafePathError, check_dir, open_private
from selfheal.cli._common import fail
from selfheal.errors import ConfigError

__all__ = ["Daemon", "Location", "connect", "find", "locate", "strict_state_dir"]

_CONTROL_HEADER = re.compile(r"^\s*\[\s*control\s*\]\s*(#.*)?$")
_ANY_HEADER = re.compile(r"^\s*\[")


@dataclass(frozen=True, slots=True)
class Location:
    """Where a daemon should be, and what stood in the way of knowing it for sure.

    Attributes:
        state_dir: The state directory to look in.
        log_dir: The log directory the config names, if it names one.
        config: The config file read, if any.
        problem: Why the config could not be read whole (the daemon may still be found).
    """

    state_dir: Path
    log_dir: Path | None = None
    config: Path | None = None
    problem: str = ""


def locate(config: str | None, state_dir: str | None) -> Location:
    """Return where the daemon of `config` (or of `state_dir`) keeps its state.

    `state_dir` wins over the config's; a config given with ``-c`` is still read for its
    ``log_dir`` (and any problem in it is kept to be told).
    """
    path = Path(config) if config is not None else Path("selfheal.toml")
    if config is None and (state_dir is not None or not path.exists()):
        return Location(Path(state_dir if state_dir is not None else ".selfheal"))
    control, problem = _control_table(path)
    base = path.resolve().parent
    sdir = control.get("state_dir")
    ldir = control.get("log_dir")
    if state_dir is not None:
        where = Path(state_dir)
    elif sdir is not None and not (isinstance(sdir, str) and sdir):
        # The one key that says where the daemon is: guessing another place would be worse.
        fail(
            f"{path}: [control] state_dir must be a directory name (got {sdir!r}); or give "
            "--state-dir"
        )
    else:
        where = base / (sdir or ".selfheal")
    return Location(where, base / ldir if isinstance(ldir, str) and ldir else None, path, problem)


def _control_table(path: Path) -> tuple[dict[str, Any], str]:
    """Return the ``[control]`` table of `path`, as well as it can be read, and any problem."""
    try:
        raw = read_config_bytes(path)  # never a FIFO or /dev/zero: no hang, no MemoryError
    except ConfigError as exc:
        return {}, f"cannot read {path}: {exc.issues[0].message}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        return _control_alone(text), f"{path} is not UTF-8 text (TOML files are UTF-8)"
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # A typo elsewhere in the file: read the [control] table on its own.
        return _control_alone(text), f"{path} is not valid TOML ({exc})"
    control = data.get("control")
    return (control if isinstance(control, dict) else {}), ""


def _control_alone(text: str) -> dict[str, Any]:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if _CONTROL_HEADER.match(line):
            body = []
            for rest in lines[i + 1 :]:
                if _ANY_HEADER.match(rest):
                    break
                body.append(rest)
            for item in body:
                try:
                    data = tomllib.loads(item)
                except tomllib.TOMLDecodeError:
                    continue
                if "state_dir" in data or "log_dir" in data:
                    return {k: v for k, v in data.items() if k in ("state_dir", "log_dir")}
    return {}


class Daemon:
    """A running daemon, as its ``control.json`` describes it; `request` talks to it.

    Args:
        location: Where it was found.
        info: The content of its ``control.json``.
    """

    def __init__(self, location: Location, info: dict[str, Any]) -> None:
        self.location = location
        self.info = info
        self.pid: int = info["pid"]

    def __repr__(self) -> str:
        return f"Daemon(pid={self.pid}, state_dir={str(self.location.state_dir)!r})"

    def request(
        self,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout: float | None = 10.0,
        ok: tuple[int, ...] = (),
    ) -> tuple[int, dict[str, Any]]:
        """Send one request; fail with the daemon's error unless it succeeded.

        Args:
            method: ``GET`` or ``POST``.
            path: ``/status``, ``/processes/start``...
            json: The body.
            params: Query parameters.
            timeout: Seconds to wait for the answer (None: no bound).
            ok: Error statuses whose body the caller reads itself (504: timed out).

        Returns:
            The HTTP status and the JSON body.
        """
        import httpx

        from selfheal.web.control import TOKEN_FILE

        headers = {}
        token_file = self.location.state_dir / TOKEN_FILE
        try:
            headers["Authorization"] = "Bearer " + _read_trusted(token_file, secret=True).strip()
        except UnsafePathError as exc:
            fail(f"not sending the token: {exc}")
        except OSError:
            if method != "GET":
                fail(f"cannot read the daemon's token file ({token_file})")
        if self.info.get("socket"):
            client = httpx.Client(
                transport=httpx.HTTPTransport(uds=self.info["socket"]),
                base_url="http://selfheal",
                timeout=timeout,
            )
        else:
            client = httpx.Client(base_url=self.info["url"], timeout=timeout)
        try:
            with client:
                response = client.request(method, path, headers=headers, json=json, params=params)
        except httpx.TransportError as exc:
            fail(
                f"cannot reach the daemon (pid {self.pid}) of {self.location.state_dir}: "
                f"{exc or type(exc).__name__}",
                code=1,
            )
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {"error": response.text}
        if response.status_code >= 400 and response.status_code not in ok:
            fail(str(body.get("error") or f"HTTP {response.status_code}"), code=1)
        return response.status_code, body

    def alive(self) -> bool:
        """Whether the daemon's process is still there (an exited one not yet reaped is not)."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return False
        return stat[stat.rfind(")") + 2 :][:1] != "Z"


def _read_trusted(path: Path, *, secret: bool = False) -> str:
    """Return the text of `path`, a regular file of root or ours that nobody else can write.

    Raises:
        UnsafePathError: If it is a symlink or another user could have written it (or read
            it, when `secret`).
        OSError: If it cannot be read.
    """
    fd = open_private(path, os.O_RDONLY, secret=secret)
    with os.fdopen(fd, "rb") as f:
        return f.read(1 << 20).decode(errors="replace")


def strict_state_dir(config: str | None, state_dir: str | None) -> Path:
    """Return the state dir of `config` / `state_dir`, failing if the config cannot be read.

    For commands that act on the state dir itself (the chaos kill switch), where a guess
    would be worse than an error.
    """
    location = locate(config, state_dir)
    if location.problem and state_dir is None:
        fail(f"{location.problem}; run selfheal check, or give --state-dir")
    return location.state_dir


def connect(config: str | None, state_dir: str | None) -> Daemon:
    """Return the daemon running for `config` / `state_dir`, or fail saying why there is none."""
    location = locate(config, state_dir)
    found = find(location)
    if isinstance(found, Daemon):
        return found
    return fail(found)


def find(location: Location) -> Daemon | str:
    """Return the daemon running at `location`, or why there is none (a sentence)."""
    from selfheal.web.control import CONTROL_FILE

    sdir = location.state_dir
    hint = "start one: selfheal run CONFIG"
    if location.problem:
        hint += f"; note: {location.problem}, run selfheal check"
    try:
        # What it says is trusted (where to send the token) only if no other user could
        # have written it: the state dir and the file are root's or ours, and theirs alone.
        check_dir(sdir)
        info = json.loads(_read_trusted(sdir / CONTROL_FILE))
    except UnsafePathError as exc:
        return f"not trusting the daemon's files: {exc}"
    except (OSError, ValueError):
        return f"no daemon is running with state dir {sdir} ({hint})"
    if not (
        isinstance(info, dict)
        and isinstance(info.get("pid"), int)
        and isinstance(info.get("url") or info.get("socket"), str)
    ):
        return (
            f"no daemon is running with state dir {sdir} ({sdir / 'control.json'} is not one "
            f"a daemon wrote; {hint})"
        )
    daemon = Daemon(location, info)
    if not daemon.alive():
        return (
            f"no daemon is running (pid {daemon.pid} in {sdir / 'control.json'} is gone: it "
            f"was killed; {hint})"
        )
    return daemon
