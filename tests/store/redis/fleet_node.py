"""One node of a test fleet, run as its own process: ``python fleet_node.py ROLE URL PREFIX ...``.

The test drives it through stdin (one word a line) and reads what it reports on stdout (one
JSON object a line). Roles:

- ``halfopen N``: 16 threads call a breaker (shared store) that the test opened; each trial
  call that gets through blocks until ``release``. ``count`` reports how many got through.
- ``serve``: one thread calls a breaker in a loop; ``fail`` makes the calls fail (the breaker
  trips on this node), ``report`` tells the calls served and the state.
- ``engine TTL HOLD``: a recovery engine with one fleet rule on ``health.db.failed``; ``fail``
  publishes that event; the rule's action records itself in Redis and takes HOLD seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from typing import Any

from selfheal.events import Event, EventBus
from selfheal.policies import CircuitBreaker, CircuitBreakerError
from selfheal.recovery import CallFunction, RecoveryEngine, Rule
from selfheal.store.redis import FleetLeases, RedisBreakerStore, connect


def say(**data: Any) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


def commands() -> Any:
    for line in sys.stdin:
        yield line.strip()


def halfopen(url: str, prefix: str, trials: int) -> None:
    store = RedisBreakerStore(url, prefix=prefix)
    breaker = CircuitBreaker(1, 0.3, name="dep", half_open_max_calls=trials, store=store)
    assert store.ready(10)
    entered = 0
    lock = threading.Lock()
    release = threading.Event()
    stop = threading.Event()

    def trial() -> None:
        nonlocal entered
        with lock:
            entered += 1
        release.wait(30)

    def worker() -> None:
        while not stop.is_set():
            try:
                breaker.call(trial)
            except CircuitBreakerError:
                time.sleep(0.001)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    say(ready=True)
    for word in commands():
        if word == "go":
            for t in threads:
                t.start()
        elif word == "state":
            say(state=breaker.state.value)
        elif word == "count":
            stop.set()
            with lock:
                say(entered=entered)
        elif word == "release":
            release.set()
            for t in threads:
                t.join()
            say(released=True, state=breaker.state.value)
            store.close()
            return


def serve(url: str, prefix: str) -> None:
    bus = EventBus()
    fleet: list[str] = []
    bus.subscribe("fleet.redis.*", lambda e: fleet.append(e.type))
    store = RedisBreakerStore(url, prefix=prefix, timeout=0.2, bus=bus)
    breaker = CircuitBreaker(3, 60, name="dep", store=store, bus=bus)
    assert store.ready(10)
    served = 0
    failing = threading.Event()
    stop = threading.Event()

    def call() -> None:
        if failing.is_set():
            raise ConnectionError("dependency down")

    def worker() -> None:
        nonlocal served
        while not stop.is_set():
            try:
                breaker.call(call)
                served += 1
            except (CircuitBreakerError, ConnectionError):
                pass
            time.sleep(0.001)

    thread = threading.Thread(target=worker)
    thread.start()
    say(ready=True)
    for word in commands():
        if word == "fail":
            failing.set()
        elif word == "report":
            say(served=served, state=breaker.state.value, fleet=fleet, degraded=store.degraded)
        elif word == "quit":
            break
    stop.set()
    thread.join()
    store.close()


async def engine(url: str, prefix: str, ttl: float, hold: float) -> None:
    node = f"node-{os.getpid()}"
    redis = connect(url)

    async def recover(event: Event) -> None:
        redis.rpush(f"{prefix}:actions", f"{node}:start")
        await asyncio.sleep(hold)
        redis.rpush(f"{prefix}:actions", f"{node}:done")

    bus = EventBus()
    loop = asyncio.get_running_loop()
    bus.subscribe("recovery.*", lambda e: say(type=e.type, reason=e.data.get("reason")))
    rule = Rule(
        "health.db.failed",
        (CallFunction(recover, "restart-db"),),
        name="db",
        fleet=True,
        timeout=hold + 30,
    )
    leases = FleetLeases(url, ttl=ttl, prefix=prefix, holder=node)
    async with RecoveryEngine(bus, [rule], leases=leases):
        say(ready=True, node=node)
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            if line == "fail":
                bus.emit("health.db.failed", "checks", "error")
            elif line == "quit":
                break
    await leases.stop()


def main() -> None:
    role, url, prefix, *rest = sys.argv[1:]
    if role == "halfopen":
        halfopen(url, prefix, int(rest[0]))
    elif role == "serve":
        serve(url, prefix)
    elif role == "engine":
        asyncio.run(engine(url, prefix, float(rest[0]), float(rest[1])))
    else:
        raise SystemExit(f"unknown role {role!r}")


if __name__ == "__main__":
    main()
