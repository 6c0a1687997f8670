"""The control API of the daemon and how the CLI finds it (needs the ``server`` extra).

Starlette, served by uvicorn on 127.0.0.1 (or a unix socket). Anything that changes state
needs ``Authorization: Bearer <token>``; ``GET /status`` is open unless
``status_requires_token``, or the API listens on an address other machines may reach (not
loopback), which is also logged as a warning at start. The server is started without
uvicorn's main loop, whose 100 ms tick would wake the daemon ten times a second: with no
request, the control API costs no wake-ups.

Endpoints (names as supervisorctl takes them: ``all``, ``web``, ``worker:1``, ``worker:*``,
``GROUP:*``):
    ``GET /status[?name=N&tail=L]``: ``{"pid", "processes": [...]}``.
    ``POST /processes/{start|stop|restart|signal}`` with ``{"names": [...], "wait", "timeout",
    "signal", "group"}``: waits for the action (bounded), answers with the processes acted
    on, ``also`` (dependents stopped or restarted with them) and the last lines of output
    of any left in a bad state; 504 with the same body when the bound is reached.
    ``POST /programs/{name}/{action}``: the same for one name (earlier versions' form).
    ``POST /reload``: re-reads the config; restarts only programs whose config changed.
    ``POST /shutdown``: stops the daemon (its programs first).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from selfheal._extras import require

require("starlette", "uvicorn", feature="selfheal.web.control")

from starlette.routing import BaseRoute  # noqa: E402 - after the check of the extra

from selfheal._asgi import ServerLimits, start_asgi_server, stop_asgi_server  # noqa: E402
from selfheal._bounds import is_loopback_host  # noqa: E402
from selfheal._clock import SYSTEM_CLOCK, Clock  # noqa: E402
from selfheal._safepath import bind_private, open_private, safe_dir  # noqa: E402
from selfheal.errors import ReloadError  # noqa: E402
from selfheal.supervisor import Supervisor  # noqa: E402
from selfheal.web._control_app import (  # noqa: E402
    ReloadFn,
    ShutdownFn,
    action_bound,
    control_app,
)
from selfheal.web.client import CONTROL_FILE, TOKEN_FILE  # noqa: E402

#: More routes served beside the API (health endpoints, metrics), given the API's token and
#: whether reading needs it too (as ``GET /status`` does then).
RoutesFn = Callable[[str, bool], Sequence[BaseRoute]]

__all__ = [
    "ControlServer",
    "ReloadError",
    "action_bound",
    "control_app",
    "read_control_file",
]

logger = logging.getLogger("selfheal.web.control")


def _terminate_self() -> None:
    # The daemon's SIGTERM handler shuts it down cleanly, exactly as `kill PID` would.
    os.kill(os.getpid(), signal.SIGTERM)


class ControlServer:
    """Serves `control_app` and tells the CLI where: a `Component` of the daemon.

    On start it writes ``<state_dir>/control.json`` (address, pid, token file, log dir) and
    ``<state_dir>/control.token`` (mode 0600; a fresh random token unless one is given), as
    new files in a directory only root or its user can change (else `UnsafePathError`).

    Args:
        supervisor: What the API controls.
        state_dir: Where the control and token files go.
        host: TCP address (ignored with `socket_path`).
        port: TCP port; 0 picks a free one.
        socket_path: Serve on this unix socket (mode 0600) instead of TCP.
        token: The token; None generates one per start.
        status_requires_token: Whether ``GET /status`` needs the token (it always does on
            an address that is not loopback).
        reload: The reload callback.
        shutdown: What ``POST /shutdown`` calls (default: SIGTERM to this process, which the
            daemon takes as a clean shutdown).
        extra: More fields for ``control.json`` (config path, log dir...).
        routes: Given the token, returns more routes to serve (see `control_app`).
        max_connections: Connections kept open at once; past it a new one replaces the one
            idle the longest. A connection that sends no whole request within 10 s is
            closed, and request headers are limited to 16 KiB: idle or slow clients cannot
            take the descriptors the daemon needs to restart its programs.
        clock: Times the request read timeout.
    """

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        state_dir: str | os.PathLike[str],
        host: str = "127.0.0.1",
        port: int = 0,
        socket_path: str | os.PathLike[str] | None = None,
        token: str | None = None,
        status_requires_token: bool = False,
        reload: ReloadFn | None = None,
        shutdown: ShutdownFn | None = _terminate_self,
        extra: dict[str, Any] | None = None,
        routes: RoutesFn | None = None,
        max_connections: int = 64,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.supervisor = supervisor
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.socket_path = Path(socket_path) if socket_path is not None else None
        self._token = token
        self._status_requires_token = status_requires_token
        self._reload = reload
        self._shutdown = shutdown
        self._routes = routes
        self._extra = dict(extra or {})
        self._limits = ServerLimits(max_connections=max_connections)
        self._clock = clock
        self._server: Any = None
        self._sock: socket.socket | None = None
        self.url: str | None = None

    def __repr__(self) -> str:
        where = self.socket_path or f"{self.host}:{self.port}"
        return f"ControlServer({where})"

    async def start(self) -> None:
        """Bind, start serving, write the control and token files.

        Raises:
            UnsafePathError: If another user could subvert the state directory.
            OSError: If the address cannot be bound.
        """
        state_dir = safe_dir(self.state_dir, 0o700)
        token = self._token or secrets.token_urlsafe(32)
        # Reachable from other machines: nothing about the programs is shown without the token.
        exposed = self.socket_path is None and not is_loopback_host(self.host)
        private = self._status_requires_token or exposed
        app = control_app(
            self.supervisor,
            token=token,
            status_requires_token=private,
            reload=self._reload,
            shutdown=self._shutdown,
            routes=self._routes(token, private) if self._routes is not None else (),
        )
        sock = self._bind()
        # uvicorn's main loop (a 100 ms tick) is not run: an idle daemon wakes for nothing.
        server = await start_asgi_server(
            app, sock, limits=self._limits, clock=self._clock, name="control API"
        )
        self._server, self._sock = server, sock
        # New files (0600, 0644) in the checked directory, never through a symlink.
        token_path = state_dir / TOKEN_FILE
        with os.fdopen(open_private(token_path, os.O_WRONLY, 0o600, fresh=True), "w") as f:
            f.write(token)
        info = {
            "pid": os.getpid(),
            "url": self.url,
            "socket": str(self.socket_path) if self.socket_path else None,
            "token_file": str(token_path),
            **self._extra,
        }
        tmp = state_dir / (CONTROL_FILE + ".tmp")
        with os.fdopen(open_private(tmp, os.O_WRONLY, 0o644, fresh=True), "w") as f:
            f.write(json.dumps(info, indent=2))
        os.replace(tmp, state_dir / CONTROL_FILE)
        logger.debug("control API on %s", self.address)
        if exposed:
            logger.warning(
                "the control API listens on %s, which is not a loopback address: other "
                "machines may reach it (every request, GET /status too, needs the token); "
                "bind 127.0.0.1 or use a socket unless they must",
                self.address,
            )

    @property
    def address(self) -> str:
        """Where the API listens: its URL, or ``unix:PATH`` (empty before `start`)."""
        if self.socket_path is not None:
            return f"unix:{self.socket_path}"
        return self.url or ""

    def _bind(self) -> socket.socket:
        if self.socket_path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            bind_private(sock, self.socket_path)
            self.url = None
        else:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            port = sock.getsockname()[1]
            host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
            self.url = f"http://{host}:{port}"
        sock.listen(64)
        sock.setblocking(False)
        return sock

    async def stop(self) -> None:
        """Stop serving, remove the control and token files; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        for name in (CONTROL_FILE, TOKEN_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / name).unlink()
        await stop_asgi_server(server)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()


def read_control_file(state_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return what a running daemon wrote in ``<state_dir>/control.json``.

    Raises:
        FileNotFoundError: If no daemon runs with that state dir.
    """
    data: dict[str, Any] = json.loads((Path(state_dir) / CONTROL_FILE).read_text())
    return data
