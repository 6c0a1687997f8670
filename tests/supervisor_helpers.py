"""Helpers of the supervisor tests: programs to run, event recording with bounded waits,
process checks, a supervisor made to die."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from selfheal.events import Event, EventBus
from selfheal.supervisor import BackoffSpec, ProgramSpec, Supervisor
from selfheal.testing import FakeClock

PY = sys.executable

#: A program that says it is up, then runs for a minute.
SLEEP = (PY, "-c", "import time; print('up', flush=True); time.sleep(60)")
#: Backoff in milliseconds: restarts that tests need not wait for.
FAST = BackoffSpec(initial=0.005, factor=2.0, maximum=0.05, jitter=0.0, reset_after=30.0)

# A child that speaks sd_notify the way every library does: datagrams to $NOTIFY_SOCKET.
# Its argument is how many heartbeats it sends (every 50 ms) before it goes silent.
NOTIFY = """
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
if addr.startswith("@"):
    addr = "\\0" + addr[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def notify(msg):
    s.sendto(msg.encode(), addr)
beats = int(sys.argv[1])
notify("STATUS=warming up")
time.sleep(0.05)
notify("READY=1\\nSTATUS=serving")
for _ in range(beats):
    time.sleep(0.05)
    notify("WATCHDOG=1")
time.sleep(60)
"""


def make(tmp_path: Path, *specs: ProgramSpec, **kw: object) -> tuple[Supervisor, Recorder]:
    """Return a supervisor of `specs` in ``tmp_path/state`` and a recorder of its events."""
    bus = EventBus(clock=kw.get("clock", FakeClock()))  # type: ignore[arg-type]
    rec = Recorder(bus)
    sup = Supervisor(specs, bus=bus, state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]
    return sup, rec


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


def ignores_sigterm(pid: int) -> bool:
    """Whether `pid` has set SIGTERM to be ignored yet (its SigIgn mask in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigIgn:"))
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `predicate` (a test's bounded wait for another process; not a component)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def read(path: Path) -> str:
    """Return the text of `path` (a small file: fine to read from an async test)."""
    return path.read_text()


def read_int(path: Path, timeout: float = 10.0) -> int:
    """Wait for `path` to hold an integer (written by a child) and return it."""
    assert wait_until(lambda: path.exists() and path.read_text().strip().isdigit(), timeout)
    return int(path.read_text().strip())


def kill_quietly(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, 9)


def abandon(sup: Supervisor) -> None:
    """Make `sup` a daemon that died: let go of everything without stopping any child.

    Its children keep running and stay in its children file; the lock is released as the
    kernel would release it. The test process stays their parent, and reaps them itself.
    """
    driver = sup._driver
    for child in driver.children.values():
        assert child.watch is not None
        assert child.popen is not None
        child.watch.close()
        child.popen.returncode = 0  # reaped by the test, not by Popen.__del__
        child.close_output()
        child.log.close()
    assert sup._notify is not None
    sup._notify.close()
    sup._dir.close()


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


def open_descriptors() -> int:
    """Return how many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def descriptors_exhausted(spare: int = 0) -> Iterator[None]:
    """Leave this process `spare` free file descriptors until the block ends (real EMFILE).

    The soft ``RLIMIT_NOFILE`` is lowered just above the descriptors in use and every free
    one is taken (``/dev/null``), so whatever opens a descriptor next fails as it would in a
    process that ran out; both are given back at the end.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    top = max(int(fd) for fd in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, top + 1 + spare + 64), hard))
    held: list[int] = []
    try:
        with contextlib.suppress(OSError):
            while True:
                held.append(os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC))
        for _ in range(min(spare, len(held))):
            os.close(held.pop())
        yield
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
