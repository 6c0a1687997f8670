"""The demo shop (examples/shop) as real processes: SQLite by default, fallbacks, plain mode.

Each web process runs on free ports of 127.0.0.1. Unreachable dependencies are closed ports
of our own: the machine's PostgreSQL is never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from health_helpers import free_port, wait_until

SHOP = Path(__file__).resolve().parents[1] / "examples" / "shop"
SRC = Path(__file__).resolve().parents[1] / "src"


class Proc:
    """One shop process in a session of its own, ended by pid."""

    def __init__(self, script: str, env: dict[str, str], log: Path) -> None:
        full = dict(os.environ, PYTHONPATH=os.pathsep.join([str(SRC), str(SHOP)]), **env)
        with log.open("wb") as out:
            self.popen = subprocess.Popen(
                [sys.executable, script],
                cwd=SHOP,
                env=full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(10)


def call(
    port: int, path: str, body: dict[str, Any] | None = None
) -> tuple[int, dict[str, str], Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        status, headers, raw = exc.code, dict(exc.headers), exc.read()
    headers = {k.lower(): v for k, v in headers.items()}
    try:
        return status, headers, json.loads(raw)
    except ValueError:
        return status, headers, raw.decode()


def answers(port: int, path: str = "/") -> bool:
    try:
        call(port, path)
    except OSError:
        return False
    return True


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.stop()


def start_web(
    procs: list[Proc], tmp_path: Path, name: str, **env: str
) -> tuple[Proc, int, int | None]:
    port = free_port()
    admin = free_port()
    env = {"PORT": str(port), "SHOP_ADMIN_PORT": str(admin), **env}
    proc = Proc("web.py", env, tmp_path / f"{name}.log")
    procs.append(proc)
    wait_until(lambda: answers(port) or proc.popen.poll() is not None, 60)
    assert proc.popen.poll() is None, proc.log.read_text()
    return proc, port, admin


def test_shop_on_sqlite_serves_pages_and_records_each_checkout_once(
    procs: list[Proc], tmp_path: Path
) -> None:
    recs_port = free_port()
    procs.append(Proc("recs.py", {"PORT": str(recs_port)}, tmp_path / "recs.log"))
    wait_until(lambda: answers(recs_port, "/healthz"), 60)
    db = tmp_path / "shop.db"
    web, port, admin = start_web(
        procs,
        tmp_path,
        "web",
        SHOP_DB=f"sqlite:///{db}",
        SHOP_OUTBOX=str(tmp_path / "outbox.db"),
        SHOP_RECS_URL=f"http://127.0.0.1:{recs_port}",
    )

    status, headers, body = call(port, "/search?q=tent")
    assert status == 200
    assert body["results"]
    assert all("tent" in f"{p['name']} {p['kind']}".lower() for p in body["results"])
    assert headers["x-shop-pid"] == str(web.pid)

    # (A first call may miss the 0.3 s timeout on a busy machine and get the fallback.)
    wait_until(lambda: call(port, "/product/7")[1]["x-shop-degraded"] == "0", 20)
    status, headers, body = call(port, "/product/7")
    assert (status, body["degraded"]) == (200, False)
    assert len(body["recommendations"]) == 5
    assert all(p["kind"] == body["product"]["kind"] for p in body["recommendations"])

    order = {"order_id": "order-1", "product_id": 7, "quantity": 2}
    assert call(port, "/checkout", order)[0] == 201
    assert call(port, "/checkout", order)[0] == 201  # the same order again: still once
    assert call(port, "/checkout", {"product_id": 7})[0] == 400
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT order_id, body FROM orders").fetchall()
    assert [(r[0], json.loads(r[1])["quantity"]) for r in rows] == [("order-1", 2)]

    # The health endpoints answer on the process's own port (and on the shared one).
    assert admin is not None
    assert call(admin, "/livez")[0] == 200
    wait_until(lambda: call(admin, "/readyz")[0] == 200, 10)
    assert call(port, "/livez")[0] == 200


def test_without_its_dependencies_the_shop_degrades_and_the_plain_shop_fails(
    procs: list[Proc], tmp_path: Path
) -> None:
    closed = free_port()  # nothing listens: the recommendations and the database are down
    env = {
        "SHOP_DB": f"postgresql://postgres@127.0.0.1:{closed}/shop",
        "SHOP_RECS_URL": f"http://127.0.0.1:{closed}",
    }
    guarded = tmp_path / "guarded-outbox.db"
    _, port, admin = start_web(procs, tmp_path, "guarded", SHOP_OUTBOX=str(guarded), **env)
    _, plain_port, _ = start_web(
        procs, tmp_path, "plain", SHOP_PLAIN="1", SHOP_OUTBOX=str(tmp_path / "p.db"), **env
    )

    status, headers, body = call(port, "/product/3")
    assert (status, headers["x-shop-degraded"]) == (200, "1")
    assert len(body["recommendations"]) == 5
    order = {"order_id": "kept-1", "product_id": 3}
    assert call(port, "/checkout", order)[0] == 202
    with contextlib.closing(sqlite3.connect(guarded)) as conn:
        kept = [r[0] for r in conn.execute("SELECT order_id FROM outbox")]
    assert kept == ["kept-1"]
    assert admin is not None
    assert call(admin, "/livez")[0] == 200  # dependencies down do not make it unhealthy

    assert call(plain_port, "/search?q=tent")[0] == 200
    assert call(plain_port, "/product/3")[0] == 500
    assert call(plain_port, "/checkout", {"order_id": "lost-1", "product_id": 3})[0] == 500
    assert call(plain_port, "/livez")[0] == 404  # the plain shop has no health endpoints


def test_worker_moves_the_outbox_into_sqlite_once(procs: list[Proc], tmp_path: Path) -> None:
    sys.path.insert(0, str(SHOP))
    try:
        from shopdata import Outbox, SqliteOrders
    finally:
        sys.path.remove(str(SHOP))
    db, box = tmp_path / "shop.db", tmp_path / "outbox.db"
    outbox = Outbox(box)
    for i in range(25):  # more than one batch
        outbox.add({"order_id": f"o-{i}", "product_id": 1, "quantity": 1})
    orders = SqliteOrders(db)
    orders.put({"order_id": "o-3", "product_id": 1, "quantity": 1})  # already written once
    procs.append(
        Proc("worker.py", {"SHOP_DB": f"sqlite:///{db}", "SHOP_OUTBOX": str(box)}, tmp_path / "w")
    )
    wait_until(lambda: outbox.size() == 0, 30)
    assert orders.count() == 25
    time.sleep(0.3)  # a few more rounds of the worker change nothing
    assert orders.count() == 25
