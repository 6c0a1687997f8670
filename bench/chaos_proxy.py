"""The fault proxy's cost: redis-benchmark against a private redis-server, direct and proxied.

Every round runs each case directly, through ``selfheal chaos proxy`` (no toxic: the forwarder
thread), and through a plain asyncio-streams proxy (the reference the design had to beat),
back to back, so all three see the same machine; the table shows medians over the rounds and
their ratios to direct. Then a 100 ms latency toxic is added and the added p99 is measured.
The CPU rows are the CPU time of redis-server (direct) or of the proxy process per request:
unlike requests/s, they hardly move when other work shares the machine. The pipeline rows add
up redis-benchmark, redis-server and the proxy: when the machine is CPU-bound (as two cores
are with these three), direct / proxied pipeline CPU is the throughput ratio to expect without
other work on the machine.

Targets (issue 11): PING with 32 connections >= 0.5x direct; 64 KiB SETs >= 0.7x direct;
<= 100 µs added p50 latency with one connection; with a 100 ms latency toxic, added p99
within 5 ms of 100 ms.

    python bench/chaos_proxy.py [--rounds 5] [--requests 100000] [--pin]

Where a C compiler is found, a relay in C with no Python at all (``bench/splice_proxy.c``:
blocking splice, a thread per direction) runs in the same rounds as a reference: what any
user-space relay pays the kernel on this machine.

``--pin`` puts redis-server on CPU 0 and redis-benchmark on CPU 1 (``taskset``); the proxies
are not pinned. Needs ``redis-server`` and ``redis-benchmark`` on PATH.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

STREAMS_PROXY = """
import asyncio, sys

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()

async def handle(client_reader, client_writer):
    up_reader, up_writer = await asyncio.open_connection("127.0.0.1", int(sys.argv[2]))
    await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer))

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on port {port} after {limit} s")


@contextlib.contextmanager
def process(argv: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def api(port: int, method: str, path: str, body: object) -> dict[str, object]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, object] = json.loads(response.read() or b"{}")
    return answer


def cpu_seconds(pid: int) -> float:
    """Return the user + system CPU time process `pid` used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    """Return the CPU time of the reaped child processes so far (the redis-benchmark runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def benchmark(port: int, pin: list[str], *args: str) -> dict[str, list[float]]:
    """Run redis-benchmark; return {test: [rps, p50 ms, p99 ms]}."""
    out = subprocess.run(
        [*pin, "redis-benchmark", "-p", str(port), *args, "--csv"],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    return {
        r["test"]: [float(r["rps"]), float(r["p50_latency_ms"]), float(r["p99_latency_ms"])]
        for r in rows
    }


TARGETS = ("direct", "fault proxy", "asyncio streams")
C_RELAY = "C splice relay"


def build_c_relay(directory: str) -> str | None:
    """Compile bench/splice_proxy.c into `directory`; None when no compiler is at hand."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        print("no C compiler: the C reference relay is left out", file=sys.stderr)
        return None
    binary = str(Path(directory) / "splice_proxy")
    source = str(Path(__file__).with_name("splice_proxy.c"))
    subprocess.run([compiler, "-O2", "-pthread", "-o", binary, source], check=True)
    return binary


#: Each case: redis-benchmark arguments, and its share of --requests.
CASES = {
    "PING, 32 connections": (("-c", "32", "-t", "ping_mbulk"), 1.0),
    "SET 64 KiB, 32 connections": (("-c", "32", "-d", "65536", "-t", "set"), 0.1),
    "PING, 1 connection": (("-c", "1", "-t", "ping_mbulk"), 0.2),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--pin", action="store_true", help="taskset redis (CPU 0), bench (1)")
    args = parser.parse_args()
    for tool in ("redis-server", "redis-benchmark") + (("taskset",) if args.pin else ()):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not installed")
    pin_server = ["taskset", "-c", "0"] if args.pin else []
    pin_bench = ["taskset", "-c", "1"] if args.pin else []
    redis_port, api_port, streams_port = free_port(), free_port(), free_port()
    redis_argv = [*pin_server, "redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"]
    redis_argv += ["--save", "", "--appendonly", "no"]
    proxy_argv = [sys.executable, "-m", "selfheal", "chaos", "proxy"]
    proxy_argv += ["--listen", f"127.0.0.1:{api_port}"]
    streams_argv = [sys.executable, "-c", STREAMS_PROXY, str(streams_port), str(redis_port)]
    with (
        tempfile.TemporaryDirectory() as build,
        process(redis_argv, redis_port) as redis_proc,
        process(proxy_argv, api_port) as proxy_proc,
        process(streams_argv, streams_port) as streams_proc,
        contextlib.ExitStack() as optional,
    ):
        created = api(
            api_port, "POST", "/proxies", {"name": "redis", "upstream": f"127.0.0.1:{redis_port}"}
        )
        proxy_port = int(str(created["listen"]).rsplit(":", 1)[1])
        ports = (redis_port, proxy_port, streams_port)
        # Whose CPU time a case costs: redis-server's when direct, else the proxy's.
        pids = (redis_proc.pid, proxy_proc.pid, streams_proc.pid)
        targets = dict(zip(TARGETS, zip(ports, pids, strict=True), strict=True))
        relay = build_c_relay(build)
        if relay is not None:
            c_port = free_port()
            c_proc = optional.enter_context(process([relay, str(c_port), str(redis_port)], c_port))
            targets[C_RELAY] = (c_port, c_proc.pid)
        results: dict[tuple[str, str], list[list[float]]] = {}
        for round_ in range(args.rounds):
            for case, (case_args, share) in CASES.items():
                n = str(int(args.requests * share))
                for target, (port, pid) in targets.items():
                    # The target's process; then the pipeline: benchmark, redis, any proxy.
                    pipeline = {redis_proc.pid, pid}
                    cpu = cpu_seconds(pid)
                    before = children_cpu() + sum(cpu_seconds(p) for p in pipeline)
                    (result,) = benchmark(port, pin_bench, "-n", n, *case_args).values()
                    after = children_cpu() + sum(cpu_seconds(p) for p in pipeline)
                    result.append((cpu_seconds(pid) - cpu) / int(n) * 1e6)
                    result.append((after - before) / int(n) * 1e6)
                    results.setdefault((case, target), []).append(result)
            print(f"round {round_ + 1}/{args.rounds} done", file=sys.stderr)
        api(
            api_port,
            "POST",
            "/proxies/redis/toxics",
            {"type": "latency", "attributes": {"latency": 100}},
        )
        toxic_n = str(max(100, args.requests // 500))
        (direct_row,) = benchmark(
            redis_port, pin_bench, "-n", toxic_n, "-c", "1", "-t", "ping_mbulk"
        ).values()
        (toxic_row,) = benchmark(
            proxy_port, pin_bench, "-n", toxic_n, "-c", "1", "-t", "ping_mbulk"
        ).values()
    report(results, args, direct_row, toxic_row)


def row(*cells: str) -> None:
    widths = (48, 12, 14, 9, 12, 9, 10)
    cols = zip(cells[1:], widths[1:], strict=True)
    print(cells[0].ljust(widths[0]) + "".join(c.rjust(w) for c, w in cols))


def report(
    results: dict[tuple[str, str], list[list[float]]],
    args: argparse.Namespace,
    direct_row: list[float],
    toxic_row: list[float],
) -> None:
    def med(case: str, target: str, i: int) -> float:
        return statistics.median(r[i] for r in results[(case, target)])

    pinned = "redis-server on CPU 0, redis-benchmark on CPU 1" if args.pin else "unpinned"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\nredis-benchmark, medians of {args.rounds} rounds ({pinned}; load average {load})")
    row("case", "direct", "fault proxy", "ratio", "streams", "ratio", "target")
    targets = {"PING, 32 connections": ">= 0.5x", "SET 64 KiB, 32 connections": ">= 0.7x"}
    for case, target in targets.items():
        direct, proxy, streams = (med(case, t, 0) for t in TARGETS)
        row(
            f"{case} (req/s)",
            f"{direct:,.0f}",
            f"{proxy:,.0f}",
            f"{proxy / direct:.2f}x",
            f"{streams:,.0f}",
            f"{streams / direct:.2f}x",
            target,
        )
    d50, p50, s50 = (med("PING, 1 connection", t, 1) * 1000 for t in TARGETS)
    row(
        "p50 latency, 1 connection (µs)",
        f"{d50:.0f}",
        f"{p50:.0f}",
        f"+{p50 - d50:.0f}",
        f"{s50:.0f}",
        f"+{s50 - d50:.0f}",
        "<= +100",
    )
    for case in CASES:
        cpu = [med(case, t, 3) for t in TARGETS]
        row(f"CPU µs/request, {case}", *(f"{c:.1f}" for c in cpu[:2]), "", f"{cpu[2]:.1f}", "", "")
    for case in targets:  # the CPU-bound cases (one connection waits more than it works)
        d, p, s = (med(case, t, 4) for t in TARGETS)
        row(
            f"pipeline CPU µs/req, {case}",
            f"{d:.1f}",
            f"{p:.1f}",
            f"{d / p:.2f}x",
            f"{s:.1f}",
            f"{d / s:.2f}x",
            "",
        )
    d50, t50, d99, t99 = direct_row[1], toxic_row[1], direct_row[2], toxic_row[2]
    row(
        "p50, 100 ms latency toxic (ms)",
        f"{d50:.3f}",
        f"{t50:.3f}",
        f"+{t50 - d50:.1f}",
        "",
        "",
        "",
    )
    row(
        "p99, 100 ms latency toxic (ms)",
        f"{d99:.3f}",
        f"{t99:.3f}",
        f"+{t99 - d99:.1f}",
        "",
        "",
        "100 ± 5",
    )
    if ("PING, 32 connections", C_RELAY) in results:
        for case in targets:
            d, c = med(case, "direct", 0), med(case, C_RELAY, 0)
            cpu, pipe = med(case, C_RELAY, 3), med(case, "direct", 4) / med(case, C_RELAY, 4)
            print(
                f"reference, {C_RELAY}: {case}: {c:,.0f} req/s = {c / d:.2f}x direct; "
                f"{cpu:.1f} CPU µs/request; pipeline CPU {pipe:.2f}x"
            )


if __name__ == "__main__":
    main()
