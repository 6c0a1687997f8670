"""Runtime: components start in order and stop in reverse, also when one fails to start."""

from __future__ import annotations

import asyncio
import logging

import pytest

from selfheal.interfaces import Component
from selfheal.runtime import Runtime


class Part:
    """A component that writes its starts and stops in a shared log, and can be made to fail."""

    def __init__(self, name: str, log: list[str], *, fail_start: bool = False) -> None:
        self.name = name
        self.log = log
        self.fail_start = fail_start
        self.fail_stop = False
        self.started = asyncio.Event()

    def __repr__(self) -> str:
        return f"Part({self.name})"

    async def start(self) -> None:
        if self.fail_start:
            raise OSError(f"{self.name} cannot bind")
        self.log.append(f"start {self.name}")
        self.started.set()

    async def stop(self) -> None:
        self.log.append(f"stop {self.name}")
        if self.fail_stop:
            raise RuntimeError(f"{self.name} stuck")


def test_a_part_is_a_component() -> None:
    assert isinstance(Part("a", []), Component)


@pytest.mark.anyio
async def test_start_in_order_stop_in_reverse() -> None:
    log: list[str] = []
    a, b, c = Part("a", log), Part("b", log), Part("c", log)
    runtime = Runtime([a, c])
    runtime.add(b, before=c)
    async with runtime:
        assert log == ["start a", "start b", "start c"]
    assert log[3:] == ["stop c", "stop b", "stop a"]


@pytest.mark.anyio
async def test_a_failed_start_stops_what_started_and_raises() -> None:
    log: list[str] = []
    runtime = Runtime([Part("a", log), Part("b", log), Part("c", log, fail_start=True)])
    with pytest.raises(OSError, match="c cannot bind"):
        await runtime.start()
    assert log == ["start a", "start b", "stop b", "stop a"]


@pytest.mark.anyio
async def test_a_failing_stop_is_logged_and_the_others_still_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    a, b = Part("a", log), Part("b", log)
    b.fail_stop = True
    async with Runtime([a, b]):
        pass
    assert log[2:] == ["stop b", "stop a"]
    assert any("stopping Part(b) failed" in r.getMessage() for r in caplog.records)
    assert all(r.levelno == logging.ERROR for r in caplog.records)


@pytest.mark.anyio
async def test_replace_swaps_a_running_component_at_its_place() -> None:
    log: list[str] = []
    a, b, c = Part("a", log), Part("b", log), Part("c", log)
    runtime = Runtime([a, b])
    async with runtime:
        await runtime.replace(a, c)
        assert runtime.components == [c, b]
        await runtime.replace(b, None)
        assert runtime.components == [c]
        await runtime.replace(None, b, after=c)
    assert log == [
        "start a",
        "start b",
        "stop a",
        "start c",
        "stop b",
        "start b",
        "stop b",
        "stop c",
    ]


@pytest.mark.anyio
async def test_run_returns_when_asked_to_stop_and_stops_everything() -> None:
    log: list[str] = []
    last = Part("b", log)
    runtime = Runtime([Part("a", log), last])
    task = asyncio.ensure_future(runtime.run(stop_signals=()))
    await asyncio.wait_for(last.started.wait(), 5)
    assert not runtime.stopping
    runtime.request_stop()
    assert runtime.stopping
    await asyncio.wait_for(task, 5)
    assert log == ["start a", "start b", "stop b", "stop a"]
