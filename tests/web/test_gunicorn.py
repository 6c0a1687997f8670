"""Under a real gunicorn with two workers: Flask (sync workers, with and without --preload)
and FastAPI (gunicorn's asgi workers); prometheus-client's multiprocess mode."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from health_helpers import free_port, port_open, wait_until

pytestmark = pytest.mark.slow

APPS = Path(__file__).resolve().parent / "apps"
SRC = Path(__file__).resolve().parents[2] / "src"


@contextlib.contextmanager
def gunicorn(
    tmp_path: Path,
    *,
    app: str = "workers_app:app",
    worker_class: str = "sync",
    preload: bool = False,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """Run an app of tests/web/apps under gunicorn with 2 workers; yield its URL."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        "2",
        "--worker-class",
        worker_class,
        "--bind",
        f"127.0.0.1:{port}",
        "--chdir",
        str(APPS),
        "--no-control-socket",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        *(["--preload"] if preload else []),
        app,
    ]
    for name in ("runs", "rendezvous"):
        (tmp_path / name).mkdir()
    environ = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    environ.update(
        PYTHONPATH=str(SRC),
        SELFHEAL_TEST_RUNS=str(tmp_path / "runs"),
        SELFHEAL_TEST_RENDEZVOUS=str(tmp_path / "rendezvous"),
        **(env or {}),
    )
    log = (tmp_path / "gunicorn.log").open("wb")
    proc = subprocess.Popen(argv, env=environ, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: proc.poll() is not None or port_open(port), 30)
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()  # the master stops its workers
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def _both_workers(url: str, name: str) -> dict[int, httpx.Response]:
    """Send two /readyz requests that meet in two different workers; answers by worker pid."""

    def get(_: int) -> httpx.Response:
        with httpx.Client(base_url=url, timeout=30) as client:
            return client.get("/readyz?verbose", headers={"X-Rendezvous": name})

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(get, range(2)))
    return {int(a.headers["x-pid"]): a for a in answers}


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-import", "preload"])
def test_every_worker_answers_from_its_own_check_schedule(tmp_path: Path, preload: bool) -> None:
    # Each worker runs the checks itself (no preload: it imported the app; --preload: the
    # master's monitor thread did not survive the fork and the worker restarts it on its
    # first request). No worker may answer "no result yet" after a short while.
    with gunicorn(tmp_path, preload=preload) as url:
        deadline = time.monotonic() + 20
        latest: dict[int, httpx.Response] = {}
        rounds = 0
        while time.monotonic() < deadline:
            rounds += 1
            latest.update(_both_workers(url, f"round-{rounds}"))
            if len(latest) == 2 and all(
                a.status_code == 200 and "no result yet" not in a.text for a in latest.values()
            ):
                break
        assert len(latest) == 2, "two requests held together were not served by two workers"
        for pid, answer in latest.items():
            assert answer.status_code == 200, (pid, answer.text)
            assert answer.text == "[+]db ok\nreadyz check passed\n"
        ran_in = {int(p.name) for p in (tmp_path / "runs").iterdir()}
        assert set(latest) <= ran_in  # each worker ran its own check


def test_every_asgi_worker_runs_the_monitor_in_its_own_lifespan(tmp_path: Path) -> None:
    # gunicorn's asgi workers run the app's lifespan in each worker; install() starts the
    # worker's monitor there. An async worker takes many connections at once, so the two
    # workers are told apart by asking until both have answered (fresh connections).
    with gunicorn(tmp_path, app="asgi_workers_app:app", worker_class="asgi") as url:
        deadline = time.monotonic() + 20
        latest: dict[int, httpx.Response] = {}
        while time.monotonic() < deadline:
            with httpx.Client(base_url=url, timeout=5) as client:
                answer = client.get("/readyz?verbose")
            latest[int(answer.headers["x-pid"])] = answer
            if len(latest) == 2 and all(
                a.status_code == 200 and "no result yet" not in a.text for a in latest.values()
            ):
                break
        assert len(latest) == 2
        for pid, answer in latest.items():
            assert answer.text == "[+]db ok\nreadyz check passed\n", (pid, answer.text)
        assert set(latest) <= {int(p.name) for p in (tmp_path / "runs").iterdir()}


def test_metrics_add_up_every_workers_runs_in_prometheus_multiprocess_mode(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    with gunicorn(tmp_path, env={"PROMETHEUS_MULTIPROC_DIR": str(shared)}) as url:
        runs = tmp_path / "runs"
        # Each worker starts its monitor when it imports the app and runs the check at once.
        wait_until(lambda: len(list(runs.iterdir())) == 2, 20)
        with httpx.Client(base_url=url, timeout=5) as client:

            def ok_runs() -> float:
                families = text_string_to_metric_families(client.get("/metrics").text)
                counts = {
                    s.labels.get("result"): s.value
                    for f in families
                    if f.name == "selfheal_health_check_runs"
                    for s in f.samples
                    if s.name.endswith("_total") and s.labels.get("check") == "db"
                }
                return counts.get("ok", 0.0)

            # One worker answers the scrape; it reports both workers' runs.
            wait_until(lambda: ok_runs() == 2, 10)
            text = client.get("/metrics").text
    assert 'selfheal_health_check_status{check="db",kind="readiness",status="pass"} 1.0' in text
