"""How the control commands find the running daemon and talk to it: `selfheal.web.client`.

That client raises `ControlError`; here each error becomes the CLI's one line on stderr and
its exit status: 2 when no daemon is found (or the config names no state dir), 1 for a
request that could not be carried out (the token not to be sent, the daemon unreachable, or
its refusal).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from selfheal.cli._common import fail
from selfheal.errors import ControlError
from selfheal.web.client import ControlClient, Location
from selfheal.web.client import find as _find
from selfheal.web.client import locate as _locate

__all__ = ["Daemon", "Location", "connect", "find", "locate", "strict_state_dir"]


class Daemon(ControlClient):
    """The client, failing the command with the daemon's error instead of raising it."""

    def request(self, method: str, path: str, **options: Any) -> tuple[int, dict[str, Any]]:
        """Send one request (see `ControlClient.request`); fail the command if it failed."""
        try:
            return super().request(method, path, **options)
        except ControlError as exc:
            fail(str(exc), code=1)


def locate(config: str | None, state_dir: str | None) -> Location:
    """Return where the daemon of `config` / `state_dir` keeps its state (see the client)."""
    try:
        return _locate(config, state_dir)
    except ControlError as exc:
        fail(str(exc))


def find(location: Location) -> Daemon | str:
    """Return the daemon running at `location`, or why there is none (a sentence)."""
    found = _find(location)
    return found if isinstance(found, str) else Daemon(found.location, found.info)


def connect(config: str | None, state_dir: str | None) -> Daemon:
    """Return the daemon running for `config` / `state_dir`, or fail saying why there is none."""
    found = find(locate(config, state_dir))
    if isinstance(found, Daemon):
        return found
    return fail(found)


def strict_state_dir(config: str | None, state_dir: str | None) -> Path:
    """Return the state dir of `config` / `state_dir`, failing if the config cannot be read.

    For commands that act on the state dir itself (the chaos kill switch), where a guess
    would be worse than an error.
    """
    location = locate(config, state_dir)
    if location.problem and state_dir is None:
        fail(f"{location.problem}; run selfheal check, or give --state-dir")
    return Path(os.fspath(location.state_dir))
