"""selfheal.web: the HTTP side (health endpoints, metrics) as ASGI and WSGI apps.

Names are imported on first use, so ``import selfheal.web`` costs nothing and the ``server``
extra (starlette, prometheus-client) is only needed by what is used. Framework integrations:
`install` (FastAPI, Starlette), `health_lifespan` (compose with a lifespan of your own),
`SelfHeal` (Flask).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selfheal.web.flask import SelfHeal
    from selfheal.web.health import health_app, health_routes
    from selfheal.web.lifespan import health_lifespan
    from selfheal.web.metrics import HealthMetrics
    from selfheal.web.starlette import install
    from selfheal.web.wsgi import health_wsgi_app

__all__ = [
    "HealthMetrics",
    "SelfHeal",
    "health_app",
    "health_lifespan",
    "health_routes",
    "health_wsgi_app",
    "install",
]

_LAZY = {
    "HealthMetrics": "selfheal.web.metrics",
    "SelfHeal": "selfheal.web.flask",
    "health_app": "selfheal.web.health",
    "health_lifespan": "selfheal.web.lifespan",
    "health_routes": "selfheal.web.health",
    "health_wsgi_app": "selfheal.web.wsgi",
    "install": "selfheal.web.starlette",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'selfheal.web' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
