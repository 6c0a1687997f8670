"""Readiness and liveness probes, and the start deadline, all timed on the supervisor's clock."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from health_helpers import until
from selfheal.supervisor import ProbeSpec, ProcessState, ProgramSpec
from selfheal.testing import FakeClock
from supervisor_helpers import FAST, PY, SLEEP, alive, make

pytestmark = pytest.mark.anyio
S = ProcessState


async def test_liveness_failure_restarts_the_program(tmp_path: Path, closed_port: int) -> None:
    probe = ProbeSpec(
        "tcp", f"127.0.0.1:{closed_port}", interval=0.02, timeout=1.0, failure_threshold=2
    )
    prog = ProgramSpec("svc", SLEEP, liveness=probe, backoff=FAST)
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        first = (await rec.wait("process.svc.started")).data["pid"]
        unhealthy = await rec.wait("process.svc.unhealthy")
        assert "liveness probe failed 2 times" in unhealthy.data["reason"]
        second = (await rec.wait("process.svc.started", 2)).data["pid"]
        assert second != first
        assert not alive(first)
        assert rec.of("process.svc.backoff")[0].data["reason"] == "unhealthy"
    finally:
        await sup.stop()


async def test_a_program_never_ready_within_its_start_timeout_is_restarted(
    tmp_path: Path, closed_port: int
) -> None:
    # systemd's TimeoutStartSec: a readiness probe that never passes must not leave the
    # program (and its dependents) STARTING for ever.
    clock = FakeClock()
    probe = ProbeSpec("tcp", f"127.0.0.1:{closed_port}", interval=1.0, timeout=1.0)
    prog = ProgramSpec("svc", SLEEP, ready="probe", readiness=probe, start_timeout=5.0)
    sup, rec = make(tmp_path, prog, clock=clock)
    await sup.start()
    try:
        first = (await rec.wait("process.svc.started")).data["pid"]
        for _ in range(4):  # four failed probes, 4 s: still within the timeout
            await clock.wait_for_sleepers(2)
            clock.advance(1.0)
        await asyncio.sleep(0.05)
        assert sup.state("svc") is S.STARTING
        assert not rec.of("process.svc.unhealthy")
        await clock.wait_for_sleepers(2)
        clock.advance(1.0)
        unhealthy = await rec.wait("process.svc.unhealthy")
        assert unhealthy.data["probe"] == "start"
        assert unhealthy.data["reason"] == "not ready within 5 s"
        exited = await rec.wait("process.svc.exited")
        assert exited.data["pid"] == first
        assert not alive(first)
        backoff = await rec.wait("process.svc.backoff")
        assert backoff.data["reason"] == "unhealthy"  # counted like a failure: backoff, intensity
    finally:
        await sup.stop()


async def test_a_program_ready_in_time_is_left_alone_by_its_start_timeout(
    tmp_path: Path, open_port: int
) -> None:
    clock = FakeClock()
    probe = ProbeSpec("tcp", f"127.0.0.1:{open_port}", interval=1.0)
    prog = ProgramSpec("svc", SLEEP, ready="probe", readiness=probe, start_timeout=5.0)
    sup, rec = make(tmp_path, prog, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.svc.ready")
        clock.advance(60.0)
        await asyncio.sleep(0.05)
        assert sup.state("svc") is S.RUNNING
        assert not rec.of("process.svc.unhealthy")
    finally:
        await sup.stop()


async def test_liveness_passing_keeps_the_program(tmp_path: Path, open_port: int) -> None:
    clock = FakeClock()
    # The probe's timeout runs on the fake clock too: a long one, so that only the intervals
    # are what the advances below move past.
    probe = ProbeSpec(
        "tcp", f"127.0.0.1:{open_port}", interval=1.0, timeout=60.0, failure_threshold=1
    )
    sup, rec = make(tmp_path, ProgramSpec("svc", SLEEP, liveness=probe), clock=clock)
    await sup.start()
    try:
        for _ in range(3):
            await clock.wait_for_sleepers()
            clock.advance(1.0)
        assert sup.state("svc") is S.RUNNING
        assert not rec.of("process.svc.unhealthy")
    finally:
        await sup.stop()


async def test_command_probes_gate_readiness_and_restart(tmp_path: Path) -> None:
    flag = tmp_path / "healthy"
    check = ("test", "-f", str(flag))
    prog = ProgramSpec(
        "gated",
        SLEEP,
        ready="probe",
        readiness=ProbeSpec("command", argv=check, interval=0.02, timeout=2.0),
        liveness=ProbeSpec("command", argv=check, interval=0.02, failure_threshold=2),
        backoff=FAST,
    )
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        await rec.wait("process.gated.started")
        await asyncio.sleep(0.1)
        assert sup.state("gated") is S.STARTING  # readiness keeps failing: not ready
        flag.touch()
        await rec.wait("process.gated.ready")
        flag.unlink()
        unhealthy = await rec.wait("process.gated.unhealthy")
        assert "test exited with 1" in unhealthy.data["reason"]
        await rec.wait("process.gated.started", 2)
        assert sup.state("gated") is S.STARTING  # not ready again until the flag is back
    finally:
        await sup.stop()


async def test_stop_waits_for_a_command_probe_in_flight(tmp_path: Path) -> None:
    # A probe cancelled by the stop kills its command; stop must also wait until that command
    # is reaped, or the daemon exits with a probe process nobody waited for.
    pidfile = tmp_path / "probe.pid"
    slow = (
        PY,
        "-c",
        f"import os, time\nopen({str(pidfile)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)",
    )
    probe = ProbeSpec("command", argv=slow, interval=0.02, timeout=120.0)
    sup, _ = make(tmp_path, ProgramSpec("svc", SLEEP, liveness=probe))
    await sup.start()
    try:
        # The probe runs in this loop: an async wait, not read_int's blocking one.
        await until(lambda: pidfile.exists() and pidfile.read_text().isdigit(), 10)
        probe_pid = int(pidfile.read_text())
    finally:
        await sup.stop()
    left = [t for t in asyncio.all_tasks() if "_probe" in repr(t.get_coro()) and not t.done()]
    assert left == []
    assert not alive(probe_pid)


async def test_http_liveness_probe_failing_with_500_restarts(tmp_path: Path) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    probe = ProbeSpec(
        "http", f"http://127.0.0.1:{port}/healthz", interval=0.02, failure_threshold=2
    )
    sup, rec = make(tmp_path, ProgramSpec("api", SLEEP, liveness=probe, backoff=FAST))
    await sup.start()
    try:
        unhealthy = await rec.wait("process.api.unhealthy")
        assert "HTTP 500" in unhealthy.data["reason"]
        await rec.wait("process.api.started", 2)
    finally:
        await sup.stop()
        server.close()


async def test_a_probe_that_hangs_times_out_on_the_supervisors_clock(tmp_path: Path) -> None:
    # An HTTP server that takes the request and never answers: only the probe's timeout,
    # on the fake clock, can end the run (no real 30 s wait, no client timeout).
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the probe gives up and closes the connection
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    clock = FakeClock()
    probe = ProbeSpec(
        "http", f"http://127.0.0.1:{port}/", interval=1.0, timeout=30.0, failure_threshold=1
    )
    prog = ProgramSpec("svc", SLEEP, liveness=probe, backoff=FAST)
    sup, rec = make(tmp_path, prog, clock=clock)
    await sup.start()
    try:
        await rec.wait("process.svc.ready")
        await clock.wait_for_sleepers()  # the probe's deadline
        await asyncio.sleep(0.1)  # real time: the request is sent, and hangs
        assert not rec.of("process.svc.unhealthy")
        clock.advance(29.0)
        await asyncio.sleep(0.05)
        assert not rec.of("process.svc.unhealthy")
        clock.advance(1.0)
        unhealthy = await rec.wait("process.svc.unhealthy")
        assert unhealthy.data["reason"] == "liveness probe failed 1 times: timed out after 30 s"
    finally:
        await sup.stop()
        server.close()
