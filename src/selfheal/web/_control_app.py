"""The control API's routes: what the ``selfheal`` control commands ask the daemon.

Needs the ``server`` extra (starlette).

Every state change needs ``Authorization: Bearer <token>``; ``GET /status`` is open unless
``status_requires_token``. Names are supervisorctl's: ``all``, ``web``, ``worker:1``,
``worker:*``, ``GROUP:*``.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from selfheal._deadline import timeout_after
from selfheal.errors import ReloadError
from selfheal.supervisor import Supervisor

__all__ = ["DEFAULT_START_WAIT", "ReloadFn", "ShutdownFn", "action_bound", "control_app"]

#: A reload callback: returns what changed, or raises `ReloadError`.
#: Applies the config file again; with ``dry_run=True``, only says what would change.
ReloadFn = Callable[[bool], Awaitable[dict[str, Any]]]
#: Asks the daemon to shut down (its programs stop first); returns at once.
ShutdownFn = Callable[[], None]

#: Seconds a start waits for a program without a ``start_timeout`` to be ready.
DEFAULT_START_WAIT = 60.0
#: Seconds added to a program's own bound (``start_timeout``, ``stop_grace``), so that the
#: daemon's verdict (a restart after ``start_timeout``, a SIGKILL after ``stop_grace``) is in.
_MARGIN = 5.0
_ACTIONS = ("start", "stop", "restart", "signal")
_TAIL_LINES = 10
_GOOD = {"start": {"RUNNING"}, "restart": {"RUNNING"}, "stop": {"STOPPED", "EXITED", "FATAL"}}


def control_app(
    supervisor: Supervisor,
    *,
    token: str,
    status_requires_token: bool = False,
    reload: ReloadFn | None = None,
    shutdown: ShutdownFn | None = None,
    action_timeout: float | None = None,
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """Return the control API as an ASGI app.

    Args:
        supervisor: What the API controls.
        token: The bearer token state changes require.
        status_requires_token: Whether ``GET /status`` needs it too.
        reload: Called by ``POST /reload``; without it, reload answers 501.
        shutdown: Called by ``POST /shutdown``; without it, shutdown answers 501.
        action_timeout: The longest an action may take before the API answers 504 (the
            action goes on); None: the programs' own bounds (``start_timeout``,
            ``stop_grace``) plus a margin, or `DEFAULT_START_WAIT`. A request's ``timeout``
            overrides it.
        routes: More routes to serve beside the API (the daemon's health endpoints and
            metrics).

    Returns:
        A Starlette application.
    """
    api = _ControlApi(
        supervisor,
        token=token,
        status_requires_token=status_requires_token,
        reload=reload,
        shutdown=shutdown,
        action_timeout=action_timeout,
    )
    return Starlette(
        routes=[
            Route("/status", api.status, methods=["GET"]),
            Route("/processes/{action}", api.processes, methods=["POST"]),
            # `path`, so that a name with a '/' gets "no program" rather than a bare 404.
            Route("/programs/{name:path}/{action}", api.legacy, methods=["POST"]),
            Route("/reload", api.reload, methods=["POST"]),
            Route("/shutdown", api.shutdown, methods=["POST"]),
            *routes,
        ]
    )


class _ControlApi:
    """The handlers of `control_app`, sharing its supervisor, token and callbacks."""

    def __init__(
        self,
        supervisor: Supervisor,
        *,
        token: str,
        status_requires_token: bool,
        reload: ReloadFn | None,
        shutdown: ShutdownFn | None,
        action_timeout: float | None,
    ) -> None:
        self.supervisor = supervisor
        self._expected = token.encode()
        self._status_requires_token = status_requires_token
        self._reload = reload
        self._shutdown = shutdown
        self._action_timeout = action_timeout

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._expected
        )

    @staticmethod
    def _denied() -> JSONResponse:
        return JSONResponse(
            {"error": "missing or wrong token: send 'Authorization: Bearer <token>'"},
            status_code=401,
        )

    async def status(self, request: Request) -> JSONResponse:
        """``GET /status[?name=N...&tail=L]``."""
        if self._status_requires_token and not self._authorized(request):
            return self._denied()
        names = request.query_params.getlist("name") or None
        try:
            tail = int(request.query_params.get("tail", "0"))
            processes = self.supervisor.status(names, tail=max(0, min(tail, 1000)))
        except ValueError:
            return JSONResponse({"error": "tail must be a number of lines"}, 400)
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0])}, status_code=404)
        return JSONResponse({"pid": os.getpid(), "processes": processes})

    async def processes(self, request: Request) -> JSONResponse:
        """``POST /processes/{action}`` with a JSON body."""
        if not self._authorized(request):
            return self._denied()
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object with 'names'"}, 400)
        return await self._act(request.path_params["action"], body)

    async def legacy(self, request: Request) -> JSONResponse:
        """``POST /programs/{name}/{action}``: one name, the form of earlier versions."""
        if not self._authorized(request):
            return self._denied()
        names = [request.path_params["name"]]
        return await self._act(request.path_params["action"], {"names": names})

    async def _act(self, verb: str, body: dict[str, Any]) -> JSONResponse:
        sup = self.supervisor
        if verb not in _ACTIONS:
            return JSONResponse(
                {"error": f"unknown action {verb!r}; valid: {', '.join(_ACTIONS)}"}, 404
            )
        try:
            request = _ActionRequest.parse(verb, body)
            names = sup.select(request.names)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except KeyError as exc:
            return JSONResponse({"error": str(exc.args[0])}, status_code=404)
        if verb == "signal":
            sent = sup.signal_processes(names, request.signal, group=request.group)
            answer = _answer(sup, verb, list(sent), names)
            answer["signalled"] = sent
            return JSONResponse(answer)
        limit = request.timeout or self._action_timeout or action_bound(sup.status(names), verb)
        run: dict[str, Callable[[], Awaitable[list[str]]]] = {
            "start": lambda: sup.start_processes(names, wait=request.wait),
            "stop": lambda: sup.stop_processes(names),
            "restart": lambda: sup.restart_processes(names, wait=request.wait),
        }
        task = asyncio.ensure_future(run[verb]())
        try:
            # Shielded: a start that takes too long goes on; only the answer stops waiting.
            async with timeout_after(limit, sup.clock, name=verb):
                affected = await asyncio.shield(task)
        except TimeoutError:
            answer = _answer(sup, verb, names, names)
            answer["error"] = f"{verb} still in progress after {limit:g} s"
            answer["timed_out"] = True
            return JSONResponse(answer, status_code=504)
        return JSONResponse(_answer(sup, verb, affected, names))

    async def reload(self, request: Request) -> JSONResponse:
        """``POST /reload`` (``?dry_run=1``: what would change): 400 with the config's problems."""
        if not self._authorized(request):
            return self._denied()
        if self._reload is None:
            return JSONResponse({"error": "this daemon has no config file to reload"}, 501)
        flag = request.query_params.get("dry_run", "0")
        if flag not in ("0", "1", "true", "false"):
            return JSONResponse({"error": f"dry_run: expected 1 or 0, got {flag[:20]!r}"}, 400)
        try:
            result = await self._reload(flag in ("1", "true"))
        except ReloadError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(result)

    async def shutdown(self, request: Request) -> JSONResponse:
        """``POST /shutdown``: answers, then the daemon stops (its programs first)."""
        if not self._authorized(request):
            return self._denied()
        if self._shutdown is None:
            return JSONResponse({"error": "this server cannot shut its daemon down"}, 501)
        # After the answer is sent: the shutdown stops this server too.
        asyncio.get_running_loop().call_soon(self._shutdown)
        return JSONResponse({"pid": os.getpid(), "stopping": True})


class _ActionRequest:
    """The body of ``POST /processes/{action}``, checked."""

    def __init__(
        self, names: list[str], wait: bool, timeout: float | None, sig: int, group: bool
    ) -> None:
        self.names = names
        self.wait = wait
        self.timeout = timeout
        self.signal = sig
        self.group = group

    @classmethod
    def parse(cls, verb: str, body: dict[str, Any]) -> _ActionRequest:
        names = body.get("names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError("'names' must be a non-empty list of names (or [\"all\"])")
        timeout = body.get("timeout")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ValueError(f"'timeout' must be a positive number of seconds (got {timeout!r})")
        sig = 0
        if verb == "signal":
            sig = _signal_number(body.get("signal"))
        return cls(
            names,
            bool(body.get("wait", True)),
            float(timeout) if timeout is not None else None,
            sig,
            bool(body.get("group", False)),
        )


def _signal_number(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return int(signal.Signals(value))
        except ValueError:
            pass
    if isinstance(value, str):
        name = value.upper().removeprefix("SIG")
        if value.isdigit():
            return _signal_number(int(value))
        if hasattr(signal.Signals, f"SIG{name}"):
            return int(signal.Signals[f"SIG{name}"])
    valid = "HUP, INT, QUIT, KILL, USR1, USR2, TERM, CONT, STOP, WINCH... or a number"
    raise ValueError(f"unknown signal {value!r}; valid: {valid}")


def action_bound(processes: list[dict[str, Any]], verb: str) -> float:
    """Return how long `verb` may take for `processes` (entries of ``GET /status``).

    Their own bounds plus a margin: ``start_timeout`` for a start (`DEFAULT_START_WAIT`
    without one), ``stop_grace`` for a stop, both for a restart.
    """
    stop = max((float(e["stop_grace"]) for e in processes), default=0.0) + _MARGIN
    if verb == "stop":
        return stop
    start = max(
        (
            float(e["start_timeout"]) + _MARGIN if e.get("start_timeout") else DEFAULT_START_WAIT
            for e in processes
        ),
        default=DEFAULT_START_WAIT,
    )
    return start + (stop if verb == "restart" else 0.0)


def _answer(
    supervisor: Supervisor, verb: str, affected: list[str], named: list[str]
) -> dict[str, Any]:
    """Return the processes an action touched; the last lines of those it left badly."""
    entries = supervisor.status(affected)
    good = _GOOD.get(verb, set())
    for entry in entries:
        if good and entry["state"] not in good:
            entry["tail"] = supervisor.status([entry["name"]], tail=_TAIL_LINES)[0]["tail"]
    return {
        "action": verb,
        "names": named,
        "also": [n for n in affected if n not in named],
        "processes": entries,
    }
