"""One line puts the health endpoints into a FastAPI or Starlette app: `install`.

``selfheal.web.install(app, monitor)`` adds ``/livez``, ``/readyz``, ``/healthz`` (each with
``/<check>``) and ``/metrics`` to the app's routes and runs the monitor inside the app's own
lifespan, which servers do run (unlike the lifespan of a mounted sub-app). Needs the
``server`` extra (starlette; FastAPI brings it).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Unpack

from starlette.applications import Starlette
from starlette.routing import Mount

from selfheal.health import HealthMonitor
from selfheal.web.health import _guarded_routes
from selfheal.web.lifespan import MonitorGuard, health_lifespan
from selfheal.web.options import EndpointOptions

__all__ = ["install"]


def install(
    app: Starlette,
    monitor: HealthMonitor,
    *,
    prefix: str = "/",
    thread: bool = False,
    drain_seconds: float | None = None,
    **options: Unpack[EndpointOptions],
) -> None:
    """Serve `monitor`'s health endpoints from `app` and run the monitor with the app.

    The app's lifespan (its own, if it has one) is wrapped: the app's startup runs first,
    then the monitor starts (unless it already runs), so checks find what the startup opened;
    on shutdown the monitor stops before the app's own shutdown closes it. Call it before
    the server starts. If the server runs no lifespan at all, the first request to an
    endpoint starts the monitor instead. Routes the app already has take precedence.

    Args:
        app: A FastAPI or Starlette application.
        monitor: Whose cached results to serve.
        prefix: Where the endpoints go: ``"/"`` (default: ``/livez``...) or a path such as
            ``"/health"`` (``/health/livez``...).
        thread: Run the monitor on an event loop in a daemon thread of its own instead of the
            app's loop (needed for an `event_loop_lag_check` of the app's loop).
        drain_seconds: If given, SIGTERM fails readiness for this many seconds before the
            server shuts down (main thread only; see `HealthMonitor.install_signal_handlers`).
        **options: How the endpoints answer: ``token``, ``show_details``, ``metrics``,
            ``service_id``, ``description``, ``version``, ``release_id``, as for
            `selfheal.web.health_app` (see `EndpointOptions`).

    Raises:
        ValueError: `app` is no Starlette application, `prefix` is no absolute path, or an
            option has a bad value.
        TypeError: An option that does not exist.
    """
    if not isinstance(app, Starlette):
        raise ValueError(
            "install: app must be a FastAPI or Starlette application, got "
            f"{type(app).__name__}; for another ASGI framework, serve "
            "selfheal.web.health_app(monitor) beside it"
        )
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ValueError(f"install: prefix must be a path starting with '/', got {prefix!r}")
    guard = MonitorGuard(monitor, manage=True, thread=thread, where="install")
    routes = _guarded_routes(monitor, guard, options, where="install")
    path = prefix.rstrip("/")
    if path:
        app.router.routes.append(Mount(path, routes=routes))
    else:
        app.router.routes.extend(routes)

    apps_lifespan = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[Any]:
        async with apps_lifespan(app) as state:
            guard.lifespan_ran()
            async with health_lifespan(monitor, thread=thread, drain_seconds=drain_seconds):
                yield state  # the app's lifespan state (``yield {...}``) goes on to requests

    app.router.lifespan_context = lifespan
