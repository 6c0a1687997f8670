"""Network checks against real servers on loopback: TCP connections and HTTP conditions."""

from __future__ import annotations

import socket
import time

import pytest

from selfheal.health import CheckError, HealthMonitor, HealthStatus
from selfheal.health.checks import http_check, tcp_check


@pytest.mark.anyio
async def test_tcp_check() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert (await tcp_check("127.0.0.1", port)())["port"] == port
    with pytest.raises(ConnectionRefusedError):
        await tcp_check("127.0.0.1", port)()


@pytest.mark.anyio
async def test_http_check_conditions(target_url: str) -> None:
    observed = await http_check(f"{target_url}/ok", body_contains="good")()
    assert observed["status"] == 200
    assert observed["observedUnit"] == "ms"
    await http_check(f"{target_url}/ok", body_matches=r"version \d+\.\d+")()
    await http_check(f"{target_url}/status", json_fields={"status": "UP"})()
    await http_check(f"{target_url}/broken", expect_status=[500])()
    with pytest.raises(CheckError, match="HTTP 500"):
        await http_check(f"{target_url}/broken")()
    with pytest.raises(CheckError, match="lacks 'bad'"):
        await http_check(f"{target_url}/ok", body_contains="bad")()
    with pytest.raises(CheckError, match="does not match"):
        await http_check(f"{target_url}/ok", body_matches=r"^v\d")()
    with pytest.raises(CheckError, match=r"db\.status is 'DOWN', expected 'UP'"):
        await http_check(f"{target_url}/status", json_fields={"db.status": "UP"})()
    with pytest.raises(CheckError, match=r"has no field 'missing\.x'"):
        await http_check(f"{target_url}/status", json_fields={"missing.x": 1})()
    with pytest.raises(CheckError, match="is not JSON"):
        await http_check(f"{target_url}/ok", json_fields={"status": "UP"})()
    with pytest.raises(CheckError, match="more than 10 ms"):
        await http_check(f"{target_url}/slow", max_response_time=0.01)()


@pytest.mark.anyio
async def test_hanging_http_dependency_fails_at_the_timeout(target_url: str) -> None:
    monitor = HealthMonitor()
    monitor.register("payments", http_check(f"{target_url}/hang?token=abc"), timeout=0.1)
    started = time.monotonic()
    assert await monitor.check_now("payments") == HealthStatus.FAIL
    assert time.monotonic() - started < 2
    assert monitor.report("payments").result.timed_out  # type: ignore[union-attr]
    assert "abc" not in http_check(f"{target_url}/x?token=abc").__qualname__


@pytest.mark.anyio
async def test_http_check_loads_the_certificate_store_at_most_once(
    target_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A supervisor probes every few hundred ms; loading the CA bundle costs ~60 ms of CPU.
    import ssl

    loads: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counting(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loads.append(args or kwargs)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counting)
    check = http_check(f"{target_url}/ok")
    for _ in range(5):
        assert (await check())["status"] == 200
    # Once for the process (none if an earlier test already made the shared context).
    assert len(loads) <= 1
