"""Breakers under concurrency: does CLOSED serialise calls, how many half-open probes get in?

Run: ``.venv/bin/python bench/breaker_halfopen.py [--repeats N]``.

1. Throughput when CLOSED: 16 threads x 5 calls of 20 ms through one breaker. Without
   serialisation that takes ~100 ms; a breaker that holds a lock around the call takes
   16 x 5 x 20 = 1,600 ms.
2. Half-open admission: trip each breaker, wait out its recovery timeout, then start 16
   concurrent calls (threads, or asyncio tasks for async breakers) of 50 ms each, and count how
   many ran inside the breaker at once (peak) and how many got in before the first probe
   finished. A breaker that allows one trial should show 1 and 1.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import circuitbreaker
import pybreaker
from hyx.circuitbreaker import consecutive_breaker

from selfheal import CircuitBreaker

THREADS = 16
CALLS = 5
CALL_SECONDS = 0.02
PROBE_SECONDS = 0.05
RECOVERY = 0.2


class TrialError(Exception):
    pass


# -- 1. throughput when closed --------------------------------------------------------------


def _sleep_call() -> None:
    time.sleep(CALL_SECONDS)


def _closed_makers() -> dict[str, Callable[[], Callable[[], Any]]]:
    return {
        "bare": lambda: _sleep_call,
        "selfheal": lambda: CircuitBreaker(name="bench")(_sleep_call),
        "pybreaker": lambda: pybreaker.CircuitBreaker()(_sleep_call),
        "circuitbreaker": lambda: circuitbreaker.CircuitBreaker(name="closed")(_sleep_call),
    }


def closed_throughput_ms(protected: Callable[[], Any]) -> float:
    start_line = threading.Barrier(THREADS + 1)

    def worker() -> None:
        start_line.wait()
        for _ in range(CALLS):
            protected()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return (time.perf_counter() - started) * 1000


# -- 2. half-open probes --------------------------------------------------------------------


class Probe:
    """Counts calls that get inside the breaker, and the peak of them at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.peak = 0
        self.admitted = 0
        self.admitted_during_first = 0
        self.first_done = False

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.admitted += 1
            self.peak = max(self.peak, self.inside)
            if not self.first_done:
                self.admitted_during_first += 1

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1
            self.first_done = True


def _trip_sync(protected_fail: Callable[[], Any]) -> None:
    for _ in range(3):
        try:
            protected_fail()
        except Exception:
            continue


def probes_sync(make: Callable[[Callable[[], Any]], Callable[[], Any]]) -> tuple[int, int, int]:
    probe = Probe()
    mode = {"fail": True}

    def target() -> None:
        if mode["fail"]:
            raise TrialError
        probe.enter()
        try:
            time.sleep(PROBE_SECONDS)
        finally:
            probe.leave()

    protected = make(target)
    _trip_sync(protected)
    mode["fail"] = False
    time.sleep(RECOVERY * 1.5)
    start_line = threading.Barrier(THREADS)
    rejected = [0]

    def worker() -> None:
        start_line.wait()
        try:
            protected()
        except Exception:
            with probe.lock:
                rejected[0] += 1

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return probe.peak, probe.admitted_during_first, rejected[0]


def probes_async(
    make: Callable[[Callable[[], Awaitable[None]]], Callable[[], Awaitable[Any]]],
) -> tuple[int, int, int]:
    probe = Probe()
    mode = {"fail": True}

    async def target() -> None:
        if mode["fail"]:
            raise TrialError
        probe.enter()
        try:
            await asyncio.sleep(PROBE_SECONDS)
        finally:
            probe.leave()

    async def run() -> int:
        protected = make(target)
        for _ in range(3):
            try:
                await protected()
            except Exception:
                continue
        mode["fail"] = False
        await asyncio.sleep(RECOVERY * 1.5)

        async def one() -> int:
            try:
                await protected()
            except Exception:
                return 1
            return 0

        return sum(await asyncio.gather(*(one() for _ in range(THREADS))))

    rejected = asyncio.run(run())
    return probe.peak, probe.admitted_during_first, rejected


# Factories, not lambdas over one instance: every measurement gets a fresh breaker.
def _selfheal(fn: Callable[..., Any]) -> Callable[..., Any]:
    return CircuitBreaker(1, RECOVERY, name="probe")(fn)


def _selfheal_4(fn: Callable[..., Any]) -> Callable[..., Any]:
    return CircuitBreaker(1, RECOVERY, name="probe4", half_open_max_calls=4)(fn)


def _pybreaker(fn: Callable[[], Any]) -> Callable[[], Any]:
    return pybreaker.CircuitBreaker(fail_max=1, reset_timeout=RECOVERY)(fn)


def _circuitbreaker(fn: Callable[..., Any]) -> Callable[..., Any]:
    breaker = circuitbreaker.CircuitBreaker(failure_threshold=1, recovery_timeout=RECOVERY)
    return breaker(fn)


def _hyx(fn: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[Any]]:
    return consecutive_breaker(failure_threshold=1, recovery_time_secs=RECOVERY)(fn)


SYNC_PEERS: dict[str, Callable[[Callable[[], Any]], Callable[[], Any]]] = {
    "selfheal": _selfheal,
    "selfheal N=4": _selfheal_4,
    "pybreaker": _pybreaker,
    "circuitbreaker": _circuitbreaker,
}

ASYNC_PEERS: dict[str, Callable[[Callable[[], Awaitable[None]]], Callable[[], Awaitable[Any]]]] = {
    "selfheal": _selfheal,
    "selfheal N=4": _selfheal_4,
    "circuitbreaker": _circuitbreaker,
    "hyx": _hyx,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    print(
        f"1. CLOSED: {THREADS} threads x {CALLS} calls of {CALL_SECONDS * 1000:.0f} ms, "
        f"wall ms (median / min of {args.repeats})"
    )
    for name, make in _closed_makers().items():
        runs = [closed_throughput_ms(make()) for _ in range(args.repeats)]
        print(f"  {name:<16}{statistics.median(runs):>9.0f}{min(runs):>9.0f}")

    print(
        f"\n2. HALF_OPEN: {THREADS} concurrent calls of {PROBE_SECONDS * 1000:.0f} ms after the "
        "recovery timeout (1 trial allowed where configurable)"
    )
    print(f"  {'breaker':<24}{'peak inside':>12}{'in before 1st ended':>21}{'rejected':>10}")
    for name, make in SYNC_PEERS.items():
        peak, during, rejected = probes_sync(make)
        print(f"  {name + ' (threads)':<24}{peak:>12}{during:>21}{rejected:>10}")
    for name, amake in ASYNC_PEERS.items():
        peak, during, rejected = probes_async(amake)
        print(f"  {name + ' (tasks)':<24}{peak:>12}{during:>21}{rejected:>10}")


if __name__ == "__main__":
    main()
