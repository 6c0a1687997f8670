"""A Flask extension serving the health endpoints: ``SelfHeal(app, monitor)``.

The article served ``/health`` from a Flask view that ran every check on every request. Here
``/livez``, ``/readyz``, ``/healthz`` (each with ``/<check>``) and ``/metrics`` are answered by
`selfheal.web.health_wsgi_app` (the same bytes as the ASGI app), put in front of the Flask app
as WSGI middleware: a probe never goes through Flask's request handling (or the app's
``before_request`` hooks) and never runs a check. The monitor runs in a daemon thread
(`HealthMonitor.start_monitoring`) started by `SelfHeal.init_app` and stopped at interpreter
exit. Flask itself is not imported: any app with ``wsgi_app`` and ``extensions`` will do.

Under gunicorn each worker process runs its own monitor; with ``--preload`` the master's
monitor thread does not survive the fork and each worker starts its own on its first
request (see ``docs/health.md``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Unpack

from selfheal.health import HealthMonitor
from selfheal.web._render import route
from selfheal.web.options import EndpointOptions, http_options
from selfheal.web.wsgi import StartResponse, WSGIApp, health_wsgi_app

if TYPE_CHECKING:
    from flask import Flask

__all__ = ["SelfHeal"]


class SelfHeal:
    """Flask extension: health endpoints from a monitor running in the background.

    ``SelfHeal(app, monitor)``, or ``ext = SelfHeal(monitor=monitor)`` and later
    ``ext.init_app(app)`` in an app factory::

        app = Flask(__name__)
        monitor = HealthMonitor()
        monitor.register("database", check_database_connection, interval=30)
        SelfHeal(app, monitor, token=os.environ["HEALTH_TOKEN"])

    Args:
        app: The Flask app, or None to call `init_app` later.
        monitor: Whose results to serve (may also be given to `init_app`).
        prefix: Where the endpoints go: ``"/"`` (default) or a path such as ``"/health"``.
        start_monitoring: Whether `init_app` starts the monitor's thread (if it is not
            running yet; it is then stopped at interpreter exit).
        **options: How the endpoints answer: ``token``, ``show_details``, ``metrics``,
            ``service_id``, ``description``, ``version``, ``release_id``, as for
            `selfheal.web.health_app` (see `selfheal.web.options.EndpointOptions`).

    Raises:
        ValueError: A bad `prefix` or option value.
        TypeError: An option that does not exist.
    """

    def __init__(
        self,
        app: Flask | None = None,
        monitor: HealthMonitor | None = None,
        *,
        prefix: str = "/",
        start_monitoring: bool = True,
        **options: Unpack[EndpointOptions],
    ) -> None:
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise ValueError(f"SelfHeal: prefix must be a path starting with '/', got {prefix!r}")
        http_options(options, where="SelfHeal")  # bad options fail here, not in init_app
        self.monitor = monitor
        self.prefix = prefix.rstrip("/")
        self.start_monitoring = start_monitoring
        self._options = options
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask, monitor: HealthMonitor | None = None) -> None:
        """Serve the endpoints from `app` and start the monitor's thread.

        Args:
            app: The Flask app.
            monitor: Whose results to serve, if not given to the constructor.

        Raises:
            ValueError: No monitor was given.
        """
        monitor = monitor if monitor is not None else self.monitor
        if not isinstance(monitor, HealthMonitor):
            raise ValueError(
                "SelfHeal.init_app: monitor must be a selfheal.health.HealthMonitor, got "
                f"{monitor!r}; pass it to SelfHeal(app, monitor) or init_app(app, monitor)"
            )
        health = health_wsgi_app(monitor, start_monitoring=self.start_monitoring, **self._options)
        app.wsgi_app = _HealthFirst(  # type: ignore[method-assign]
            app.wsgi_app, health, self.prefix, metrics=self._options.get("metrics", True)
        )
        app.extensions["selfheal"] = self


class _HealthFirst:
    """WSGI middleware: health paths (under a prefix) go to the health app, the rest to Flask."""

    def __init__(self, app: WSGIApp, health: WSGIApp, prefix: str, *, metrics: bool) -> None:
        self.app = app
        self.health = health
        self.prefix = prefix
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        prefix = self.prefix
        rest = path[len(prefix) :] if path.startswith(prefix) else ""
        if not rest.startswith("/") or (
            route(rest) is None and not (self.metrics and rest.rstrip("/") == "/metrics")
        ):
            return self.app(environ, start_response)
        if prefix:
            environ = {
                **environ,
                "SCRIPT_NAME": environ.get("SCRIPT_NAME", "") + prefix,
                "PATH_INFO": rest,
            }
        return self.health(environ, start_response)
