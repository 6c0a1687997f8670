"""``selfheal demo``: the demo shop under selfheal, under chaos, healing as you watch.

The shop (``examples/shop``) runs as the daemon's programs from an ordinary generated
``selfheal.toml``: two web processes, a worker and a recommendation service, with probes,
health checks, synthetic transactions and recovery rules. Once it serves, seeded users send
requests that are never retried and a seeded chaos monkey kills and hangs its processes, one
fault at a time. Each incident is told in one line as it heals; at the end (``--duration``, or
Ctrl-C) the demo prints what the users saw (availability), how fast each incident was found
and healed, and whether any order was lost, and stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sqlite3
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from selfheal.cli._common import fail
from selfheal.cli._demo_load import UserLoad
from selfheal.cli._demo_shop import DemoPorts, find_shop, port_is_free, write_config
from selfheal.cli._demo_story import Fault, Stories

__all__ = ["commands", "demo_command"]

#: Where the dashboard is served when --port is not given (and the port is free).
DEFAULT_PORT = 8080
#: Seconds of user load before the first fault, so the figures start from a steady shop.
WARM_UP = 3.0
#: Seconds the shop has to start before the demo gives up (and shows the logs).
START_LIMIT = 90.0


@dataclass(frozen=True)
class Options:
    """The command line of one demo."""

    port: int
    duration: float | None
    seed: int
    rate: float
    shop: str | None
    keep: bool
    chaos: bool


@click.command("demo")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve the dashboard on 127.0.0.1:PORT (0: any free port) "
    f"[default: {DEFAULT_PORT}, or a free port when it is taken].",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=10, max=86400),
    default=None,
    help="Seconds to run, then stop and print the figures [default: until Ctrl-C].",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Seeds users and chaos.")
@click.option(
    "--rate",
    type=click.FloatRange(min=1, max=200),
    default=20,
    show_default=True,
    help="User requests per second.",
)
@click.option(
    "--shop",
    type=click.Path(file_okay=False),
    default=None,
    help="The demo shop's directory [default: examples/shop of the source checkout].",
)
@click.option("--keep", is_flag=True, help="Keep the work directory (config, logs, journal).")
@click.option("--no-chaos", "no_chaos", is_flag=True, help="Run the shop and users only.")
def demo_command(
    *,
    port: int | None,
    duration: float | None,
    seed: int,
    rate: float,
    shop: str | None,
    keep: bool,
    no_chaos: bool,
) -> None:
    """Run the demo shop under selfheal with chaos on, and watch it heal.

    Prints the dashboard's address, one line per incident as it heals, and at the end the
    availability users saw and the times to detect and recover. Nothing is left running.
    """
    if port is None:
        port = DEFAULT_PORT if port_is_free(DEFAULT_PORT) else 0
    opts = Options(port, duration, seed, rate, shop, keep, not no_chaos)
    _check_ready_to_run(opts)
    try:
        code = asyncio.run(_demo(opts))
    except KeyboardInterrupt:  # a second Ctrl-C during the shutdown
        code = 130
    raise SystemExit(code)


def _check_ready_to_run(opts: Options) -> None:
    from selfheal._extras import extra_of

    try:
        import httpx  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        missing = extra_of(exc)
        extra = missing.extra if missing is not None else "server"
        fail(f"selfheal demo needs the {extra!r} extra: pip install 'selfheal[{extra}]'")
    try:
        find_shop(opts.shop)
    except FileNotFoundError as exc:
        fail(str(exc))
    if opts.port and not port_is_free(opts.port):
        fail(
            f"--port {opts.port}: 127.0.0.1:{opts.port} is in use; give another port, or "
            "--port 0 for any free one"
        )
    if opts.chaos and os.environ.get("SELFHEAL_ENV", "").lower() == "production":
        fail("SELFHEAL_ENV=production: the demo injects faults and never runs there")


def _echo(line: str) -> None:
    click.echo(line)


async def _demo(opts: Options) -> int:
    from selfheal.cli._daemon import Daemon
    from selfheal.errors import ConfigError
    from selfheal.runtime import compile_plan

    workdir = Path(tempfile.mkdtemp(prefix="selfheal-demo-"))
    shop = find_shop(opts.shop)
    ports = DemoPorts.pick(opts.port)
    config = write_config(shop, ports, workdir)
    _log_to(workdir / "daemon.log")
    try:
        daemon = Daemon(compile_plan(str(config)))
    except ConfigError as exc:  # a demo that cannot start is a bug: say where to look
        fail(f"the demo's generated config is refused ({config}): {exc}")
    demo = _DemoRun(opts, daemon, ports, workdir)
    _echo(f"starting the demo shop from {shop} (logs: {workdir / 'daemon.log'})")
    code = await demo.run()
    if opts.keep or code:
        _echo(f"kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return code


class _DemoRun:
    """One demo: the daemon running the shop, the users, the monkey and the stories."""

    def __init__(self, opts: Options, daemon: Any, ports: DemoPorts, workdir: Path) -> None:
        self.opts, self.daemon, self.ports, self.workdir = opts, daemon, ports, workdir
        self.monkey: Any = None
        faults: dict[str, Fault] = {}
        if opts.chaos:
            self.monkey, faults = _chaos(daemon, opts)
        self.t0 = time.time()
        self.stories = Stories(
            daemon.runtime.bus,
            faults,
            _echo,
            t0=self.t0,
            ready_programs=frozenset({"web", "worker", "recs"}),
        )
        self.load = UserLoad(f"http://127.0.0.1:{ports.shop}", rate=opts.rate, seed=opts.seed)

    async def run(self) -> int:
        """Run until the duration is over or the daemon stops (Ctrl-C); return the exit code."""
        run = asyncio.create_task(self.daemon.run())
        load: asyncio.Task[None] | None = None
        left: int | None = None
        try:
            if not await _wait_serving(self.ports, run):
                _echo(f"the shop did not start within {START_LIMIT:g} s: see the logs")
                return 1
            _banner(self.opts, self.ports, self.workdir)
            load = asyncio.create_task(self.load.run())
            self.stories.begin(time.time())
            await self._chaos_and_wait(run)
        finally:
            if self.monkey is not None:
                await self.monkey.astop()  # every fault rolled back before anything stops
            if load is not None:
                load.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await load
                if not run.done():
                    left = await _drain_outbox(self.workdir)
            self.daemon.app.stop()
            error = await _outcome(run)
            self.stories.close()
        if error is not None:
            _echo(f"the daemon failed: {error}")
            return 1
        if load is not None:
            self._summary(time.time() - self.t0, left)
        return 0

    async def _chaos_and_wait(self, run: asyncio.Task[None]) -> None:
        began = time.monotonic()
        if self.monkey is not None:
            await asyncio.wait({run}, timeout=WARM_UP)
            if not run.done():
                self.monkey.enabled = True
                await self.monkey.astart()
        duration = self.opts.duration
        remaining = None if duration is None else duration - (time.monotonic() - began)
        await asyncio.wait({run}, timeout=remaining)

    def _summary(self, elapsed: float, outbox_left: int | None) -> None:
        from selfheal.cli._demo_report import summary_lines

        tester = self.daemon.app.synthetic_tester
        for line in summary_lines(
            seed=self.opts.seed,
            elapsed=elapsed,
            load=self.load.stats,
            figures=self.stories.figures(),
            injected=self.stories.injected,
            synthetic=dict(tester.get_status()) if tester is not None else {},
            recorded=_recorded_orders(self.workdir / "shop.db"),
            outbox_left=outbox_left,
        ):
            _echo(line)


async def _outcome(task: asyncio.Task[None]) -> BaseException | None:
    """Wait for `task`; return what it raised (None when it ended normally)."""
    try:
        await task
    except asyncio.CancelledError:
        return None
    except Exception as exc:  # shown in one line; the log has the traceback
        logging.getLogger("selfheal.demo").exception("the daemon failed")
        return exc
    return None


def _log_to(path: Path) -> None:
    """Send the daemon's log to `path`: the terminal is for the stories."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for name in ("uvicorn", "uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


_HUNG = "hung (SIGSTOP: running, answering nothing)"


def _chaos(daemon: Any, opts: Options) -> tuple[Any, dict[str, Fault]]:
    """Give the daemon's app a seeded monkey (enabled once the shop serves).

    Returns:
        The monkey, and what each of its targets does.
    """
    from selfheal.chaos import ChaosMonkey, KillProcess, KillSwitch, Safeguards, StopProcess

    sup = daemon.supervisor
    monkey = ChaosMonkey(
        enabled=False,
        seed=opts.seed,
        bus=daemon.runtime.bus,
        clock=daemon.runtime.clock,
        duration=5,
        timeout=5,
        # One fault at a time (the blast radius), and `selfheal chaos stop` works on it.
        safeguards=Safeguards(
            kill_switch=KillSwitch(daemon.plan.state_dir), max_active=1, poll_interval=0.5
        ),
    )
    faults: dict[str, Fault] = {}
    # (target, fault, what the stories say, mean seconds between faults, time limit)
    table: list[tuple[str, Any, Fault, float, float]] = []
    for n in (0, 1):
        web = f"web:{n}"
        table += [
            (
                f"kill-web-{n}",
                KillProcess(program=web, control=sup),
                Fault("web", web, "killed (SIGKILL)", ("shop",)),
                30,
                2,
            ),
            (
                f"hang-web-{n}",
                StopProcess(program=web, control=sup, grace=1),
                Fault("web", web, _HUNG, ("shop",)),
                30,
                4,
            ),
        ]
    table += [
        (
            "kill-worker",
            KillProcess(program="worker", control=sup),
            Fault("worker", "worker", "killed (SIGKILL)"),
            60,
            2,
        ),
        (
            "hang-recs",
            StopProcess(program="recs", control=sup, grace=1),
            Fault(
                "recs", "recs", "hung (SIGSTOP: running, answering nothing)", ("recommendations",)
            ),
            40,
            8,
        ),
    ]
    for name, fault, story, frequency, limit in table:
        monkey.register_fault(name, fault, frequency, duration=limit)
        faults[name] = story
    daemon.app.chaos_monkey = monkey
    return monkey, faults


def _get(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310 - our loopback URL
            return bool(response.status == 200)
    except OSError:
        return False


async def _wait_serving(ports: DemoPorts, run: asyncio.Task[None]) -> bool:
    """Wait until the shop, both web processes and the recommendations answer."""
    urls = [
        f"http://127.0.0.1:{ports.shop}/",
        *(f"http://127.0.0.1:{ports.admin(n)}/readyz" for n in (0, 1)),
        f"http://127.0.0.1:{ports.recs}/healthz",
    ]
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline and not run.done():
        answered = [await asyncio.to_thread(_get, url) for url in urls]
        if all(answered):
            return True
        await asyncio.wait({run}, timeout=0.2)
    return False


def _banner(opts: Options, ports: DemoPorts, workdir: Path) -> None:
    config = workdir / "selfheal.toml"
    length = f"for {opts.duration:g} s" if opts.duration else "until Ctrl-C"
    chaos = f"chaos on (seed {opts.seed})" if opts.chaos else "chaos off"
    _echo(
        f"\n  dashboard  http://127.0.0.1:{ports.dashboard}/   (buttons need the token in "
        f"{workdir / 'state' / 'control.token'})\n"
        f"  shop       http://127.0.0.1:{ports.shop}/   ({opts.rate:g} user requests/s, "
        f"never retried)\n"
        f"  config     {config}   (try: selfheal status -c {config})\n\n"
        f"Running {length}, {chaos}. Each incident is told here as it heals:\n"
    )


async def _drain_outbox(workdir: Path, limit: float = 10.0) -> int:
    """Wait up to `limit` s for the worker to write the queued orders; return those left."""
    deadline = time.monotonic() + limit
    left = await asyncio.to_thread(_count, workdir / "outbox.db", "outbox")
    while left and time.monotonic() < deadline:
        # Another process's file: nothing to await but time.
        await asyncio.sleep(0.2)
        left = await asyncio.to_thread(_count, workdir / "outbox.db", "outbox")
    return left


def _count(path: Path, table: str) -> int:
    if not path.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        try:
            return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # noqa: S608
        except sqlite3.OperationalError:
            return 0


def _recorded_orders(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
        try:
            rows = db.execute("SELECT order_id, count(*) FROM orders GROUP BY order_id")
        except sqlite3.OperationalError:
            return {}
        return {str(order): int(n) for order, n in rows}


commands = [demo_command]
