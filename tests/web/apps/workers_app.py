"""A Flask app with selfheal's health endpoints, served by gunicorn in tests/web/test_gunicorn.py.

Each run of its check leaves a file named after the process that ran it (in
``$SELFHEAL_TEST_RUNS``), so a test sees which processes keep a schedule. A request with an
``X-Rendezvous: <name>`` header waits (at most 10 s) until requests of that name have
arrived in two processes: with gunicorn's sync workers (one request at a time each) two such
requests sent together are answered by two different workers. Every answer carries the
answering process's id in ``X-Pid``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flask import Flask

from selfheal.health import HealthMonitor
from selfheal.web import SelfHeal

RUNS = Path(os.environ["SELFHEAL_TEST_RUNS"])
RENDEZVOUS = Path(os.environ["SELFHEAL_TEST_RENDEZVOUS"])


def database() -> None:
    (RUNS / str(os.getpid())).touch()


monitor = HealthMonitor()
monitor.register("db", database, interval=3600)

app = Flask(__name__)
SelfHeal(app, monitor)


def _rendezvous(wsgi: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        name = environ.get("HTTP_X_RENDEZVOUS")
        if name:
            here = RENDEZVOUS / name
            here.mkdir(parents=True, exist_ok=True)
            (here / str(os.getpid())).touch()
            deadline = time.monotonic() + 10
            while len(list(here.iterdir())) < 2 and time.monotonic() < deadline:
                time.sleep(0.005)  # the other worker's request, not a timer

        def with_pid(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            return start_response(status, [*headers, ("X-Pid", str(os.getpid()))], *exc)

        return wsgi(environ, with_pid)

    return middleware


app.wsgi_app = _rendezvous(app.wsgi_app)  # type: ignore[method-assign]
