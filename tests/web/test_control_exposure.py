"""A control API other machines may reach: warned about, and then ``/status`` needs the token.

The server here listens on a host *name* that resolves to 127.0.0.1, so nothing is really
exposed while the test runs; a name other than ``localhost`` may resolve to any address, so
the API treats it as reachable from elsewhere, as it would ``0.0.0.0``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from cli_helpers import cli_streams
from selfheal.supervisor import ProgramSpec, Supervisor
from selfheal.web.control import ControlServer, read_control_file
from supervisor_helpers import SLEEP

pytestmark = pytest.mark.anyio
TOKEN = "t" * 32


def _loopback_alias() -> str:
    for line in Path("/etc/hosts").read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields and fields[0].startswith("127."):
            for name in fields[1:]:
                if name != "localhost":
                    return name
    pytest.skip("no name other than localhost resolves to 127.0.0.1 here (/etc/hosts)")


async def test_an_exposed_api_warns_and_needs_the_token_for_status(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sup = Supervisor([ProgramSpec("a", SLEEP)], state_dir=tmp_path / "state")
    server = ControlServer(sup, state_dir=tmp_path / "state", host=_loopback_alias(), token=TOKEN)
    await sup.start()
    with caplog.at_level(logging.WARNING, logger="selfheal.web.control"):
        await server.start()
    try:
        assert any("not a loopback address" in r.getMessage() for r in caplog.records)
        url = read_control_file(tmp_path / "state")["url"]
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/status")).status_code == 401
            auth = {"Authorization": f"Bearer {TOKEN}"}
            ok = await client.get("/status", headers=auth)
            assert ok.json()["processes"][0]["name"] == "a"
    finally:
        await server.stop()
        await sup.stop()


async def test_a_loopback_api_keeps_status_open_and_quiet(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sup = Supervisor([ProgramSpec("a", SLEEP)], state_dir=tmp_path / "state")
    server = ControlServer(sup, state_dir=tmp_path / "state", host="127.0.0.1", token=TOKEN)
    await sup.start()
    with caplog.at_level(logging.WARNING, logger="selfheal.web.control"):
        await server.start()
    try:
        assert not caplog.records
        url = read_control_file(tmp_path / "state")["url"]
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/status")).status_code == 200
    finally:
        await server.stop()
        await sup.stop()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "node.example.com"])
def test_check_warns_about_an_exposed_host(tmp_path: Path, host: str) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(f'[control]\nhost = "{host}"\n')
    code, out, err = cli_streams("check", str(config))
    assert code == 0, err
    assert out.startswith("ok ")
    assert "warning: [control] host" in err
    assert "GET /status needs the token" in err


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.53"])
def test_check_is_quiet_about_a_loopback_host(tmp_path: Path, host: str) -> None:
    config = tmp_path / "selfheal.toml"
    config.write_text(f'[control]\nhost = "{host}"\n')
    code, _, err = cli_streams("check", str(config))
    assert code == 0
    assert "warning" not in err
