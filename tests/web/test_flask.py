"""The Flask extension under a real werkzeug server: the ASGI app's bytes, a monitor thread."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from health_helpers import AUTH, TOKEN, CountingCheck, wait_until
from selfheal.health import HealthMonitor
from selfheal.web import SelfHeal, health_app

SRC = Path(__file__).resolve().parents[2] / "src"


@contextlib.contextmanager
def werkzeug_serving(app: Flask) -> Iterator[str]:
    """Serve a Flask app with werkzeug's threaded server on a free loopback port."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _flask_app() -> Flask:
    app = Flask(__name__)

    @app.route("/")
    def index() -> dict[str, str]:
        return {"hello": "world"}

    return app


@pytest.fixture
def monitor() -> Iterator[HealthMonitor]:
    monitor = HealthMonitor()
    cache = CountingCheck()
    cache.fail = "password=hunter2 refused"
    monitor.register("db", lambda: {"observedValue": 3, "observedUnit": "ms"}, interval=3600)
    monitor.register("cache", cache, interval=3600, critical=False)
    monitor.register("loop", CountingCheck(), interval=3600, kind="liveness")
    yield monitor
    monitor.stop_monitoring()


@pytest.mark.anyio
async def test_flask_serves_the_asgi_apps_bytes_from_a_monitor_thread(
    monitor: HealthMonitor,
) -> None:
    app = _flask_app()
    SelfHeal(app, monitor, token=TOKEN, version="1.0", service_id="shop")
    assert monitor.running  # init_app started the monitor's thread
    wait_until(lambda: all(r.result is not None for r in monitor.reports()))
    asgi = health_app(monitor, token=TOKEN, version="1.0", service_id="shop", manage_monitor=False)
    transport = httpx.ASGITransport(app=asgi)
    with werkzeug_serving(app) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=5) as real,
            httpx.AsyncClient(transport=transport, base_url="http://t") as in_process,
        ):
            for path, headers in (
                ("/readyz", {}),
                ("/readyz", AUTH),
                ("/livez", {}),
                ("/healthz?verbose", AUTH),
                ("/healthz/cache?verbose", {}),
                ("/readyz?exclude=cache", {}),
                ("/livez/db", {}),
            ):
                over_flask = await real.get(path, headers=headers)
                over_asgi = await in_process.get(path, headers=headers)
                assert over_flask.status_code == over_asgi.status_code, path
                assert over_flask.content == over_asgi.content, path
                assert over_flask.headers["content-type"] == over_asgi.headers["content-type"]
            ready = (await real.get("/readyz", headers=AUTH)).json()
            assert ready["status"] == "warn"
            assert "hunter2" not in str(ready)
            assert (await real.head("/readyz")).content == b""
            assert (await real.post("/readyz")).status_code == 405
            assert (await real.get("/")).json() == {"hello": "world"}  # Flask's own routes
            assert (await real.get("/nothing")).status_code == 404
            metrics = (await real.get("/metrics")).text
            families = {f.name for f in text_string_to_metric_families(metrics)}
            assert "selfheal_health_check_status" in families


def test_flask_app_factory_with_a_prefix(monitor: HealthMonitor) -> None:
    selfheal = SelfHeal(monitor=monitor, prefix="/health", metrics=False)

    def create_app() -> Flask:
        app = _flask_app()

        @app.route("/metrics")
        def own_metrics() -> str:
            return "the app's own metrics"

        selfheal.init_app(app)
        return app

    app = create_app()
    assert app.extensions["selfheal"] is selfheal
    with werkzeug_serving(app) as url, httpx.Client(base_url=url, timeout=5) as client:
        wait_until(lambda: client.get("/health/readyz").status_code == 200)
        assert client.get("/health/livez/loop").status_code == 200
        assert client.get("/readyz").status_code == 404  # only under the prefix
        assert client.get("/healthlivez").status_code == 404
        assert client.get("/health/metrics").status_code == 404  # metrics=False
        assert client.get("/metrics").text == "the app's own metrics"
        assert client.get("/").json() == {"hello": "world"}


def test_flask_test_client_reaches_the_endpoints(monitor: HealthMonitor) -> None:
    app = _flask_app()
    SelfHeal(app, monitor)
    wait_until(lambda: all(r.result is not None for r in monitor.reports()))
    response = app.test_client().get("/readyz?verbose")
    assert response.status_code == 200
    assert response.text == "[+]db ok\n[+]cache degraded: reason withheld\n[+]loop ok\n" + (
        "readyz check passed\n"
    )


def test_flask_extension_rejects_what_it_cannot_use() -> None:
    with pytest.raises(ValueError, match=r"monitor must be a selfheal\.health\.HealthMonitor"):
        SelfHeal(_flask_app())
    with pytest.raises(ValueError, match="prefix must be a path starting with '/'"):
        SelfHeal(prefix="health")
    with pytest.raises(TypeError, match="SelfHeal: unknown option 'tokn'"):
        SelfHeal(tokn="x")  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="token must be a non-empty string"):
        SelfHeal(token="")


def test_the_monitor_thread_stops_at_interpreter_exit(tmp_path: Path) -> None:
    # An atexit handler registered before SelfHeal runs after SelfHeal's own (last in, first
    # out), so it sees whether the monitor was stopped.
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            """
            import atexit
            from flask import Flask
            from selfheal.health import HealthMonitor
            from selfheal.web import SelfHeal

            monitor = HealthMonitor()
            monitor.register("db", lambda: None, interval=3600)
            atexit.register(lambda: print("running at exit:", monitor.running))
            app = Flask(__name__)
            SelfHeal(app, monitor)
            print("running:", monitor.running)
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PYTHONPATH": str(SRC)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["running: True", "running at exit: False"]
