"""sd_notify: readiness, status and heartbeats from a program, attributed by the sender's pid."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from pathlib import Path

import pytest

from selfheal.events import EventBus
from selfheal.supervisor import ProcessState, ProgramSpec, Supervisor
from selfheal.supervisor._notify import NotifySocket, parse_notify
from supervisor_helpers import FAST, NOTIFY, PY, Recorder, make, read

pytestmark = pytest.mark.anyio
S = ProcessState


async def test_sd_notify_ready_status_and_missed_heartbeat(tmp_path: Path) -> None:
    prog = ProgramSpec(
        "notifier",
        (PY, "-c", NOTIFY, "2"),
        ready="notify",
        watchdog_sec=0.3,
        backoff=FAST,
    )
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        assert sup.state("notifier") is S.STARTING  # not ready before READY=1
        await rec.wait("process.notifier.ready")
        assert sup.status()[0]["status"] == "serving"
        # Two heartbeats, then silence: restarted 0.3 s after the last one.
        unhealthy = await rec.wait("process.notifier.unhealthy", within=10)
        assert "no sd_notify WATCHDOG=1 for 0.3 s" in unhealthy.data["reason"]
        await rec.wait("process.notifier.started", 2)
        await rec.wait("process.notifier.ready", 2)
    finally:
        await sup.stop()


async def test_heartbeats_keep_the_program_alive(tmp_path: Path) -> None:
    prog = ProgramSpec("beating", (PY, "-c", NOTIFY, "40"), ready="notify", watchdog_sec=0.5)
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        await rec.wait("process.beating.ready")
        await asyncio.sleep(1.0)  # real heartbeats every 50 ms for a 500 ms deadline
        assert not rec.of("process.beating.unhealthy")
        assert len(rec.of("process.beating.started")) == 1
    finally:
        await sup.stop()


async def test_sd_notify_from_a_helper_process_in_the_session(tmp_path: Path) -> None:
    # The datagram comes from a grandchild, attributed through its session id.
    helper = (
        "import os, socket, time\n"
        "a = os.environ['NOTIFY_SOCKET']\n"
        "a = '\\0' + a[1:] if a.startswith('@') else a\n"
        "socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1\\nSTATUS=hi', a)\n"
        "time.sleep(1)\n"
    )
    parent = (
        "import subprocess, sys, time\n"
        f"subprocess.Popen([sys.executable, '-c', {helper!r}])\n"
        "time.sleep(60)\n"
    )
    prog = ProgramSpec("parent", (PY, "-c", parent), ready="notify")
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        await rec.wait("process.parent.ready")
        assert sup.status()[0]["status"] == "hi"
    finally:
        await sup.stop()


@pytest.mark.skipif(shutil.which("systemd-notify") is None, reason="needs systemd-notify")
async def test_sd_notify_from_systemd_notify(tmp_path: Path) -> None:
    # The reference client, run from a shell script.
    script = "systemd-notify --ready --status=via-helper; sleep 60"
    prog = ProgramSpec("shelly", (script,), shell=True, ready="notify")
    sup, rec = make(tmp_path, prog)
    await sup.start()
    try:
        await rec.wait("process.shelly.ready")
    finally:
        await sup.stop()


async def test_notify_from_a_stranger_is_dropped(tmp_path: Path) -> None:
    bus = EventBus()
    rec = Recorder(bus)
    notify_child = (
        PY,
        "-c",
        "import os, socket, time\nopen(os.environ['GO'], 'w').close()\ntime.sleep(60)\n",
    )
    go = tmp_path / "go"
    prog = ProgramSpec("n", notify_child, ready="notify", env=(("GO", str(go)),))
    sup = Supervisor([prog], bus=bus, state_dir=tmp_path / "state")
    await sup.start()
    try:
        await rec.wait("process.n.started")
        address = next(
            line.split("=", 1)[1]
            for line in read(Path(f"/proc/{sup.pid('n')}/environ")).split("\0")
            if line.startswith("NOTIFY_SOCKET=")
        )
        # This test process is no program's: its READY=1 must not count.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1", address.replace("@", "\0", 1))
        await asyncio.sleep(0.1)
        assert sup.state("n") is ProcessState.STARTING
    finally:
        await sup.stop()


async def test_notify_socket_falls_back_to_an_abstract_address(tmp_path: Path) -> None:
    got: list[tuple[int | None, dict[str, str]]] = []
    received = asyncio.Event()

    def on_message(pid: int | None, fields: dict[str, str]) -> None:
        got.append((pid, fields))
        received.set()

    deep = tmp_path / ("d" * 120) / "notify.sock"
    sock = NotifySocket(deep, on_message)
    sock.attach(asyncio.get_running_loop())
    try:
        assert sock.address.startswith("@selfheal-")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1\nSTATUS=a=b", "\0" + sock.address[1:])
        async with asyncio.timeout(5):
            await received.wait()
        assert got == [(os.getpid(), {"READY": "1", "STATUS": "a=b"})]
    finally:
        sock.close()


def test_parse_notify() -> None:
    assert parse_notify(b"READY=1\nWATCHDOG=1\n\nbogus\nSTATUS=x=y") == {
        "READY": "1",
        "WATCHDOG": "1",
        "STATUS": "x=y",
    }
