"""The fleet on Redis: per-call cost, trip propagation, stream throughput, recovery takeover.

Run: ``.venv/bin/python bench/fleet.py [--calls N] [--trips N] [--events N] [--kills N]``.

Starts a private ``redis-server`` on a free loopback port (never 6379) and measures, in the
same run:

1. Per-call overhead of a CLOSED breaker over a bare call: selfheal with its shared Redis store
   against pybreaker with ``CircuitRedisStorage`` on the same Redis (target: selfheal at most
   1/2 of pybreaker). Memory-backed variants of both are shown for scale.
2. Trip propagation: one node process opens a breaker, two other node processes time when
   their breaker of the same name turned OPEN (target: p99 under 10 ms).
3. Events per second through the stream, three node processes publishing through a `Journal`
   on `RedisJournalStore` until every event is in Redis.
4. Recovery takeover: three engine processes, the one running the recovery is SIGKILLed;
   time until another node starts the recovery (lease ttl 1 s, renewed every ttl/3, waiting
   nodes look every ttl/4: expect between ~0.7 and ~1.3 s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
ENV = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
}


# -- the private Redis --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis() -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.01)
    raise SystemExit("redis-server did not start")


# -- nodes: this script run with --node ROLE ------------------------------------------------


def say(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def node_watch(url: str) -> None:
    from selfheal import CircuitBreaker, EventBus
    from selfheal.store.redis import RedisBreakerStore

    bus = EventBus()
    store = RedisBreakerStore(url, prefix="vis")
    CircuitBreaker(5, 3600, name="vis", store=store, bus=bus)
    bus.subscribe("breaker.vis.*", lambda e: say(type=e.type, at=time.time_ns()))
    assert store.ready(10)
    say(ready=True)
    sys.stdin.readline()  # until told to stop
    store.close()


def node_trip(url: str) -> None:
    from selfheal import CircuitBreaker
    from selfheal.store.redis import RedisBreakerStore

    store = RedisBreakerStore(url, prefix="vis")
    breaker = CircuitBreaker(5, 3600, name="vis", store=store)
    assert store.ready(10)
    say(ready=True)
    for line in sys.stdin:
        word = line.strip()
        if word == "open":
            at = time.time_ns()
            breaker.open()
            say(at=at)
        elif word == "close":
            breaker.close()
            say(ok=True)
        else:
            break
    store.close()


def node_publish(url: str, count: int) -> None:
    from selfheal import EventBus
    from selfheal.store import Journal, JournalOptions
    from selfheal.store.redis import RedisJournalStore

    bus = EventBus()
    store = RedisJournalStore(url, prefix="load")
    journal = Journal(bus, store, options=JournalOptions(max_pending=count + 1))
    journal.open()
    say(ready=True)
    sys.stdin.readline()
    start = time.perf_counter()
    for i in range(count):
        bus.emit("load.node.tick", "bench", "info", i=i)
    journal.close()  # returns once everything accepted is in Redis
    say(seconds=time.perf_counter() - start, dropped=journal.dropped + store.dropped)


async def node_engine(url: str, prefix: str) -> None:
    from selfheal import EventBus
    from selfheal.recovery import CallFunction, RecoveryEngine, Rule
    from selfheal.store.redis import FleetLeases, connect

    redis = connect(url)
    node = f"n{os.getpid()}"

    async def recover(event: Any) -> None:
        redis.rpush(f"{prefix}:started", f"{node} {time.time_ns()}")
        await asyncio.sleep(30)

    bus = EventBus()
    rule = Rule(
        "db.x.failed", (CallFunction(recover, "recover"),), name="db", fleet=True, timeout=60
    )
    leases = FleetLeases(url, ttl=1.0, prefix=prefix, holder=node)
    async with RecoveryEngine(bus, [rule], leases=leases):
        say(ready=True, node=node)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)
        bus.emit("db.x.failed", "bench", "error")
        await loop.run_in_executor(None, sys.stdin.readline)
    await leases.stop()


class Node:
    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE), "--node", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        self.ready = self.read()

    def send(self, word: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(word + "\n")
        self.proc.stdin.flush()

    def read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"a node exited: {self.proc.wait(5)}")
        return dict(json.loads(line))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


# -- 1. per-call overhead ---------------------------------------------------------------------


def per_call(url: str, calls: int, repeats: int) -> dict[str, float]:
    import pybreaker
    import redis

    from selfheal import CircuitBreaker
    from selfheal.store.redis import RedisBreakerStore

    sys.path.insert(0, str(HERE.parent))
    from _harness import Case, measure, median

    port = int(url.rsplit(":", 1)[1].split("/", maxsplit=1)[0])
    store = RedisBreakerStore(url, prefix="percall")

    def ok() -> int:
        return 1

    def shared() -> Any:
        breaker = CircuitBreaker(5, 30, name="percall", store=store)
        store.ready(10)
        return lambda: breaker.call(ok)

    def memory() -> Any:
        breaker = CircuitBreaker(5, 30, name="percall")
        return lambda: breaker.call(ok)

    def py_redis() -> Any:
        storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, redis.Redis(port=port), namespace="percall"
        )
        breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30, state_storage=storage)
        return lambda: breaker.call(ok)

    def py_memory() -> Any:
        breaker = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=30)
        return lambda: breaker.call(ok)

    cases = {
        "bare call": Case("b", "bare", lambda: ok),
        "selfheal, shared Redis store": Case("b", "s", shared),
        "selfheal, memory": Case("b", "m", memory),
        "pybreaker, CircuitRedisStorage": Case("b", "p", py_redis),
        "pybreaker, memory": Case("b", "pm", py_memory),
    }
    raw = {name: median(measure(case, calls, repeats)) for name, case in cases.items()}
    store.close()
    bare = raw.pop("bare call")
    return {name: max(0.0, ns - bare) for name, ns in raw.items()}


# -- 2. trip propagation -----------------------------------------------------------------------


def propagation(url: str, trips: int) -> list[float]:
    watchers = [Node("watch", url) for _ in range(2)]
    tripper = Node("trip", url)
    latencies: list[float] = []
    try:
        for _ in range(trips):
            tripper.send("open")
            at = tripper.read()["at"]
            for w in watchers:
                seen = w.read()
                assert seen["type"] == "breaker.vis.opened", seen
                latencies.append((seen["at"] - at) / 1e6)
            tripper.send("close")
            tripper.read()
            for w in watchers:
                assert w.read()["type"] == "breaker.vis.closed"
    finally:
        for node in (*watchers, tripper):
            node.send("quit")
            node.stop()
    return latencies


# -- 3. stream throughput ----------------------------------------------------------------------


def throughput(url: str, events: int) -> tuple[float, int, int]:
    from selfheal.store.redis import connect

    nodes = [Node("publish", url, str(events)) for _ in range(3)]
    try:
        start = time.perf_counter()
        for node in nodes:
            node.send("go")
        reports = [node.read() for node in nodes]
        wall = time.perf_counter() - start
    finally:
        for node in nodes:
            node.stop()
    stored = int(connect(url).xlen("load:events"))
    return 3 * events / wall, stored, sum(r["dropped"] for r in reports)


# -- 4. recovery takeover ----------------------------------------------------------------------


def takeover(url: str, kills: int) -> list[float]:
    from selfheal.store.redis import connect

    redis = connect(url)
    times: list[float] = []
    for round_ in range(kills):
        prefix = f"take{round_}"
        nodes = [Node("engine", url, prefix) for _ in range(3)]
        try:
            for node in nodes:
                node.send("fail")
            deadline = time.monotonic() + 20
            while redis.llen(f"{prefix}:started") < 1 and time.monotonic() < deadline:
                time.sleep(0.005)
            holder = redis.lindex(f"{prefix}:started", 0).split()[0]
            victim = next(n for n in nodes if n.ready["node"] == holder)
            time.sleep(0.3)  # mid-recovery, after a renewal or so
            killed = time.time_ns()
            os.kill(victim.proc.pid, signal.SIGKILL)
            while redis.llen(f"{prefix}:started") < 2 and time.monotonic() < deadline + 20:
                time.sleep(0.002)
            started = int(redis.lindex(f"{prefix}:started", 1).split()[1])
            times.append((started - killed) / 1e9)
        finally:
            for node in nodes:
                node.stop()
    return times


# -- the report --------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trips", type=int, default=200)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--only", default="1234", help="which parts to run, e.g. 24")
    parser.add_argument("--node", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.node:
        role, url, *rest = args.node
        if role == "watch":
            node_watch(url)
        elif role == "trip":
            node_trip(url)
        elif role == "publish":
            node_publish(url, int(rest[0]))
        elif role == "engine":
            asyncio.run(node_engine(url, rest[0]))
        return

    server, url = start_redis()
    try:
        print(f"private redis-server at {url}; {os.cpu_count()} CPUs\n")
        if "1" in args.only:
            report_per_call(url, args.calls, args.repeats)
        if "2" in args.only:
            report_propagation(url, args.trips)
        if "3" in args.only:
            report_throughput(url, args.events)
        if "4" in args.only:
            report_takeover(url, args.kills)
    finally:
        server.terminate()
        server.wait(10)


def report_per_call(url: str, calls: int, repeats: int) -> None:
    costs = per_call(url, calls, repeats)
    print("1. CLOSED breaker, ns per call over a bare call (median of repeats)")
    for name, ns in costs.items():
        print(f"   {name:34} {ns:10.0f}")
    ratio = costs["selfheal, shared Redis store"] / costs["pybreaker, CircuitRedisStorage"]
    verdict = "met" if ratio <= 0.5 else "MISSED"
    print(f"   selfheal shared / pybreaker Redis = {ratio:.4f} (target <= 0.5: {verdict})\n")


def report_propagation(url: str, trips: int) -> None:
    lat = propagation(url, trips)
    p99 = pct(lat, 0.99)
    print(f"2. trip on one node seen by two others ({len(lat)} observations, ms)")
    print(
        f"   p50 {pct(lat, 0.5):.2f}  p90 {pct(lat, 0.9):.2f}  p99 {p99:.2f}  "
        f"max {max(lat):.2f}  (target p99 < 10 ms: {'met' if p99 < 10 else 'MISSED'})\n"
    )


def report_throughput(url: str, events: int) -> None:
    rate, stored, dropped = throughput(url, events)
    print(f"3. stream: 3 nodes x {events} events through Journal -> RedisJournalStore")
    print(f"   {rate:,.0f} events/s stored; in the stream: {stored}; dropped: {dropped}\n")


def report_takeover(url: str, kills: int) -> None:
    taken = takeover(url, kills)
    print(f"4. recovery takeover after SIGKILL of the acting node ({len(taken)} kills, s)")
    print(
        f"   median {statistics.median(taken):.3f}  min {min(taken):.3f}  "
        f"max {max(taken):.3f}  (lease ttl 1 s)"
    )


if __name__ == "__main__":
    main()
