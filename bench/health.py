"""Health endpoint under load: selfheal's cached /readyz vs a bare endpoint vs checks-per-request.

Run: ``.venv/bin/python bench/health.py [--duration 3] [--repeat 3]`` (needs ``wrk``:
``apt-get install -y wrk``).

Each server is a uvicorn process of its own on 127.0.0.1 (one worker, no access log); load
comes from ``wrk`` in another process. Servers:

- ``bare``: a Starlette endpoint answering ``{"status":"pass"}``.
- ``selfheal``: `selfheal.web.health_app` with 3 checks of 5 ms each (``asyncio.sleep``, like a
  database round trip), refreshed in the background every second; ``/readyz`` answers from
  the cache.
- ``per_request``: a Starlette endpoint running the same 3 checks on every request, one after
  the other, as the article's Flask route did.
- ``selfheal_hang`` / ``per_request_hang``: the same, with one of the checks hanging 2 s
  (selfheal's timeout: 100 ms).

Each server counts its check invocations (``/_calls``), so dependency calls per second are
measured at a low request rate (1 connection) and a high one (32 connections).

Targets (issue #3): selfheal's requests/s >= 0.8x bare; dependency calls/s independent of the
request rate; with one dependency hanging 2 s, selfheal's p99 < check timeout + 10 ms.
Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

CHECK_SECONDS = 0.005
HANG_SECONDS = 2.0
TIMEOUT = 0.1
INTERVAL = 1.0
CALLS = [0]


# -- the servers (run in their own process with --serve) ----------------------------------


async def dependency() -> None:
    CALLS[0] += 1
    await asyncio.sleep(CHECK_SECONDS)


async def hanging_dependency() -> None:
    CALLS[0] += 1
    await asyncio.sleep(HANG_SECONDS)


def build(variant: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Mount, Route

    async def calls(request: Request) -> PlainTextResponse:
        return PlainTextResponse(str(CALLS[0]))

    checks = [dependency, dependency, dependency]
    if variant.endswith("_hang"):
        checks[2] = hanging_dependency
    if variant == "bare":

        async def bare(request: Request) -> JSONResponse:
            return JSONResponse({"status": "pass"})

        return Starlette(routes=[Route("/readyz", bare), Route("/_calls", calls)])
    if variant.startswith("per_request"):

        async def per_request(request: Request) -> JSONResponse:
            results = {}
            for n, check in enumerate(checks):
                try:
                    await check()
                    results[f"dep{n}"] = "pass"
                except Exception:
                    results[f"dep{n}"] = "fail"
            ok = all(v == "pass" for v in results.values())
            return JSONResponse(
                {"status": "pass" if ok else "fail", "checks": results},
                status_code=200 if ok else 503,
            )

        return Starlette(routes=[Route("/readyz", per_request), Route("/_calls", calls)])
    from selfheal.health import HealthMonitor
    from selfheal.web import health_app

    monitor = HealthMonitor()
    for n, check in enumerate(checks):
        monitor.register(f"dep{n}", check, interval=INTERVAL, timeout=TIMEOUT, critical=n < 2)
    app = health_app(monitor, metrics=False)
    return Starlette(
        routes=[Route("/_calls", calls), Mount("/", app)],
        lifespan=lambda _app: app.router.lifespan_context(app),
    )


def serve(variant: str, port: int) -> None:
    import uvicorn

    uvicorn.run(build(variant), host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the driver ---------------------------------------------------------------------------


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    dep_calls_per_s: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", variant, "--port", str(self.port)],
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 15
        while True:
            try:
                self.get("/_calls")
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"server {variant} did not start") from None
                time.sleep(0.05)

    def get(self, path: str) -> str:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def calls(self) -> int:
        return int(self.get("/_calls"))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"cannot parse wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(server: Server, *, connections: int, duration: float) -> Load:
    before = server.calls()
    start = time.monotonic()
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration:g}s",
            "--timeout",
            "5s",
            "--latency",
            f"http://127.0.0.1:{server.port}/readyz",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    elapsed = time.monotonic() - start
    calls = server.calls() - before
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Load(rps, p50, p99, int(bad.group(1)) if bad else 0, calls / elapsed)


def measure(variant: str, *, connections: int, duration: float, repeat: int) -> Load:
    server = Server(variant)
    try:
        wrk(server, connections=connections, duration=1)  # warm up
        runs = [wrk(server, connections=connections, duration=duration) for _ in range(repeat)]
    finally:
        server.stop()
    return Load(
        rps=statistics.median(r.rps for r in runs),
        p50_ms=statistics.median(r.p50_ms for r in runs),
        p99_ms=statistics.median(r.p99_ms for r in runs),
        non_2xx=sum(r.non_2xx for r in runs),
        dep_calls_per_s=statistics.median(r.dep_calls_per_s for r in runs),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    parser.add_argument("--repeat", type=int, default=3, help="wrk runs per scenario (median)")
    parser.add_argument("--connections", type=int, default=32, help="high-rate connections")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2

    rows: list[tuple[str, str, Load]] = []

    def run(variant: str, rate: str, connections: int) -> Load:
        load = measure(variant, connections=connections, duration=args.duration, repeat=args.repeat)
        rows.append((variant, rate, load))
        print(
            f"{variant:<17} {rate:<5} c={connections:<3} {load.rps:>9.0f} req/s "
            f"p50 {load.p50_ms:>8.2f} ms  p99 {load.p99_ms:>8.2f} ms  "
            f"non-2xx {load.non_2xx:>6}  dep calls/s {load.dep_calls_per_s:>9.1f}",
            flush=True,
        )
        return load

    high = args.connections
    bare = run("bare", "high", high)
    ours = run("selfheal", "high", high)
    ours_low = run("selfheal", "low", 1)
    naive = run("per_request", "high", high)
    naive_low = run("per_request", "low", 1)
    hang = run("selfheal_hang", "high", high)
    hang_low = run("selfheal_hang", "low", 1)
    naive_hang = run("per_request_hang", "high", high)

    ratio = ours.rps / bare.rps
    budget_ms = TIMEOUT * 1000 + 10
    print()
    print(f"selfheal / bare requests/s: {ratio:.2f} (target >= 0.80)")
    print(f"per-request / bare requests/s: {naive.rps / bare.rps:.2f}")
    print(
        f"dependency calls/s, selfheal: {ours_low.dep_calls_per_s:.1f} at {ours_low.rps:.0f} "
        f"req/s, {ours.dep_calls_per_s:.1f} at {ours.rps:.0f} req/s "
        f"(3 checks every {INTERVAL:g} s: {3 / INTERVAL:.1f})"
    )
    print(
        f"dependency calls/s, per request: {naive_low.dep_calls_per_s:.1f} at "
        f"{naive_low.rps:.0f} req/s, {naive.dep_calls_per_s:.1f} at {naive.rps:.0f} req/s"
    )
    print(
        f"one dependency hanging {HANG_SECONDS:g} s: selfheal p99 {hang.p99_ms:.2f} ms at "
        f"{high} connections, {hang_low.p99_ms:.2f} ms at 1 (target < {budget_ms:.0f} ms); "
        f"per request p99 {naive_hang.p99_ms:.0f} ms"
    )
    # Background refresh: the call rate must not follow the request rate. Allow for jitter
    # and measurement windows: within 30 % of each other and of 3 per interval.
    expected = 3 / INTERVAL
    independent = all(
        abs(load.dep_calls_per_s - expected) <= 0.3 * expected for load in (ours, ours_low)
    )
    missed = []
    if ratio < 0.8:
        missed.append("requests/s below 0.8x bare")
    if not independent:
        missed.append("dependency calls/s depend on the request rate")
    if max(hang.p99_ms, hang_low.p99_ms) >= budget_ms:
        missed.append("p99 with a hanging dependency above timeout + 10 ms")
    for reason in missed:
        print(f"MISSED: {reason}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
