"""The control API in-process: over TCP and a unix socket, with its token and its errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from selfheal.supervisor import ProcessState, ProgramSpec, Supervisor
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
