"""The keyword options every health endpoint front end takes, in one `TypedDict`.

`selfheal.web.install` and `selfheal.web.flask.SelfHeal` take them as ``**options``; the apps
(`health_app`, `health_routes`, `health_wsgi_app`) spell them out. Standard library only.
"""

from __future__ import annotations

from typing import TypedDict

from selfheal.web._render import HttpOptions, ShowDetails

__all__ = ["EndpointOptions", "http_options"]


class EndpointOptions(TypedDict, total=False):
    """How the health endpoints answer; every key is optional.

    Attributes:
        token: Bearer token that unlocks details (check output, observed values); statuses
            are shown to everyone.
        show_details: ``"when_authorized"`` (default), ``"never"`` or ``"always"``.
        metrics: Whether to serve ``/metrics`` (default True; needs prometheus-client).
        service_id: The health+json ``serviceId``.
        description: The health+json ``description``.
        version: The health+json ``version``.
        release_id: The health+json ``releaseId``.
    """

    token: str | None
    show_details: ShowDetails
    metrics: bool
    service_id: str | None
    description: str | None
    version: str | None
    release_id: str | None


def http_options(options: EndpointOptions, *, where: str) -> tuple[HttpOptions, bool]:
    """Return the renderer's options and whether ``/metrics`` is served.

    Args:
        options: The endpoint options, as a caller passed them (``**options``).
        where: Names the caller in error messages (``install``).

    Returns:
        ``(HttpOptions, metrics)``.

    Raises:
        TypeError: An option that does not exist (a ``**options`` typo would otherwise be
            silently ignored).
        ValueError: A bad value (the message names it).
    """
    unknown = sorted(set(options) - set(EndpointOptions.__annotations__))
    if unknown:
        valid = ", ".join(EndpointOptions.__annotations__)
        raise TypeError(f"{where}: unknown option {unknown[0]!r}; valid options: {valid}")
    http = HttpOptions(
        token=options.get("token"),
        show_details=options.get("show_details", "when_authorized"),
        service_id=options.get("service_id"),
        description=options.get("description"),
        version=options.get("version"),
        release_id=options.get("release_id"),
    )
    return http, bool(options.get("metrics", True))
