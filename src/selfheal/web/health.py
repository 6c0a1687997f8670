"""`/livez`, `/readyz`, `/healthz` (and `/<probe>/<check>`, `/metrics`) as a Starlette app.

Every answer comes from the monitor's cached background results: a flood of probes costs
microseconds each and never reaches a dependency. Needs the ``server`` extra (starlette).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from selfheal.health import HealthMonitor, Probe
from selfheal.web._render import Renderer, ShowDetails
from selfheal.web.lifespan import MonitorGuard, health_lifespan
from selfheal.web.options import EndpointOptions, http_options

__all__ = ["health_app", "health_routes"]


def health_routes(
    monitor: HealthMonitor,
    *,
    token: str | None = None,
    show_details: ShowDetails = "when_authorized",
    metrics: bool = True,
    service_id: str | None = None,
    description: str | None = None,
    version: str | None = None,
    release_id: str | None = None,
) -> list[BaseRoute]:
    """Return the health routes, to add to an existing Starlette or FastAPI app.

    The routes do not start the monitor: start it in the app's lifespan (or use
    `selfheal.web.install`, which adds these routes and does that). A request finding it not
    running with checks that never had a result logs a warning.

    Args:
        monitor: Whose cached results to serve.
        token: Bearer token that unlocks details (check output, observed values); statuses
            are shown to everyone.
        show_details: ``"when_authorized"`` (default), ``"never"`` or ``"always"``.
        metrics: Whether to serve ``/metrics`` (Prometheus text; needs prometheus-client).
        service_id: The health+json ``serviceId``.
        description: The health+json ``description``.
        version: The health+json ``version``.
        release_id: The health+json ``releaseId``.

    Returns:
        Routes for ``/livez``, ``/readyz``, ``/healthz``, each also with ``/<check>``, and
        ``/metrics``.
    """
    guard = MonitorGuard(monitor, manage=False, where="health_routes")
    options = EndpointOptions(
        token=token,
        show_details=show_details,
        metrics=metrics,
        service_id=service_id,
        description=description,
        version=version,
        release_id=release_id,
    )
    return _guarded_routes(monitor, guard, options, where="health_routes")


def _guarded_routes(
    monitor: HealthMonitor, guard: MonitorGuard, options: EndpointOptions, *, where: str
) -> list[BaseRoute]:
    """Return the health routes, each consulting `guard` before it answers.

    Args:
        monitor: Whose cached results to serve.
        guard: Starts the monitor (or warns) if nothing else did.
        options: How the endpoints answer.
        where: Names the caller in error messages.

    Returns:
        The routes of `health_routes`.
    """
    http, metrics = http_options(options, where=where)
    render = Renderer(monitor, http)
    routes: list[BaseRoute] = []
    for probe in Probe:
        endpoint = _ProbeEndpoint(probe, render, guard)
        routes.append(Route(f"/{probe.value}", endpoint, methods=["GET", "HEAD"]))
        routes.append(Route(f"/{probe.value}/{{check}}", endpoint, methods=["GET", "HEAD"]))
    if metrics:
        from selfheal.web.metrics import CONTENT_TYPE, HealthMetrics

        collected = HealthMetrics.of(monitor)

        async def metrics_endpoint(request: Request) -> Response:
            await guard.ensure()
            return Response(collected.render(), media_type=CONTENT_TYPE)

        routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
    return routes


class _ProbeEndpoint:
    """A raw ASGI endpoint: no Request or Response objects on the probes' hot path."""

    def __init__(self, probe: Probe, render: Renderer, guard: MonitorGuard) -> None:
        self.probe = probe
        self.render = render
        self.guard = guard
        self.__name__ = probe.value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.guard.settled:
            await self.guard.ensure()
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        raw_query = scope.get("query_string", b"")
        query = parse_qs(raw_query.decode("latin-1"), keep_blank_values=True) if raw_query else {}
        answer = self.render(
            self.probe,
            check=scope.get("path_params", {}).get("check"),
            query=query,
            authorization=authorization,
        )
        headers = [
            (b"content-type", answer.content_type.encode()),
            (b"content-length", str(len(answer.body)).encode()),
            *((name.encode(), value.encode()) for name, value in answer.headers),
        ]
        await send(
            {"type": "http.response.start", "status": answer.status_code, "headers": headers}
        )
        body = b"" if scope["method"] == "HEAD" else answer.body
        await send({"type": "http.response.body", "body": body})


def health_app(
    monitor: HealthMonitor,
    *,
    token: str | None = None,
    show_details: ShowDetails = "when_authorized",
    metrics: bool = True,
    manage_monitor: bool = True,
    drain_seconds: float | None = None,
    service_id: str | None = None,
    description: str | None = None,
    version: str | None = None,
    release_id: str | None = None,
) -> Starlette:
    """Return an ASGI app serving the monitor's health endpoints.

    ``/livez`` (liveness checks), ``/readyz`` (all checks; fails while draining), ``/healthz``
    (all checks), ``/<probe>/<check>`` for one check, ``?verbose`` for the Kubernetes text
    form, ``?exclude=<check>`` (repeatable) to leave checks out, and ``/metrics``. 200 for
    pass and warn, 503 for fail.

    Args:
        monitor: Whose cached results to serve.
        token: Bearer token that unlocks details; statuses are shown to everyone.
        show_details: ``"when_authorized"`` (default), ``"never"`` or ``"always"``.
        metrics: Whether to serve ``/metrics``.
        manage_monitor: Whether the app starts the monitor (if it is not running yet): its
            lifespan starts and stops it; where no lifespan runs (an app mounted with
            ``parent.mount("/health", health_app(monitor))``), the first request starts it on
            the server's loop, where it runs until that loop ends. With False the caller
            starts it (see `health_lifespan`).
        drain_seconds: If given, the lifespan installs a SIGTERM handler that fails
            readiness for this many seconds before the server shuts down (main thread only;
            see `HealthMonitor.install_signal_handlers`).
        service_id: The health+json ``serviceId``.
        description: The health+json ``description``.
        version: The health+json ``version``.
        release_id: The health+json ``releaseId``.

    Returns:
        A Starlette application.
    """
    guard = MonitorGuard(monitor, manage=manage_monitor, where="health_app")
    options = EndpointOptions(
        token=token,
        show_details=show_details,
        metrics=metrics,
        service_id=service_id,
        description=description,
        version=version,
        release_id=release_id,
    )
    routes = _guarded_routes(monitor, guard, options, where="health_app")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        guard.lifespan_ran()
        async with health_lifespan(monitor, drain_seconds=drain_seconds, start=manage_monitor):
            yield

    return Starlette(routes=routes, lifespan=lifespan)
