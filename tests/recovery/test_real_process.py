"""A real program killed with SIGKILL and brought back by a rule, verified over real HTTP.

`SubprocessPrograms` is a small test-local `ProgramControl` on asyncio subprocesses (the real
supervisor replaces it in the daemon); it publishes ``process.<name>.started`` and
``process.<name>.exited`` like a supervisor would. Waits here are real but bounded: the
verification deadline and the test's own timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from health_helpers import free_port
from selfheal import EventBus
from selfheal.health.checks import Check, http_check
from selfheal.interfaces import HealthSource, HealthStatus, ProgramControl
from selfheal.recovery import RecoveryEngine, RestartProgram, Rule, Verify
from selfheal.store import Journal
from selfheal.testing import EventRecorder

SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""
# Starts and runs, but never serves: a restart that does not fix anything.
BROKEN = "import time; time.sleep(120)"


class SubprocessPrograms:
    """ProgramControl over asyncio child processes, publishing process events."""

    def __init__(self, bus: EventBus, programs: dict[str, list[str]]) -> None:
        self.bus = bus
        self.programs = programs
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.watchers: set[asyncio.Task[None]] = set()
        self.restarts: list[str] = []

    def program_names(self) -> list[str]:
        return list(self.programs)

    async def start_program(self, name: str) -> None:
        argv = self.programs[name]
        if name in self.procs:
            return
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        self.procs[name] = proc
        self.bus.emit(f"process.{name}.started", "test-supervisor", pid=proc.pid)
        task = asyncio.ensure_future(self._watch(name, proc))
        self.watchers.add(task)
        task.add_done_callback(self.watchers.discard)

    async def _watch(self, name: str, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        if self.procs.get(name) is proc:  # not a stop we asked for
            del self.procs[name]
            self.bus.emit(
                f"process.{name}.exited",
                "test-supervisor",
                "error",
                exit_code=code,
                signal=-code if code < 0 else None,
            )

    async def stop_program(self, name: str) -> None:
        if name not in self.programs:
            raise KeyError(name)
        proc = self.procs.pop(name, None)
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def restart_program(self, name: str) -> None:
        self.restarts.append(name)
        await self.stop_program(name)
        await self.start_program(name)

    async def close(self) -> None:
        for name in list(self.procs):
            await self.stop_program(name)
        await asyncio.gather(*self.watchers, return_exceptions=True)


class ChecksHealth:
    """HealthSource running real checks with a one-second bound each."""

    def __init__(self, checks: dict[str, Check]) -> None:
        self.checks = checks
        self.last: dict[str, HealthStatus] = {}

    def status(self, name: str) -> HealthStatus:
        return self.last.get(name, HealthStatus.UNKNOWN)

    async def check_now(self, name: str) -> HealthStatus:
        try:
            await asyncio.wait_for(self.checks[name](), 1.0)
        except Exception:
            status = HealthStatus.FAIL
        else:
            status = HealthStatus.PASS
        self.last[name] = status
        return status


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[tuple[EventBus, EventRecorder, Journal, int]]:
    bus = EventBus()
    recorder = EventRecorder(bus)
    journal = Journal(bus, tmp_path / "journal.db")
    await journal.start()
    try:
        yield bus, recorder, journal, free_port()
    finally:
        await journal.stop()


def test_local_implementations_satisfy_the_contracts() -> None:
    assert isinstance(SubprocessPrograms(EventBus(), {}), ProgramControl)
    assert isinstance(ChecksHealth({}), HealthSource)


@pytest.mark.anyio
async def test_killed_program_is_restarted_and_verified(
    world: tuple[EventBus, EventRecorder, Journal, int],
) -> None:
    bus, rec, journal, port = world
    programs = SubprocessPrograms(bus, {"web": [sys.executable, "-c", SERVER, str(port)]})
    health = ChecksHealth({"web-http": http_check(f"http://127.0.0.1:{port}/")})
    rule = Rule(
        on="process.*.exited",
        when={"data.exit_code": {"ne": 0}},
        steps=(RestartProgram("{subject}"),),
        verify=Verify(("web-http",), within=15, interval=0.05),
    )
    engine = RecoveryEngine(bus, [rule], programs=programs, health=health)
    await engine.start()
    try:
        await programs.start_program("web")
        first_pid = programs.procs["web"].pid
        await until_pass(health)
        os.kill(first_pid, signal.SIGKILL)
        await rec.wait("recovery.web.succeeded", within=15)
        assert programs.restarts == ["web"]
        assert programs.procs["web"].pid != first_pid
        assert await health.check_now("web-http") == HealthStatus.PASS
    finally:
        await engine.stop()
        await programs.close()
    (exited,) = rec.of("process.web.exited")
    assert exited.data == {"exit_code": -signal.SIGKILL, "signal": signal.SIGKILL}
    (done,) = rec.of("recovery.web.succeeded")
    assert done.data["tries"][0]["checks"] == {"web-http": "pass"}

    assert journal.flush(timeout=10)
    (incident,) = journal.incidents()
    assert incident.subject == "web"
    assert incident.opened_by == "process.web.exited"
    # Closed by the verified recovery, not by the restart's process.web.started before it.
    assert incident.closed_by == "recovery.web.succeeded"
    assert incident.ttr is not None
    assert incident.ttr > 0
    assert incident.recoveries == 1
    (recovery,) = journal.recoveries()
    assert recovery.outcome == "succeeded"
    types = [e.type for e in journal.events(limit=1000)]
    assert types.index("process.web.exited") < types.index("recovery.web.started")


async def until_pass(health: ChecksHealth) -> None:
    async def poll() -> None:
        # A real server coming up: polling it is the only way to know.
        while await health.check_now("web-http") != HealthStatus.PASS:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    await asyncio.wait_for(poll(), 15)


@pytest.mark.anyio
async def test_restart_that_does_not_fix_it_escalates_to_the_next_step(
    world: tuple[EventBus, EventRecorder, Journal, int],
) -> None:
    bus, rec, _journal, port = world
    programs = SubprocessPrograms(
        bus,
        {
            "web": [sys.executable, "-c", BROKEN],
            "standby": [sys.executable, "-c", SERVER, str(port)],
        },
    )
    health = ChecksHealth({"web-http": http_check(f"http://127.0.0.1:{port}/")})
    rule = Rule(
        on="process.*.exited",
        steps=(RestartProgram("{subject}"), RestartProgram("standby")),
        verify=Verify(("web-http",), within=1.0, interval=0.05),
    )
    engine = RecoveryEngine(bus, [rule], programs=programs, health=health)
    await engine.start()
    try:
        await programs.start_program("web")
        os.kill(programs.procs["web"].pid, signal.SIGKILL)
        await rec.wait("recovery.web.succeeded", within=15)
    finally:
        await engine.stop()
        with contextlib.suppress(Exception):
            await programs.close()
    outcomes = [e.type for e in rec.of("recovery.*")]
    assert outcomes == ["recovery.web.started", "recovery.web.escalated", "recovery.web.succeeded"]
    (escalated,) = rec.of("recovery.web.escalated")
    assert escalated.data["reason"] == "step_failed"
    assert "web-http not passing within 1s" in escalated.data["error"]
    assert programs.restarts == ["web", "standby"]
