"""The control API in-process (TCP and unix socket), sd_notify attribution, log following."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import httpx
import pytest

from selfheal.events import EventBus
from selfheal.supervisor import ProcessState, ProgramSpec, Supervisor
from selfheal.supervisor._notify import NotifySocket, parse_notify
from selfheal.web.control import ControlServer, ReloadError, read_control_file
from supervisor_helpers import PY, Recorder

pytestmark = pytest.mark.anyio
SLEEP = (PY, "-c", "import time; time.sleep(60)")
TOKEN = "t" * 32


def read(path: Path) -> str:
    return path.read_text()


async def served(tmp_path: Path, **kw: object) -> tuple[Supervisor, ControlServer]:
    sup = Supervisor([ProgramSpec("a", SLEEP)], state_dir=tmp_path / "state")
    server = ControlServer(sup, state_dir=tmp_path / "state", token=TOKEN, **kw)  # type: ignore[arg-type]
    await sup.start()
    await server.start()
    return sup, server


async def test_tcp_api_token_and_errors(tmp_path: Path) -> None:
    calls = []

    async def reload() -> dict[str, object]:
        calls.append(1)
        if len(calls) > 1:
            raise ReloadError("line 3: programs.a.command: required key is missing")
        return {"changed": ["a"]}

    sup, server = await served(tmp_path, reload=reload)
    try:
        info = read_control_file(tmp_path / "state")
        assert read(Path(info["token_file"])) == TOKEN
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=info["url"]) as client:
            status = (await client.get("/status")).json()
            assert status["processes"][0]["state"] == "RUNNING"
            denied = await client.post("/programs/a/stop")
            assert denied.status_code == 401
            assert "Bearer" in denied.json()["error"]
            assert sup.state("a") is ProcessState.RUNNING
            assert (await client.post("/programs/a/stop", headers=auth)).json()["processes"][0][
                "state"
            ] == "STOPPED"
            unknown = await client.post("/programs/zz/start", headers=auth)
            assert unknown.status_code == 404
            assert "known: a" in unknown.json()["error"]
            bad_verb = await client.post("/programs/a/explode", headers=auth)
            assert bad_verb.status_code == 404
            assert (await client.post("/reload", headers=auth)).json() == {"changed": ["a"]}
            refused = await client.post("/reload", headers=auth)
            assert refused.status_code == 400
            assert "line 3" in refused.json()["error"]
    finally:
        await server.stop()
        await sup.stop()
    assert not (tmp_path / "state" / "control.json").exists()


async def test_unix_socket_and_status_token(tmp_path: Path) -> None:
    path = tmp_path / "ctl.sock"
    sup, server = await served(tmp_path, socket_path=path, status_requires_token=True)
    try:
        assert path.stat().st_mode & 0o077 == 0
        transport = httpx.AsyncHTTPTransport(uds=str(path))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            assert (await client.get("/status")).status_code == 401
            ok = await client.get("/status", headers={"Authorization": f"Bearer {TOKEN}"})
            assert ok.status_code == 200
            assert (
                await client.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
            ).status_code == 501
        assert read_control_file(tmp_path / "state")["socket"] == str(path)
    finally:
        await server.stop()
        await sup.stop()
    assert not path.exists()


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


def test_follow_survives_rotation(tmp_path: Path) -> None:
    from selfheal.cli._supervisor import _follow

    path = tmp_path / "p.log"
    path.write_text("old\n")
    follow = _follow(path)
    with path.open("a") as f:
        f.write("one\n")
    assert next(follow) == "one\n"
    path.rename(tmp_path / "p.log.1")
    path.write_text("two\n")
    assert next(follow) == "two\n"
    follow.close()
