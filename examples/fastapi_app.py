"""A FastAPI app with selfheal's health endpoints, SIGTERM draining and metrics.

One line does it: ``install(app, monitor, ...)`` adds ``/livez``, ``/readyz``, ``/healthz`` and
``/metrics`` and runs the monitor inside the app's own lifespan (after the app's startup,
stopped before its shutdown). Run (FastAPI is not a selfheal dependency)::

    pip install fastapi 'selfheal[server,redis,postgres]'
    uvicorn examples.fastapi_app:app --host 127.0.0.1 --port 8000

Several workers (``uvicorn --workers 4``, or ``gunicorn -k asgi -w 4``) each run the app's
lifespan, so each runs its own check schedule; see docs/health.md.

Then ``curl -i 127.0.0.1:8000/readyz``, ``curl '127.0.0.1:8000/readyz?verbose'`` and, with
details, ``curl -H "Authorization: Bearer $HEALTH_TOKEN" 127.0.0.1:8000/healthz``.
Kubernetes probes: ``livenessProbe: /livez``, ``readinessProbe: /readyz``,
``startupProbe: /readyz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI

from selfheal.health import HealthMonitor
from selfheal.health.checks import (
    disk_space_check,
    event_loop_lag_check,
    memory_check,
    postgres_check,
    redis_check,
)
from selfheal.web import install

monitor = HealthMonitor()
# Dependencies: readiness (the default kind). A database outage takes the pod out of the load
# balancer; it does not restart it.
monitor.register(
    "database",
    postgres_check(os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")),
    interval=10,
    timeout=2,
    failure_threshold=2,
)
# A cache the app can live without: when it fails the service is degraded (warn, still 200).
monitor.register(
    "cache",
    redis_check(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")),
    interval=10,
    timeout=1,
    critical=False,
)
monitor.register("disk", disk_space_check("/", min_free_ratio=0.05), interval=60)
# The machine's memory is shared with every other pod on the node: pressure there degrades
# this one (readiness, non-critical), it is no reason to restart it.
monitor.register("node-memory", memory_check(max_percent=95), interval=30, critical=False)
# Liveness: only what a restart would fix, such as this process leaking memory (its RSS).
monitor.register(
    "memory",
    memory_check(max_percent=100, max_rss_bytes=int(os.environ.get("MAX_RSS", str(2 << 30)))),
    interval=30,
    kind="liveness",
)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The app's own startup and shutdown; install() runs the monitor inside this block.
    # The event-loop lag check watches this app's loop from the monitor's own thread
    # (install(..., thread=True)), so a blocked loop is caught even though nothing on it can run.
    monitor.register(
        "event-loop",
        event_loop_lag_check(asyncio.get_running_loop(), max_lag=0.5),
        interval=5,
        kind="liveness",
        failure_threshold=3,
    )
    try:
        yield
    finally:
        monitor.unregister("event-loop")


app = FastAPI(lifespan=lifespan)
# On SIGTERM: fail /readyz for 10 s so the load balancer stops sending traffic, then let
# uvicorn shut down.
install(app, monitor, thread=True, drain_seconds=10, token=os.environ.get("HEALTH_TOKEN"))


@app.get("/")
async def index() -> dict[str, str]:
    return {"hello": "world"}
