"""The health endpoints as a plain WSGI app, for Flask, Django and other sync servers.

Standard library only (plus prometheus-client if ``/metrics`` is served); no Flask needed.
Answers are the same bytes as the ASGI app's. The monitor runs in its own daemon thread
(`HealthMonitor.start_monitoring`), stopped at interpreter exit, so a worker answering a
probe only reads cached results. In Flask, `selfheal.web.flask.SelfHeal` puts this app in
front of the Flask app; any WSGI router can mount it, e.g. werkzeug's::

    from werkzeug.middleware.dispatcher import DispatcherMiddleware
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {"/health": health_wsgi_app(monitor)})

which serves ``/health/livez``, ``/health/readyz`` and so on.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable, Iterable
from typing import Any, TypeAlias
from urllib.parse import parse_qs

from selfheal.health import HealthMonitor
from selfheal.web._render import HttpOptions, Renderer, ShowDetails, route

__all__ = ["WSGIApp", "health_wsgi_app"]

StartResponse: TypeAlias = Callable[..., Any]
#: A WSGI application (PEP 3333).
WSGIApp: TypeAlias = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


def health_wsgi_app(
    monitor: HealthMonitor,
    *,
    token: str | None = None,
    show_details: ShowDetails = "when_authorized",
    metrics: bool = True,
    start_monitoring: bool = True,
    service_id: str | None = None,
    description: str | None = None,
    version: str | None = None,
    release_id: str | None = None,
) -> WSGIApp:
    """Return a WSGI app serving ``/livez``, ``/readyz``, ``/healthz`` (``/<check>``), ``/metrics``.

    Args:
        monitor: Whose cached results to serve.
        token: Bearer token that unlocks details; statuses are shown to everyone.
        show_details: ``"when_authorized"`` (default), ``"never"`` or ``"always"``.
        metrics: Whether to serve ``/metrics`` (needs prometheus-client).
        start_monitoring: Whether to start the monitor's background thread now (if it is
            not running yet); it is then stopped at interpreter exit.
        service_id: The health+json ``serviceId``.
        description: The health+json ``description``.
        version: The health+json ``version``.
        release_id: The health+json ``releaseId``.

    Returns:
        The WSGI application.
    """
    options = HttpOptions(
        token=token,
        show_details=show_details,
        service_id=service_id,
        description=description,
        version=version,
        release_id=release_id,
    )
    render_metrics: Callable[[], tuple[bytes, str]] | None = None
    if metrics:
        from selfheal.web.metrics import CONTENT_TYPE, HealthMetrics

        collected = HealthMetrics.of(monitor)

        def render_metrics() -> tuple[bytes, str]:
            return collected.render(), CONTENT_TYPE

    render = Renderer(monitor, options)
    if start_monitoring and not monitor.running:
        monitor.start_monitoring()
        _stop_at_exit(monitor)

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        # A worker forked from a preloading master (gunicorn --preload) lost the monitor's
        # thread: without this its results would freeze and go stale (503 everywhere).
        monitor.resume_after_fork()
        path = environ.get("PATH_INFO", "") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("GET", "HEAD"):
            return _send(start_response, 405, "text/plain; charset=utf-8", b"", method)
        if path.rstrip("/") == "/metrics" and render_metrics is not None:
            body, content_type = render_metrics()
            return _send(start_response, 200, content_type, body, method)
        target = route(path)
        if target is None:
            return _send(start_response, 404, "text/plain; charset=utf-8", b"not found\n", method)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        answer = render(
            target[0],
            check=target[1],
            query=query,
            authorization=environ.get("HTTP_AUTHORIZATION"),
        )
        return _send(
            start_response,
            answer.status_code,
            answer.content_type,
            answer.body,
            method,
            extra=answer.headers,
        )

    return app


def _stop_at_exit(monitor: HealthMonitor) -> None:
    """Stop the monitor's thread at interpreter exit, so checks' connections close cleanly.

    A process forked from this one (a gunicorn worker) inherits the handler and stops the
    thread it started itself. A weak reference: the handler keeps no monitor alive.
    """
    ref = weakref.ref(monitor)

    def stop() -> None:
        alive = ref()
        if alive is not None:
            alive.stop_monitoring()

    atexit.register(stop)


def _send(
    start_response: StartResponse,
    code: int,
    content_type: str,
    body: bytes,
    method: str,
    *,
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    headers = [
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        *((name.title(), value) for name, value in extra),
    ]
    start_response(f"{code} {_REASONS.get(code, '')}".rstrip(), headers)
    return [] if method == "HEAD" else [body]
