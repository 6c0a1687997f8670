"""The fakes selfheal.testing ships implement the protocols and do what a test tells them."""

from __future__ import annotations

import asyncio

import pytest

from selfheal.interfaces import HealthSource, HealthStatus, ProgramControl
from selfheal.testing import FakeHealthSource, FakeProgramControl


def test_the_fakes_implement_the_protocols() -> None:
    assert isinstance(FakeProgramControl(), ProgramControl)
    assert isinstance(FakeHealthSource(), HealthSource)


@pytest.mark.anyio
async def test_program_control_records_every_call_in_order() -> None:
    restarted: list[str] = []
    programs = FakeProgramControl("web", "db", on_restart=restarted.append)
    await programs.start_program("web")
    await programs.restart_program("db")
    await programs.stop_program("web")
    assert programs.calls == [("start", "web"), ("restart", "db"), ("stop", "web")]
    assert programs.restarts == ["db"]
    assert restarted == ["db"]
    assert programs.program_names() == ["web", "db"]


@pytest.mark.anyio
async def test_program_control_refuses_unknown_names_like_a_supervisor() -> None:
    programs = FakeProgramControl("web")
    with pytest.raises(KeyError):
        await programs.restart_program("nope")
    assert programs.calls == []


@pytest.mark.anyio
async def test_program_control_fails_when_told_and_records_the_try() -> None:
    restarted: list[str] = []
    programs = FakeProgramControl("web", on_restart=restarted.append)
    programs.error = ConnectionError("supervisor gone")
    with pytest.raises(ConnectionError, match="supervisor gone"):
        await programs.restart_program("web")
    assert programs.restarts == ["web"]
    assert restarted == []  # a failed restart fixed nothing
    programs.error = None
    await programs.restart_program("web")
    assert restarted == ["web"]


@pytest.mark.anyio
async def test_program_control_hangs_until_cancelled_when_told() -> None:
    programs = FakeProgramControl("web")
    programs.hang = True
    task = asyncio.ensure_future(programs.restart_program("web"))
    await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert programs.restarts == ["web"]


@pytest.mark.anyio
async def test_health_source_reports_what_the_test_set_and_counts_checks() -> None:
    health = FakeHealthSource({"db": HealthStatus.WARN})
    assert health.status("web") is HealthStatus.FAIL  # the default
    assert await health.check_now("db") is HealthStatus.WARN
    health.set("web")
    assert await health.check_now("web") is HealthStatus.PASS
    health.set("web", HealthStatus.FAIL)
    assert await health.check_now("web") is HealthStatus.FAIL
    assert health.checked == ["db", "web", "web"]


@pytest.mark.anyio
async def test_health_source_without_a_default_knows_only_its_checks() -> None:
    health = FakeHealthSource({"api": HealthStatus.PASS}, default=None)
    assert await health.check_now("api") is HealthStatus.PASS
    with pytest.raises(KeyError):
        await health.check_now("web")
    assert health.checked == ["api", "web"]
