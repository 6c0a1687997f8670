"""Helpers of the supervisor tests: event recording with bounded waits, process checks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from selfheal.events import Event, EventBus

PY = sys.executable


class Recorder:
    """Records events and lets a test wait (bounded) for one."""

    def __init__(self, bus: EventBus, pattern: str = "*") -> None:
        self.events: list[Event] = []
        self._changed = asyncio.Event()
        bus.subscribe(pattern, self._on)

    def _on(self, event: Event) -> None:
        self.events.append(event)
        self._changed.set()

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]

    async def wait(self, type_: str, count: int = 1, within: float = 10.0) -> Event:
        async with asyncio.timeout(within):
            while len(self.of(type_)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(type_)[count - 1]


def alive(pid: int) -> bool:
    """Return whether `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `predicate` (a test's bounded wait for another process; not a component)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def read_int(path: Path, timeout: float = 10.0) -> int:
    """Wait for `path` to hold an integer (written by a child) and return it."""
    assert wait_until(lambda: path.exists() and path.read_text().strip().isdigit(), timeout)
    return int(path.read_text().strip())


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


@contextlib.contextmanager
def running_daemon(config: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``selfheal run CONFIG`` (state dir ``state`` beside it) until the block ends.

    Waits for its control file; stderr goes to ``daemon.err`` beside the config.
    """
    base = config.parent
    control = base / "state" / "control.json"
    with (base / "daemon.err").open("ab") as err:
        proc = subprocess.Popen(
            [PY, "-m", "selfheal", "run", str(config)],
            cwd=base,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        assert wait_until(lambda: control.exists() or proc.poll() is not None, 20)
        assert proc.poll() is None, (base / "daemon.err").read_text()
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=20)
