"""The seeded chaos schedule, its injection, and a watch over which process holds each slot.

A schedule is a list of faults at fixed offsets from the start of the load, the same for both
runs. Faults on web processes are never next to each other in the schedule (at least one
other fault, ~2 gaps, between them), so the two web processes are not taken out at once by
the schedule itself, the way chaos tools limit their blast radius; what a run does with a
fault (a plain loop leaves a hung process hung) is its own business.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from healing.forwarder import Forwarder
from healing.shop import WEB_SLOTS, Shop, start_time

WARM_UP = 5.0  # s of load before the first fault
COOL_DOWN = 8.0  # s of load after the last one, so that the last recovery is seen
GAP = 4.5  # s between faults, on average
WEB_KINDS = ("web-kill", "web-hang")
# Out of every 14 faults.
SHARES = {
    "web-kill": 3,
    "web-hang": 3,
    "worker-kill": 2,
    "recs-stop": 2,
    "recs-kill": 1,
    "db-down": 3,
}


@dataclass(frozen=True, slots=True)
class Fault:
    """One planned fault.

    Attributes:
        at: Seconds after the load starts.
        kind: ``web-kill``, ``web-hang`` (SIGSTOP, never continued), ``worker-kill``,
            ``recs-stop`` (SIGSTOP for `duration`, then SIGCONT), ``recs-kill`` or
            ``db-down`` (the forwarder to PostgreSQL off for `duration`).
        target: The slot (``web-0``...) or ``db``.
        duration: Seconds the fault lasts, for ``recs-stop`` and ``db-down``.
    """

    at: float
    kind: str
    target: str
    duration: float = 0.0


@dataclass(slots=True)
class Injected:
    """A fault as it was injected in one run."""

    fault: Fault
    t: float  # seconds since the load began
    pid: int = 0  # the process signalled (0: none, or the database)
    ended: float | None = None  # recs-stop, db-down: when the bench ended the fault


def make_schedule(seed: int, duration: float) -> list[Fault]:
    """Return the faults for a load of `duration` seconds (the same for the same arguments)."""
    rng = random.Random(seed)
    span = duration - WARM_UP - COOL_DOWN
    if span < 2 * GAP:
        raise ValueError(f"--duration must be at least {WARM_UP + COOL_DOWN + 2 * GAP:g} s")
    count = max(3, int(span / GAP))
    bag = [kind for kind, n in SHARES.items() for _ in range(n)]
    kinds: list[str] = []
    while len(kinds) < count:
        rng.shuffle(bag)
        kinds += bag
    kinds = kinds[:count]
    web = [k for k in kinds if k in WEB_KINDS]
    other = [k for k in kinds if k not in WEB_KINDS]
    # Web faults go into distinct gaps between the others: never two in a row.
    room = len(other) + 1
    while len(web) > room:
        other.append(web.pop())
        room += 1
    places = set(rng.sample(range(room), len(web)))
    order: list[str] = []
    for i in range(room):
        if i in places:
            order.append(web.pop())
        if i < len(other):
            order.append(other[i])
    step = span / len(order)
    faults = []
    for i, kind in enumerate(order):
        at = round(WARM_UP + (i + 0.5) * step + rng.uniform(-0.2, 0.2) * step, 2)
        if kind in WEB_KINDS:
            target = rng.choice(WEB_SLOTS)
        elif kind == "db-down":
            target = "db"
        else:
            target = kind.split("-")[0]
        dur = round(rng.uniform(2.5, 4.0), 2) if kind in ("recs-stop", "db-down") else 0.0
        faults.append(Fault(at, kind, target, dur))
    return faults


@dataclass
class Injector:
    """Injects a schedule into one run and watches which process holds each slot.

    Args:
        shop: The run's processes.
        forwarder: The database forwarder.
        began: When the load began (monotonic).
    """

    shop: Shop
    forwarder: Forwarder
    began: float
    injected: list[Injected] = field(default_factory=list)
    # slot -> [(seconds since the load began, pid)] each time a new process took the slot.
    history: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _db_back_at: float = 0.0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def now(self) -> float:
        """Seconds since the load began."""
        return time.monotonic() - self.began

    async def watch(self, interval: float = 0.01) -> None:
        """Record every change of process in every slot, until cancelled."""
        current: dict[str, int] = {}
        while True:
            t = self.now()
            for slot, pid in self.shop.slots().items():
                if current.get(slot) != pid:
                    current[slot] = pid
                    self.history.setdefault(slot, []).append((t, pid))
            await asyncio.sleep(interval)

    async def run(self, schedule: list[Fault]) -> None:
        """Inject each fault at its time; return after the last one has ended."""
        for fault in schedule:
            delay = self.began + fault.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._inject(fault)
        if self._tasks:
            await asyncio.gather(*self._tasks)

    async def _pid(self, slot: str) -> int:
        # A slot between two processes (a restart under way) gets its next one, if soon.
        for _ in range(40):
            pid = self.shop.slots().get(slot)
            if pid:
                return pid
            await asyncio.sleep(0.05)
        return 0

    async def _inject(self, fault: Fault) -> None:
        if fault.kind == "db-down":
            record = Injected(fault, self.now())
            await self.forwarder.switch_off()
            self._db_back_at = max(self._db_back_at, time.monotonic() + fault.duration)
            self._later(self._db_back(record))
        else:
            record = Injected(fault, self.now())
            record.pid = pid = await self._pid(fault.target)
            if pid:
                sig = signal.SIGSTOP if fault.kind.endswith(("hang", "stop")) else signal.SIGKILL
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if fault.kind == "recs-stop":
                    self._later(self._resume(record, start_time(pid)))
        self.injected.append(record)

    def _later(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _db_back(self, record: Injected) -> None:
        await asyncio.sleep(record.fault.duration)
        if time.monotonic() >= self._db_back_at - 0.001:  # not extended by a later outage
            await self.forwarder.switch_on()
        record.ended = self.now()

    async def _resume(self, record: Injected, started: int | None) -> None:
        await asyncio.sleep(record.fault.duration)
        if started is not None and start_time(record.pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(record.pid, signal.SIGCONT)
        record.ended = self.now()
