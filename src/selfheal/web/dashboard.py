"""The dashboard: everything selfheal watches and does, live, in one page (``server`` extra).

No front-end build step: one HTML page and one script (``web/dashboard_static/``) render a
JSON snapshot that the server pushes over server-sent events (``GET api/stream``) whenever an
event is published on the bus (at most every `min_interval` seconds, and at least every
`heartbeat` seconds so ages stay current). ``GET api/snapshot`` serves the same snapshot once.

Buttons change state and need the control token (``Authorization: Bearer``, compared in
constant time): ``POST api/programs/{name}/restart`` and ``.../stop``, ``POST api/chaos/stop``.
Without a configured token they are refused. The snapshot is redacted like every other
output, so passwords in URLs and tokens never reach the page.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from typing import Any, Protocol, runtime_checkable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from selfheal._auth import bearer_matches
from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._deadline import timeout_after
from selfheal._json import finite
from selfheal._redact import redact_value
from selfheal.events import Event, EventBus
from selfheal.web._snapshot import ComponentsSnapshot

__all__ = ["ComponentsSnapshot", "DashboardActions", "DashboardSource", "dashboard_app"]


@runtime_checkable
class DashboardSource(Protocol):
    """What the dashboard shows: a JSON-ready snapshot of the daemon or the app."""

    def snapshot(self) -> dict[str, Any]:
        """Return programs, checks, synthetic, breakers, features, incidents and chaos."""
        ...


@runtime_checkable
class DashboardActions(Protocol):
    """What the dashboard's buttons do (each needs the token)."""

    async def restart_program(self, name: str) -> None:
        """Restart program `name` (KeyError if unknown)."""
        ...

    async def stop_program(self, name: str) -> None:
        """Stop program `name` (KeyError if unknown)."""
        ...

    async def stop_chaos(self) -> None:
        """Roll back every active fault and switch chaos off (the kill switch)."""
        ...


def dashboard_app(
    source: DashboardSource,
    *,
    bus: EventBus | None = None,
    token: str | None = None,
    actions: DashboardActions | None = None,
    read_requires_token: bool = False,
    min_interval: float = 0.1,
    heartbeat: float = 2.0,
    clock: Clock = SYSTEM_CLOCK,
) -> Starlette:
    """Return the dashboard as an ASGI app (mount it anywhere; its URLs are relative).

    Args:
        source: Gives the snapshot.
        bus: Whose events trigger a fresh snapshot on every open page; without one, pages
            refresh every `heartbeat` seconds.
        token: The control token the buttons need; None refuses every button.
        actions: What the buttons do; None answers them 501.
        read_requires_token: Whether the snapshot and its stream need the token too (a
            daemon whose API other machines may reach); the page asks for it.
        min_interval: Least seconds between two snapshots pushed to a page.
        heartbeat: Most seconds between two snapshots pushed to a page.
        clock: What those two are measured on.

    Returns:
        A Starlette application.
    """
    # Each open page's wake-up flag with its loop: events are published from any thread.
    listeners: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}

    def changed(event: Event) -> None:
        for flag, loop in list(listeners.items()):
            with contextlib.suppress(RuntimeError):  # that page's loop is closing
                loop.call_soon_threadsafe(flag.set)

    if bus is not None:
        bus.subscribe("*", changed)

    def snapshot() -> dict[str, Any]:
        # finite: a check's observed NaN would make the whole snapshot unencodable.
        return dict(finite(redact_value(source.snapshot())))

    def static(name: str, media: str) -> Callable[[Request], Awaitable[Response]]:
        body = resources.files("selfheal.web").joinpath("dashboard_static", name).read_bytes()

        async def endpoint(request: Request) -> Response:
            return Response(body, media_type=media, headers={"Cache-Control": "no-store"})

        return endpoint

    def refused(request: Request, what: str) -> JSONResponse | None:
        """Return the answer refusing `request`, or None if it may go on."""
        if token is None:
            return JSONResponse(
                {"error": f"{what} is disabled: the daemon has no control token"}, 403
            )
        if not bearer_matches(request.headers.get("authorization"), token):
            return JSONResponse(
                {"error": "missing or wrong token: enter the control token first"}, 401
            )
        return None

    async def get_snapshot(request: Request) -> JSONResponse:
        if read_requires_token and (refusal := refused(request, "reading")) is not None:
            return refusal
        return JSONResponse(snapshot())

    async def stream(request: Request) -> Response:
        if read_requires_token and (refusal := refused(request, "reading")) is not None:
            return refusal
        flag = asyncio.Event()

        async def events() -> AsyncIterator[str]:
            listeners[flag] = asyncio.get_running_loop()
            try:
                while True:
                    flag.clear()
                    data = json.dumps(snapshot(), allow_nan=False, default=str)
                    yield f"event: snapshot\ndata: {data}\n\n"
                    await clock.asleep(min_interval)
                    with contextlib.suppress(TimeoutError):
                        async with timeout_after(heartbeat, clock, name="dashboard heartbeat"):
                            await flag.wait()
            finally:
                listeners.pop(flag, None)

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    def guarded(
        act: Callable[[DashboardActions, Request], Awaitable[None]], what: str
    ) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def endpoint(request: Request) -> JSONResponse:
            if (refusal := refused(request, what)) is not None:
                return refusal
            if actions is None:
                return JSONResponse({"error": f"{what} is not available here"}, 501)
            try:
                await act(actions, request)
            except KeyError as exc:
                return JSONResponse({"error": f"unknown: {exc.args[0]}"}, 404)
            return JSONResponse({"ok": True, "action": what})

        return endpoint

    async def restart(actions: DashboardActions, request: Request) -> None:
        await actions.restart_program(request.path_params["name"])

    async def stop(actions: DashboardActions, request: Request) -> None:
        await actions.stop_program(request.path_params["name"])

    async def chaos_stop(actions: DashboardActions, request: Request) -> None:
        await actions.stop_chaos()

    return Starlette(
        routes=[
            Route("/", static("index.html", "text/html; charset=utf-8")),
            Route("/dashboard.js", static("dashboard.js", "text/javascript; charset=utf-8")),
            Route("/api/snapshot", get_snapshot),
            Route("/api/stream", stream),
            Route("/api/programs/{name}/restart", guarded(restart, "restart"), methods=["POST"]),
            Route("/api/programs/{name}/stop", guarded(stop, "stop"), methods=["POST"]),
            Route("/api/chaos/stop", guarded(chaos_stop, "chaos stop"), methods=["POST"]),
        ]
    )
