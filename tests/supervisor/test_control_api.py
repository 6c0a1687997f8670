"""The control API in-process: over TCP and a unix socket, with its token and its errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from selfheal.supervisor import ProbeSpec, ProcessState, ProgramSpec, Supervisor
from selfheal.web.control import ControlServer, ReloadError, read_control_file
from supervisor_helpers import SLEEP, read

pytestmark = pytest.mark.anyio
TOKEN = "t" * 32


async def served(tmp_path: Path, **kw: object) -> tuple[Supervisor, ControlServer]:
    sup = Supervisor([ProgramSpec("a", SLEEP)], state_dir=tmp_path / "state")
    server = ControlServer(sup, state_dir=tmp_path / "state", token=TOKEN, **kw)  # type: ignore[arg-type]
    await sup.start()
    await server.start()
    return sup, server


async def test_tcp_api_token_and_errors(tmp_path: Path) -> None:
    calls = []

    async def reload(dry_run: bool) -> dict[str, object]:
        calls.append(dry_run)
        if dry_run:
            return {"changed": ["a"], "dry_run": True}
        if len(calls) > 2:
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
            preview = await client.post("/reload", headers=auth, params={"dry_run": "1"})
            assert preview.json() == {"changed": ["a"], "dry_run": True}
            bad_flag = await client.post("/reload", headers=auth, params={"dry_run": "maybe"})
            assert bad_flag.status_code == 400
            assert "dry_run: expected 1 or 0" in bad_flag.json()["error"]
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


async def test_actions_on_several_names_with_bounds_and_reasons(
    tmp_path: Path, closed_port: int
) -> None:
    stuck = ProgramSpec(
        "stuck",
        ("/bin/sh", "-c", "echo listening soon; exec sleep 60"),
        readiness=ProbeSpec("tcp", f"127.0.0.1:{closed_port}", interval=0.05, timeout=0.5),
        ready="probe",
        autostart=False,
    )
    sup = Supervisor(
        [ProgramSpec("a", SLEEP), ProgramSpec("b", SLEEP, numprocs=2), stuck],
        state_dir=tmp_path / "state",
    )
    stops: list[int] = []
    server = ControlServer(
        sup, state_dir=tmp_path / "state", token=TOKEN, shutdown=lambda: stops.append(1)
    )
    await sup.start()
    await server.start()
    try:
        info = read_control_file(tmp_path / "state")
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=info["url"], headers=auth) as client:
            stop = await client.post("/processes/stop", json={"names": ["b:*", "a"]})
            assert stop.status_code == 200
            body = stop.json()
            assert [p["name"] for p in body["processes"]] == ["a", "b:0", "b:1"]
            assert {p["state"] for p in body["processes"]} == {"STOPPED"}
            status = (await client.get("/status", params={"name": ["b:1"]})).json()
            assert [p["name"] for p in status["processes"]] == ["b:1"]
            missing = await client.get("/status", params={"name": "zz"})
            assert missing.status_code == 404

            # A start that cannot finish in time: 504, what it is doing, its last lines.
            slow = await client.post("/processes/start", json={"names": ["stuck"], "timeout": 1})
            assert slow.status_code == 504
            (entry,) = slow.json()["processes"]
            assert slow.json()["timed_out"] is True
            assert entry["state"] == "STARTING"
            assert entry["probe"].startswith(f"readiness probe tcp 127.0.0.1:{closed_port}: ")
            assert entry["tail"] == ["listening soon"]
            assert sup.state("stuck") is ProcessState.STARTING  # the start goes on

            quick = await client.post("/processes/start", json={"names": ["all"], "wait": False})
            assert quick.status_code == 200
            signalled = await client.post(
                "/processes/signal", json={"names": ["a"], "signal": "CONT"}
            )
            assert signalled.json()["signalled"] == {"a": sup.pid("a")}
            for bad, why in (
                ({"names": "a"}, "'names' must be a non-empty list"),
                ({"names": ["a"], "timeout": -1}, "'timeout' must be a positive number"),
            ):
                refused = await client.post("/processes/start", json=bad)
                assert refused.status_code == 400
                assert why in refused.json()["error"]
            bad_signal = await client.post(
                "/processes/signal", json={"names": ["a"], "signal": "NOPE"}
            )
            assert "unknown signal 'NOPE'" in bad_signal.json()["error"]
            assert (await client.post("/shutdown")).json()["stopping"] is True
        async with httpx.AsyncClient(base_url=info["url"]) as anonymous:
            assert (await anonymous.post("/shutdown")).status_code == 401
            assert (
                await anonymous.post("/processes/stop", json={"names": ["a"]})
            ).status_code == 401
        assert stops == [1]
    finally:
        await server.stop()
        await sup.stop()
