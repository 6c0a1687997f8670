"""Healing under chaos: the demo shop under a plain restart loop vs under ``selfheal run``.

The shop (``examples/shop``) runs twice with the same topology (two web processes sharing
one port with ``SO_REUSEPORT``, one outbox worker, one recommendation service, PostgreSQL
behind a forwarder of the bench's own) and the same seeded chaos schedule, while a load
client sends the same non-retrying user requests at a fixed rate (``healing/load.py``):

- ``plain``: each process in ``bash -c 'while true; do python X.py; done'`` and the shop in
  ``SHOP_PLAIN=1`` mode (dependencies called directly: no timeout, breaker, fallback, outbox
  or health endpoints);
- ``selfheal``: ``selfheal run`` with a generated config (``healing/shop.py``: readiness on
  ``/readyz`` and liveness on ``/livez`` of each web process's own admin port, every 100 ms,
  restart after 3 probes of 250 ms without an answer; restart backoff; sd_notify watchdog for
  the worker; a slow liveness probe for the recommendation service, whose users get a
  fallback meanwhile) and the shop as written (timeouts, breakers, ``FeatureManager``
  fallback, outbox, health endpoints answered by a thread of their own).

Faults (``healing/faults.py``, the same offsets in both runs): a web process SIGKILLed; a web
process SIGSTOPped (hung without exiting: the plain loop never notices, selfheal's liveness
probe restarts it); the worker SIGKILLed; the recommendation service SIGSTOPped for 2.5-4 s
(then continued, if still there) or SIGKILLed; the database unavailable for 2.5-4 s (the
forwarder closes its listener and cuts every connection; the shared PostgreSQL is never
touched).

Measured per run: availability (share of user requests answered successfully: 200, or
201/202 for a checkout, within ``--timeout``); latency p50/p99 over all requests (a failed
one counts with the time it took to fail); incidents injected and detected; time to recover
per fault kind (defined in ``healing/report.py``: from injection to the first successful
request served by the replacement process, to the first non-degraded product page, to the
first checkout written to the database again, or for the worker to its replacement
running), and for web faults also the time until the replacement process was started
(detection and restart, without the shop's own start-up); and after the worker has drained
the outbox, every checkout answered 201/202 is looked up in the database: lost (missing) and
duplicated (recorded more than once). "Restarts without a fault" counts processes replaced
with no fault on their slot in the 6 s before (false positives of the liveness probes).

Targets under selfheal (issue #12): availability >= 99.95%, web-kill TTR p50 < 500 ms,
web-hang TTR p50 < 2 s, no checkout lost or duplicated. Exit status 1 if one is missed.

What bounds the figures on a small machine: a web process of the shop needs 1.5-2.5 s from
exec to its first answer when the machine's load average is 5-10 (imports: the interpreter,
asyncio, uvicorn and starlette ~0.8 s, psycopg ~0.5 s, selfheal and httpx ~0.5 s), so TTR of
a web process is that plus detection; and while one web process is replaced, the other
carries all the load, so a rate one process cannot carry alone on the machine of the day
turns every fault into an overload. The load average is printed with each run.

Environment: PostgreSQL on this machine (trust auth, user postgres); each run gets a private
database ``selfheal_bench_<pid>_<run>``, dropped at the end. As root, the bench runs in a
network namespace of its own with ``net.ipv4.tcp_migrate_req = 1`` (``healing/netns.py``
says why) and reaches PostgreSQL through its unix socket; ``--no-netns`` (or a run without
the privilege to make a namespace) stays on the machine's loopback (127.0.0.1:5432) with the
machine's setting. Everything started is in a session of its own and ended by pid at the
end, also on Ctrl-C or SIGTERM.

Run: ``.venv/bin/python bench/healing.py [--seed 7] [--duration 75] [--rate 100]`` (about 3
minutes with the defaults); ``--calm`` runs the same load without faults (calibration),
``--json`` keeps every request's record, ``-v`` lists each fault and recovery.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from healing.faults import Injector, make_schedule
from healing.forwarder import Forwarder
from healing.load import plan, run_load
from healing.netns import enter_private_netns, migrate_setting
from healing.report import Figures, figures, table, targets_met
from healing.shop import PY, ROOT, SHOP_DIR, Ports, Shop

PG_SOCKET = "/var/run/postgresql/.s.PGSQL.5432"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """The machine's PostgreSQL, for creating, checking and dropping our private databases."""

    def __init__(self, netns: bool, pg_socket: str) -> None:
        host = os.path.dirname(pg_socket) if netns else "127.0.0.1"
        self.conninfo = f"host={host} port=5432 user=postgres"
        self.upstream = pg_socket if netns else "127.0.0.1:5432"
        self.created: list[str] = []

    def create(self, name: str) -> None:
        import psycopg

        with psycopg.connect(self.conninfo + " dbname=postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.created.append(name)
        with psycopg.connect(self.conninfo + f" dbname={name}", autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE orders (order_id TEXT PRIMARY KEY, body TEXT NOT NULL,"
                " created DOUBLE PRECISION NOT NULL)"
            )

    def order_counts(self, name: str) -> dict[str, int]:
        import psycopg

        with psycopg.connect(self.conninfo + f" dbname={name}", autocommit=True) as conn:
            rows = conn.execute("SELECT order_id, count(*) FROM orders GROUP BY order_id")
            return {order_id: int(n) for order_id, n in rows}

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.conninfo + " dbname=postgres", autocommit=True) as conn:
            for name in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.clear()


def outbox_size(path: Path) -> int:
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM outbox").fetchone()[0])
        except sqlite3.OperationalError:  # no table yet
            return 0


async def wait_drained(outbox: Path, limit: float) -> int:
    """Wait up to `limit` seconds for `outbox` to empty; return how many orders are left."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(limit):
            # The outbox is another process's file: there is nothing to await but time.
            while await asyncio.to_thread(outbox_size, outbox):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    return await asyncio.to_thread(outbox_size, outbox)


async def run_one(
    mode: str, args: argparse.Namespace, pg: Postgres, workdir: Path, shops: list[Shop]
) -> Figures:
    """Run the shop in `mode` under the schedule and load; return its figures."""
    database = f"selfheal_bench_{os.getpid()}_{mode}"
    await asyncio.to_thread(pg.create, database)
    ports = Ports(free_port(), (free_port(), free_port()), free_port(), free_port())
    forwarder = Forwarder(ports.db, pg.upstream)
    await forwarder.switch_on()
    shop = Shop(
        mode, workdir / mode, ports, f"postgresql://postgres@127.0.0.1:{ports.db}/{database}"
    )
    shop.workdir.mkdir(parents=True)
    shops.append(shop)
    try:
        shop.start()
        try:
            async with asyncio.timeout(90):
                await shop.wait_ready()
        except TimeoutError:
            raise SystemExit(
                f"{mode}: the shop did not start in 90 s; see {shop.workdir}"
            ) from None
        await asyncio.sleep(1.0)  # let start-up settle (first health checks, connections)
        requests = plan(int(args.rate * args.duration), args.seed, f"{mode}-{os.getpid()}")
        load_before = os.getloadavg()[0]
        began = time.monotonic() + 0.2
        injector = Injector(shop, forwarder, began)
        watch = asyncio.create_task(injector.watch())
        schedule = [] if args.calm else make_schedule(args.seed, args.duration)
        chaos = asyncio.create_task(injector.run(schedule))
        print(f"{mode}: load of {len(requests)} requests for {args.duration:g} s", file=sys.stderr)
        results = await run_load(ports.shop, requests, args.rate, args.timeout, began)
        load_end = time.monotonic() - began
        await chaos
        watch.cancel()
        fig = figures(mode, results, injector.injected, injector.history, load_end)
        fig.load = (load_before, os.getloadavg()[0])
        # Orders queued while the database was down must all reach it: wait for the worker.
        fig.outbox_left = await wait_drained(shop.outbox, args.drain)
        await asyncio.to_thread(shop.stop)
        counts = await asyncio.to_thread(pg.order_counts, database)
        accepted = {r.request.order_id for r in results if r.ok and r.request.order_id}
        fig.lost = len(accepted - counts.keys())
        fig.duplicated = sum(n - 1 for n in counts.values() if n > 1)
        fig.extra = len(counts.keys() - accepted)
        if args.verbose:
            log_incidents(mode, injector, fig)
        if args.json:
            dump = {
                "results": [_result_dict(r) for r in results],
                "history": injector.history,
                "injected": [
                    {"t": i.t, "kind": i.fault.kind, "target": i.fault.target, "pid": i.pid}
                    for i in injector.injected
                ],
            }
            (shop.workdir / "records.json").write_text(json.dumps(dump))
        return fig
    finally:
        await asyncio.to_thread(shop.stop)
        await forwarder.close()


async def run_all(
    args: argparse.Namespace, pg: Postgres, workdir: Path, shops: list[Shop]
) -> list[Figures]:
    """Run both sides (or `--only` one); Ctrl-C or SIGTERM cancels, and each run cleans up."""
    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    assert me is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, me.cancel)
    runs = []
    for mode in ("plain", "selfheal"):
        if args.only in (None, mode):
            runs.append(await run_one(mode, args, pg, workdir, shops))
    return runs


def _result_dict(r: Any) -> dict[str, Any]:
    return {
        "i": r.request.index,
        "kind": r.request.kind,
        "start": round(r.start, 4),
        "latency": round(r.latency, 4),
        "status": r.status,
        "ok": r.ok,
        "pid": r.pid,
        "degraded": r.degraded,
        "error": r.error,
    }


def log_incidents(mode: str, injector: Injector, fig: Figures) -> None:
    for inj in injector.injected:
        f = inj.fault
        extra = f" for {f.duration:g} s" if f.duration else ""
        print(f"  {mode} {inj.t:6.2f}s {f.kind} {f.target} pid {inj.pid}{extra}", file=sys.stderr)
    print(f"  {mode} slots: {injector.history}", file=sys.stderr)
    print(
        f"  {mode} ttr: { {k: [round(v, 3) for v in vs] for k, vs in fig.ttr.items()} }",
        file=sys.stderr,
    )


def precompile() -> None:
    # A deployment ships bytecode; without it every restart compiles the shop and selfheal.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [PY, "-m", "compileall", "-q", str(SHOP_DIR), str(ROOT / "src" / "selfheal")],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--duration", type=float, default=75.0, help="seconds of load per run")
    parser.add_argument("--rate", type=float, default=100.0, help="user requests per second")
    parser.add_argument("--timeout", type=float, default=2.0, help="a user's patience, s")
    parser.add_argument("--drain", type=float, default=30.0, help="max wait for the outbox, s")
    parser.add_argument("--only", choices=["plain", "selfheal"], help="run one side only")
    parser.add_argument("--calm", action="store_true", help="no faults (calibration)")
    parser.add_argument("--no-netns", dest="netns", action="store_false")
    parser.add_argument("--pg-socket", default=PG_SOCKET)
    parser.add_argument("--keep", action="store_true", help="keep logs and configs")
    parser.add_argument("--json", action="store_true", help="also keep every request's record")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    if not 10 <= args.rate <= 500 or not 30 <= args.duration <= 600:
        parser.error("--rate must be 10..500 and --duration 30..600")
    try:
        schedule = make_schedule(args.seed, args.duration)
    except ValueError as exc:
        parser.error(str(exc))
    if args.netns:
        try:
            enter_private_netns()  # before any thread exists
        except OSError as exc:
            args.netns = False
            print(f"note: {exc}: running on the machine's loopback instead", file=sys.stderr)
    print(
        f"schedule (seed {args.seed}): "
        + ", ".join(f"{f.at:g}s {f.kind} {f.target}" for f in schedule)
        + f"\ntcp_migrate_req = {migrate_setting()}"
        + (" (private network namespace)" if args.netns else " (machine's)"),
        file=sys.stderr,
    )
    precompile()
    pg = Postgres(args.netns, args.pg_socket)
    workdir = Path(tempfile.mkdtemp(prefix="selfheal-healing-"))
    shops: list[Shop] = []
    try:
        runs = asyncio.run(run_all(args, pg, workdir, shops))
    except (asyncio.CancelledError, KeyboardInterrupt):
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        # Bounded (about 20 s at worst); a second Ctrl-C must not cut it short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for shop in shops:
            shop.stop()
        pg.drop_all()
        if args.keep or args.json:
            print(f"logs and records kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        f"\nHealing bench: seed {args.seed}, {args.duration:g} s per run, {args.rate:g} req/s, "
        f"timeout {args.timeout:g} s, tcp_migrate_req {migrate_setting()}\n"
    )
    print(table(runs))
    for f in runs:
        for note in f.notes:
            print(f"{f.name}: {note}")
        if f.outbox_left or f.extra:
            print(
                f"{f.name}: {f.outbox_left} order(s) left in the outbox after {args.drain:g} s; "
                f"{f.extra} recorded although the user got an error"
            )
    return 0 if targets_met(runs[-1]) else 1


if __name__ == "__main__":
    sys.exit(main())
