"""A FastAPI app with selfheal.web.install, served by gunicorn's asgi workers in test_gunicorn.py.

Each run of its check leaves a file named after the process that ran it (in
``$SELFHEAL_TEST_RUNS``); every answer carries the answering process's id in ``X-Pid``.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response

from selfheal.health import HealthMonitor
from selfheal.web import install

RUNS = Path(os.environ["SELFHEAL_TEST_RUNS"])


async def database() -> None:
    (RUNS / str(os.getpid())).touch()


monitor = HealthMonitor()
monitor.register("db", database, interval=3600)

app = FastAPI()
install(app, monitor)


@app.middleware("http")
async def pid_header(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers["X-Pid"] = str(os.getpid())
    return response
