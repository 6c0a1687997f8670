"""The WSGI app: the ASGI app's bytes under a real WSGI server, and gunicorn-style forks."""

from __future__ import annotations

import os
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from health_helpers import AUTH, TOKEN, HealthAppSetup, wait_until
from selfheal.health import HealthMonitor
from selfheal.web import health_wsgi_app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.anyio
async def test_wsgi_app_answers_like_the_asgi_app(
    setup: HealthAppSetup, client: httpx.AsyncClient
) -> None:
    setup.db.fail = "token=abc refused"
    await setup.refresh()
    wsgi = health_wsgi_app(
        setup.monitor, token=TOKEN, version="1.0", service_id="shop", start_monitoring=False
    )
    server = make_server("127.0.0.1", 0, wsgi, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as real:
            for path, headers in (
                ("/readyz", {}),
                ("/readyz", AUTH),
                ("/livez", {}),
                ("/healthz/db?verbose", AUTH),
                ("/readyz?exclude=db&verbose", {}),
                ("/livez/db", {}),
            ):
                over_wsgi = await real.get(path, headers=headers)
                over_asgi = await client.get(path, headers=headers)
                assert over_wsgi.status_code == over_asgi.status_code, path
                assert over_wsgi.content == over_asgi.content, path
                assert over_wsgi.headers["content-type"] == over_asgi.headers["content-type"]
            assert "abc" not in (await real.get("/readyz", headers=AUTH)).text
            assert (await real.get("/nothing")).status_code == 404
            assert (await real.post("/readyz")).status_code == 405
            metrics = (await real.get("/metrics")).text
            assert {f.name for f in text_string_to_metric_families(metrics)} >= {
                "selfheal_health_check_status"
            }
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_wsgi_app_restarts_monitoring_in_a_forked_worker() -> None:
    # gunicorn --preload builds the app (and starts the monitor's thread) in the master,
    # then forks workers: the thread does not survive the fork, the results froze, and after
    # max_age every worker answered 503: a whole fleet out of the load balancer.
    from selfheal.web import health_wsgi_app

    monitor = HealthMonitor()
    calls: list[int] = []
    # An interval long enough that the parent's result is still fresh when the worker first
    # answers (with 0.05 s it went stale on a busy machine before the worker's own run).
    monitor.register("db", lambda: calls.append(os.getpid()), interval=1, jitter=0)
    app = health_wsgi_app(monitor)
    try:
        # Fork once a result is recorded, not merely once the check was called: a fork between
        # the two leaves the worker a copy with no result at all (503 until its own run).
        wait_until(lambda: monitor.report("db").result is not None)
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 1
            try:
                forked_at = time.monotonic()
                environ = {"PATH_INFO": "/readyz", "REQUEST_METHOD": "GET"}
                status: list[str] = []
                app(environ, lambda s, h: status.append(s))  # restarts monitoring here
                wait_until(lambda: os.getpid() in calls, 5)
                # The worker's own result, recorded by its own monitoring thread.
                wait_until(lambda: monitor.report("db").result.monotonic > forked_at, 5)  # type: ignore[union-attr]
                app(environ, lambda s, h: status.append(s))
                code = 0 if monitor.running and status == ["200 OK"] * 2 else 2
            finally:
                os.write(write, bytes([code]))
                os._exit(code)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            answer = pipe.read(1)
        os.waitpid(pid, 0)
        assert answer == b"\x00"
        assert monitor.running  # the parent's monitor is untouched
    finally:
        monitor.stop_monitoring()
