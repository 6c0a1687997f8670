"""The running daemon's control API from Python: what ``supervisorctl`` does, for scripts.

The daemon writes ``<state_dir>/control.json`` (its pid, address and token file). Before the
client believes the file, and before it sends the token in ``<state_dir>/control.token``, it
checks that no other user could have written them (`selfheal._safepath`). The state dir comes
from `state_dir`, else from the config's ``[control] state_dir`` (default ``./selfheal.toml``),
else ``./.selfheal``. The config is only *read* for that key, never validated: a typo made in
the file after the daemon started must not lock the operator out of it.

    from selfheal.web.client import ControlClient

    daemon = ControlClient.connect(config="selfheal.toml")
    daemon.restart("web")                  # waits until it is RUNNING again
    for p in daemon.status():
        print(p["name"], p["state"], p["pid"])

Every failure is a `selfheal.errors.ControlError` saying why, with the HTTP status when the
daemon answered (`ControlError.status`). The ``selfheal`` commands use this same client.
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
from selfheal._extras import require
from selfheal._safepath import UnsafePathError, check_dir, open_private
from selfheal.errors import ConfigError, ControlError

__all__ = ["CONTROL_FILE", "TOKEN_FILE", "ControlClient", "Location", "find", "locate"]

CONTROL_FILE = "control.json"
TOKEN_FILE = "control.token"  # noqa: S105 - a file name, not a secret

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


def locate(
    config: str | os.PathLike[str] | None, state_dir: str | os.PathLike[str] | None
) -> Location:
    """Return where the daemon of `config` (or of `state_dir`) keeps its state.

    `state_dir` wins over the config's; a config given is still read for its ``log_dir`` (and
    any problem in it is kept to be told).

    Raises:
        ControlError: If the config's ``state_dir`` is not a directory name (guessing
            another place would be worse).
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
        raise ControlError(
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


class ControlClient:
    """A running daemon, as its ``control.json`` describes it; `request` talks to it.

    Get one with `connect` (or `find`). Names are supervisorctl's: ``all``, ``web``,
    ``worker:1``, ``worker:*``, ``GROUP:*``.

    Args:
        location: Where it was found.
        info: The content of its ``control.json``.
    """

    def __init__(self, location: Location, info: dict[str, Any]) -> None:
        self.location = location
        self.info = info
        self.pid: int = info["pid"]

    def __repr__(self) -> str:
        return f"ControlClient(pid={self.pid}, state_dir={str(self.location.state_dir)!r})"

    @classmethod
    def connect(
        cls,
        config: str | os.PathLike[str] | None = None,
        state_dir: str | os.PathLike[str] | None = None,
    ) -> ControlClient:
        """Return the daemon running for `config` / `state_dir` (see the module's text).

        Raises:
            ControlError: Saying why none is found (none runs, its files are not to be
                trusted, the config names no directory).
        """
        require("httpx", feature="ControlClient")
        found = find(locate(config, state_dir))
        if isinstance(found, str):
            raise ControlError(found)
        return found

    # -- what supervisorctl does -----------------------------------------------------------

    def status(self, *names: str, tail: int | None = None) -> list[dict[str, Any]]:
        """Return every process (or those `names` stand for), as ``GET /status`` lists them.

        Args:
            names: Processes, programs or groups; none means all.
            tail: Also return the last `tail` lines of each one's output.
        """
        params: dict[str, Any] = {"name": list(names)}
        if tail is not None:
            params["tail"] = tail
        _, body = self.request("GET", "/status", params=params)
        processes: list[dict[str, Any]] = body.get("processes", [])
        return processes

    def start(self, *names: str, wait: bool = True, timeout: float | None = None) -> dict[str, Any]:
        """Start `names`; with `wait`, return once each is RUNNING or failed to start."""
        return self._act("start", names, wait=wait, timeout=timeout)

    def stop(self, *names: str, wait: bool = True, timeout: float | None = None) -> dict[str, Any]:
        """Stop `names` (what depends on them first); with `wait`, return once they are."""
        return self._act("stop", names, wait=wait, timeout=timeout)

    def restart(
        self, *names: str, wait: bool = True, timeout: float | None = None
    ) -> dict[str, Any]:
        """Restart `names`; with `wait`, return once each is RUNNING again or failed."""
        return self._act("restart", names, wait=wait, timeout=timeout)

    def reload(self, *, dry_run: bool = False, timeout: float | None = None) -> dict[str, Any]:
        """Have the daemon read its config again and apply it (``selfheal reload``).

        With `dry_run`, the daemon only says what would change (``selfheal reread``): programs
        ``added``, ``removed``, ``changed``, ``scaled``, and what needs a daemon restart.
        `timeout` bounds the wait for the answer (None: no bound).
        """
        params = {"dry_run": "1"} if dry_run else None
        _, body = self.request("POST", "/reload", params=params, timeout=timeout)
        return body

    def _act(
        self, verb: str, names: tuple[str, ...], *, wait: bool, timeout: float | None
    ) -> dict[str, Any]:
        from selfheal.web.control import action_bound

        if not names:
            raise ValueError(f"{verb}: name the processes (or 'all'), as supervisorctl wants")
        chosen = list(names)
        if timeout is None:
            timeout = action_bound(self.status(*chosen), verb)
        payload = {"names": chosen, "wait": wait, "timeout": timeout}
        _, body = self.request("POST", f"/processes/{verb}", json=payload, timeout=timeout + 15)
        return body

    # -- the wire --------------------------------------------------------------------------

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
        """Send one request; raise the daemon's error unless it succeeded.

        Args:
            method: ``GET`` or ``POST``.
            path: ``/status``, ``/processes/start``...
            json: The body.
            params: Query parameters.
            timeout: Seconds to wait for the answer (None: no bound).
            ok: Error statuses whose body the caller reads itself (504: timed out).

        Returns:
            The HTTP status and the JSON body.

        Raises:
            ControlError: If the token cannot be sent, the daemon cannot be reached, or it
                answered with an error (`ControlError.status`).
        """
        require("httpx", feature="ControlClient")
        import httpx

        headers = {}
        token_file = self.location.state_dir / TOKEN_FILE
        try:
            headers["Authorization"] = "Bearer " + _read_trusted(token_file, secret=True).strip()
        except UnsafePathError as exc:
            raise ControlError(f"not sending the token: {exc}") from exc
        except OSError as exc:
            if method != "GET":
                raise ControlError(f"cannot read the daemon's token file ({token_file})") from exc
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
            raise ControlError(
                f"cannot reach the daemon (pid {self.pid}) of {self.location.state_dir}: "
                f"{exc or type(exc).__name__}"
            ) from exc
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {"error": response.text}
        status = response.status_code
        if status >= 400 and status not in ok:
            raise ControlError(str(body.get("error") or f"HTTP {status}"), status=status)
        return status, body

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


def find(location: Location) -> ControlClient | str:
    """Return the daemon running at `location`, or why there is none (a sentence)."""
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
            f"no daemon is running with state dir {sdir} ({sdir / CONTROL_FILE} is not one "
            f"a daemon wrote; {hint})"
        )
    daemon = ControlClient(location, info)
    if not daemon.alive():
        return (
            f"no daemon is running (pid {daemon.pid} in {sdir / CONTROL_FILE} is gone: it "
            f"was killed; {hint})"
        )
    return daemon
