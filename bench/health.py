"""Health endpoint under load: selfheal's cached /readyz vs a bare endpoint vs checks-per-request.

Run: ``.venv/bin/python bench/health.py [--duration 3] [--repeat 3]`` (needs ``wrk``:
``apt-get install -y wrk``).

Each server is a uvicorn process of its own on 127.0.0.1 (one worker, no access log); load
comes from ``wrk`` in another process. With two CPUs and ``taskset``, servers run on CPU 0
and load generators on CPU 1 (``--no-pin`` to let them float). Servers:

- ``bare``: a Starlette endpoint answering ``{"status":"pass"}``.
- ``selfheal``: `selfheal.web.health_app` with 3 checks of 5 ms each (``asyncio.sleep``, like a
  database round trip), refreshed in the background every second; ``/readyz`` answers from
  the cache.
- ``per_request``: a Starlette endpoint running the same 3 checks on every request, one after
  the other, as the article's Flask route did.
- ``selfheal_hang`` / ``per_request_hang``: the same, with one of the checks hanging 2 s
  (selfheal's timeout: 100 ms).

Each server counts its check invocations (``/_calls``), so dependency calls per second are
measured at a low request rate (20 requests/s, paced, from a Python client process: wrk cannot
limit its rate) and a high one (wrk, 32 connections).

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
# With --pin: servers on CPU 0, load generators on CPU 1 (taskset), so the two never trade
# places; other processes on the machine still share both.
PIN_SERVER: list[str] = []
PIN_LOAD: list[str] = []


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
    from starlette.routing import Route

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
    app = health_app(monitor, metrics=False)  # its lifespan starts the monitor
    app.router.routes.append(Route("/_calls", calls))
    return app


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
            [*PIN_SERVER, sys.executable, __file__, "--serve", variant, "--port", str(self.port)],
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
            *PIN_LOAD,
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


def pace(port: int, rate: float, duration: float) -> None:
    """Send `rate` requests per second on one keep-alive connection; print a JSON summary."""
    import http.client
    import json

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    latencies: list[float] = []
    bad = 0
    start = time.monotonic()
    next_at = start
    while next_at < start + duration:
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        sent = time.perf_counter()
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        response.read()
        latencies.append((time.perf_counter() - sent) * 1000)
        bad += response.status >= 400
        next_at += 1 / rate
    elapsed = time.monotonic() - start
    latencies.sort()
    print(
        json.dumps(
            {
                "rps": len(latencies) / elapsed,
                "p50": latencies[len(latencies) // 2],
                "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
                "bad": bad,
            }
        )
    )


def paced(server: Server, *, rate: float, duration: float) -> Load:
    """Load at a fixed low rate, from another process (wrk cannot limit its rate)."""
    import json

    before = server.calls()
    start = time.monotonic()
    out = subprocess.run(
        [
            *PIN_LOAD,
            sys.executable,
            __file__,
            *("--pace", str(server.port), "--rate", str(rate), "--duration", str(duration)),
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    elapsed = time.monotonic() - start
    calls = server.calls() - before
    summary = json.loads(out)
    return Load(summary["rps"], summary["p50"], summary["p99"], summary["bad"], calls / elapsed)


def asgi_cost(variant: str, n: int = 20_000) -> float:
    """Return microseconds per /readyz call of the variant's ASGI app, in this process."""

    async def go() -> float:
        app = build(variant)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/readyz",
            "raw_path": b"/readyz",
            "root_path": "",
            "query_string": b"",
            "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            pass

        lifespan = getattr(app.router, "lifespan_context", None)
        async with lifespan(app) if lifespan is not None else asyncio.timeout(None):
            await asyncio.sleep(0.05)  # the first background results
            for _ in range(1000):
                await app(scope, receive, send)
            start = time.perf_counter()
            for _ in range(n):
                await app(scope, receive, send)
            return (time.perf_counter() - start) / n * 1e6

    return asyncio.run(go())


SCENARIOS = [
    ("bare", "high"),
    ("selfheal", "high"),
    ("selfheal", "low"),
    ("per_request", "high"),
    ("per_request", "low"),
    ("selfheal_hang", "high"),
    ("selfheal_hang", "low"),
    ("per_request_hang", "high"),
]


def median_load(runs: list[Load]) -> Load:
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
    parser.add_argument("--repeat", type=int, default=3, help="rounds over all scenarios")
    parser.add_argument("--connections", type=int, default=32, help="high-rate connections")
    parser.add_argument("--rate", type=float, default=20.0, help="low rate, requests/s")
    parser.add_argument(
        "--pin",
        action=argparse.BooleanOptionalAction,
        default=bool(shutil.which("taskset")) and (os.cpu_count() or 1) >= 2,
        help="servers on CPU 0, load on CPU 1 (default when taskset and 2 CPUs exist)",
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pace", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port)
        return 0
    if args.pace:
        pace(args.pace, args.rate, args.duration)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    if args.pin:
        PIN_SERVER[:] = ["taskset", "-c", "0"]
        PIN_LOAD[:] = ["taskset", "-c", "1"]
    # All servers up at once (idle ones cost nothing) and the scenarios interleaved round by
    # round, so a neighbour's load on this shared machine hits every variant alike.
    servers: dict[str, Server] = {}
    runs: dict[tuple[str, str], list[Load]] = {scenario: [] for scenario in SCENARIOS}
    try:
        for variant, _ in SCENARIOS:
            if variant not in servers:
                servers[variant] = Server(variant)
        for server in servers.values():
            wrk(server, connections=args.connections, duration=1)  # warm up
        for round_no in range(1, args.repeat + 1):
            # Every other round runs backwards (A B ... B A): drifting load evens out.
            order = SCENARIOS if round_no % 2 else SCENARIOS[::-1]
            for variant, rate in order:
                if rate == "high":
                    load = wrk(
                        servers[variant], connections=args.connections, duration=args.duration
                    )
                else:
                    load = paced(servers[variant], rate=args.rate, duration=args.duration)
                runs[variant, rate].append(load)
                print(
                    f"round {round_no} {variant:<17} {rate:<4} "
                    f"{load.rps:>8.0f} req/s  p50 {load.p50_ms:>8.2f} ms  "
                    f"p99 {load.p99_ms:>8.2f} ms  non-2xx {load.non_2xx:>5}  "
                    f"dep calls/s {load.dep_calls_per_s:>8.1f}",
                    flush=True,
                )
    finally:
        for server in servers.values():
            server.stop()

    result = {scenario: median_load(loads) for scenario, loads in runs.items()}
    pinned = "servers on CPU 0, load on CPU 1" if args.pin else "not pinned"
    print(
        f"\nmedian of {args.repeat} rounds of {args.duration:g} s; high: wrk -t1 "
        f"-c{args.connections}, low: {args.rate:g} req/s on one connection; {pinned}"
    )
    print(
        f"{'server':<17} {'rate':<4} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'dep calls/s':>12}"
    )
    for (variant, rate), load in result.items():
        print(
            f"{variant:<17} {rate:<4} {load.rps:>8.0f} {load.p50_ms:>8.2f} {load.p99_ms:>8.2f} "
            f"{load.dep_calls_per_s:>12.1f}"
        )
    ours = result["selfheal", "high"]
    ours_low, naive, naive_low = (
        result["selfheal", "low"],
        result["per_request", "high"],
        result["per_request", "low"],
    )
    hang, hang_low = result["selfheal_hang", "high"], result["selfheal_hang", "low"]
    naive_hang = result["per_request_hang", "high"]
    # Ratios of runs made next to each other, then the median: robust to drifting load.
    ratios = [
        o.rps / b.rps for o, b in zip(runs["selfheal", "high"], runs["bare", "high"], strict=True)
    ]
    ratio = statistics.median(ratios)
    naive_ratio = statistics.median(
        n.rps / b.rps
        for n, b in zip(runs["per_request", "high"], runs["bare", "high"], strict=True)
    )
    budget_ms = TIMEOUT * 1000 + 10
    print()
    rounds = ", ".join(f"{r:.2f}" for r in ratios)
    print(f"selfheal / bare requests/s: {ratio:.2f} (target >= 0.80; rounds: {rounds})")
    bare_us, ours_us = asgi_cost("bare"), asgi_cost("selfheal")
    print(f"in-process ASGI cost per /readyz: bare {bare_us:.1f} us, selfheal {ours_us:.1f} us")
    print(f"per-request / bare requests/s: {naive_ratio:.2f}")
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
        f"{args.connections} connections, {hang_low.p99_ms:.2f} ms at {args.rate:g} req/s "
        f"(target < {budget_ms:.0f} ms); per request p99 {naive_hang.p99_ms:.0f} ms"
    )
    # Background refresh: the call rate must not follow the request rate. Allow for jitter
    # and the measurement window: within 30 % of 3 per interval at both rates.
    expected = 3 / INTERVAL
    independent = all(
        abs(load.dep_calls_per_s - expected) <= 0.3 * expected
        for load in (ours, ours_low, hang, hang_low)
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
