"""The control API of the daemon: status, start, stop, restart, reload (needs ``server`` extra).

Starlette, served by uvicorn on 127.0.0.1 (or a unix socket). Anything that changes state
needs ``Authorization: Bearer <token>``; ``GET /status`` is open unless
``status_requires_token``. The server is started without uvicorn's main loop, whose 100 ms tick
would wake the daemon ten times a second: with no request, the control API costs no wake-ups.

Endpoints:
    ``GET /status``: ``{"pid", "processes": [...]}``.
    ``POST /programs/{name}/start`` (also ``stop``, ``restart``): waits for the action
    (bounded by ``action_timeout``), answers with the program's processes.
    ``POST /reload``: re-reads the config; restarts only programs whose config changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import os
import secrets
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from selfheal.errors import ReloadError
from selfheal.supervisor import Supervisor

__all__ = ["ControlServer", "control_app", "read_control_file"]

logger = logging.getLogger("selfheal.web.control")

#: A reload callback: returns what changed, or raises `ReloadError`.
ReloadFn = Callable[[], Awaitable[dict[str, Any]]]

CONTROL_FILE = "control.json"
TOKEN_FILE = "control.token"  # noqa: S105 - a file name, not a secret


def control_app(
    supervisor: Supervisor,
    *,
    token: str,
    status_requires_token: bool = False,
    reload: ReloadFn | None = None,
    action_timeout: float = 60.0,
) -> Starlette:
    """Return the control API as an ASGI app.

    Args:
        supervisor: What the API controls.
        token: The bearer token state changes require.
        status_requires_token: Whether ``GET /status`` needs it too.
        reload: Called by ``POST /reload``; without it, reload answers 501.
        action_timeout: Seconds an action may take before the API answers 504 (the action
            goes on).

    Returns:
        A Starlette application.
    """
    expected = token.encode()

    def authorized(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)

    def denied() -> JSONResponse:
        return JSONResponse(
            {"error": "missing or wrong token: send 'Authorization: Bearer <token>'"},
            status_code=401,
        )

    async def status(request: Request) -> JSONResponse:
        if status_requires_token and not authorized(request):
            return denied()
        return JSONResponse({"pid": os.getpid(), "processes": supervisor.status()})

    async def action(request: Request) -> JSONResponse:
        if not authorized(request):
            return denied()
        name = request.path_params["name"]
        verb = request.path_params["action"]
        run: dict[str, Callable[[str], Awaitable[None]]] = {
            "start": supervisor.start_program,
            "stop": supervisor.stop_program,
            "restart": supervisor.restart_program,
        }
        if verb not in run:
            return JSONResponse(
                {"error": f"unknown action {verb!r}; valid: start, stop, restart"}, 404
            )
        try:
            supervisor.instance_names(name)
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0])}, status_code=404)
        task = asyncio.ensure_future(run[verb](name))
        done, _ = await asyncio.wait({task}, timeout=action_timeout)
        timed_out = not done
        if done:
            task.result()
        processes = [p for p in supervisor.status() if p["program"] == name or p["name"] == name]
        body = {"name": name, "action": verb, "processes": processes}
        if timed_out:
            body["error"] = f"{verb} still in progress after {action_timeout:g} s"
            return JSONResponse(body, status_code=504)
        return JSONResponse(body)

    async def do_reload(request: Request) -> JSONResponse:
        if not authorized(request):
            return denied()
        if reload is None:
            return JSONResponse({"error": "this daemon has no config file to reload"}, 501)
        try:
            result = await reload()
        except ReloadError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result)

    return Starlette(
        routes=[
            Route("/status", status, methods=["GET"]),
            # `path`, so that a name with a '/' gets "no program" rather than a bare 404.
            Route("/programs/{name:path}/{action}", action, methods=["POST"]),
            Route("/reload", do_reload, methods=["POST"]),
        ]
    )


class ControlServer:
    """Serves `control_app` and tells the CLI where: a `Component` of the daemon.

    On start it writes ``<state_dir>/control.json`` (address, pid, token file, log dir) and
    ``<state_dir>/control.token`` (mode 0600; a fresh random token unless one is given).

    Args:
        supervisor: What the API controls.
        state_dir: Where the control and token files go.
        host: TCP address (ignored with `socket_path`).
        port: TCP port; 0 picks a free one.
        socket_path: Serve on this unix socket (mode 0600) instead of TCP.
        token: The token; None generates one per start.
        status_requires_token: Whether ``GET /status`` needs the token.
        reload: The reload callback.
        extra: More fields for ``control.json`` (config path, log dir...).
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
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.supervisor = supervisor
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.socket_path = Path(socket_path) if socket_path is not None else None
        self._token = token
        self._status_requires_token = status_requires_token
        self._reload = reload
        self._extra = dict(extra or {})
        self._server: Any = None
        self._sock: socket.socket | None = None
        self.url: str | None = None

    def __repr__(self) -> str:
        where = self.socket_path or f"{self.host}:{self.port}"
        return f"ControlServer({where})"

    async def start(self) -> None:
        """Bind, start serving, write the control and token files."""
        import uvicorn

        token = self._token or secrets.token_urlsafe(32)
        app = control_app(
            self.supervisor,
            token=token,
            status_requires_token=self._status_requires_token,
            reload=self._reload,
        )
        sock = self._bind()
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            date_header=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        config.load()
        server = uvicorn.Server(config)
        server.lifespan = config.lifespan_class(config)
        await server.startup(sockets=[sock])
        # Sets the default headers once; uvicorn's main loop (a 100 ms tick) is not run.
        await server.on_tick(0)
        self._server, self._sock = server, sock
        self.state_dir.mkdir(parents=True, exist_ok=True)
        token_path = self.state_dir / TOKEN_FILE
        fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token)
        os.chmod(token_path, 0o600)
        info = {
            "pid": os.getpid(),
            "url": self.url,
            "socket": str(self.socket_path) if self.socket_path else None,
            "token_file": str(token_path.resolve()),
            **self._extra,
        }
        tmp = self.state_dir / (CONTROL_FILE + ".tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(self.state_dir / CONTROL_FILE)

    def _bind(self) -> socket.socket:
        if self.socket_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)
            try:
                sock.bind(str(self.socket_path))
            finally:
                os.umask(old)
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
        server.should_exit = True
        await server.shutdown()
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
