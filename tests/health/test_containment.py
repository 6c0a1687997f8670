"""Whatever a check raises or returns becomes a result: the process and the schedule go on.

An async check raising ``SystemExit`` or ``KeyboardInterrupt`` once ended the whole process
(asyncio re-raises those out of the loop); a check whose exception cannot be printed, or that
returned a mapping containing itself, left "no result yet" for ever and a traceback in the
log each interval. The scheduler runs health checks and synthetic scenarios alike, so both
are covered by one containment.
"""

from __future__ import annotations

import json
import logging
import subprocess
import textwrap
from typing import Any

import pytest

from selfheal.health import HealthMonitor
from selfheal.synthetic import RunOutcome, SyntheticTester
from selfheal.testing import FakeClock
from supervisor_helpers import PY

SCRIPT = textwrap.dedent(
    """
    import asyncio, json
    from selfheal.health import HealthMonitor
    from selfheal.testing import FakeClock

    async def exits():
        raise SystemExit(3)

    async def interrupts():
        raise KeyboardInterrupt("stop")

    async def main():
        clock = FakeClock()
        monitor = HealthMonitor(clock=clock)
        monitor.register("exits", exits, interval=10)
        monitor.register("interrupts", interrupts, interval=10)
        await monitor.check_now("exits")
        await monitor.check_now("interrupts")
        await monitor.start()  # the background loops run each check once at start
        while any(monitor.report(n).result.consecutive_failures < 2 for n in monitor.names()):
            await asyncio.sleep(0)
        await monitor.stop()
        print(json.dumps({r.name: [r.status.value, r.result.output] for r in monitor.reports()}))

    asyncio.run(main())
    """
)


def test_an_async_check_raising_systemexit_or_keyboardinterrupt_fails_the_check() -> None:
    run = subprocess.run(
        [PY, "-c", SCRIPT], capture_output=True, text=True, timeout=30, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    results = json.loads(run.stdout)
    assert results["exits"][0] == "fail"
    assert "SystemExit" in results["exits"][1]
    assert results["interrupts"][0] == "fail"
    assert "KeyboardInterrupt" in results["interrupts"][1]


class Unprintable(Exception):
    def __str__(self) -> str:
        raise ValueError("no text for you")


def _recursive() -> dict[str, Any]:
    details: dict[str, Any] = {"latency": 3}
    details["self"] = details
    details["list"] = [details, [1]]
    return details


@pytest.mark.anyio
async def test_an_unprintable_exception_and_a_recursive_mapping_are_results(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    monitor = HealthMonitor(clock=clock)

    async def unprintable() -> None:
        raise Unprintable

    def unprintable_sync() -> None:
        raise Unprintable

    async def recursive() -> dict[str, Any]:
        return _recursive()

    monitor.register("unprintable", unprintable)
    monitor.register("unprintable-sync", unprintable_sync)
    monitor.register("recursive", recursive)
    with caplog.at_level(logging.ERROR):
        for name in monitor.names():
            await monitor.check_now(name)
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    for name in ("unprintable", "unprintable-sync"):
        result = monitor.report(name).result
        assert result is not None
        assert not result.ok
        assert "Unprintable" in result.output
    result = monitor.report("recursive").result
    assert result is not None
    assert result.ok
    assert result.observed["latency"] == 3
    assert result.observed["self"] == "<recursive>"
    assert result.observed["list"] == ["<recursive>", [1]]
    json.dumps(dict(result.observed))  # what the health endpoints serve


@pytest.mark.anyio
async def test_a_synthetic_scenario_is_contained_the_same_way(clock: FakeClock) -> None:
    tester = SyntheticTester("http://127.0.0.1:9", clock=clock)

    async def exits(base_url: str) -> None:
        raise SystemExit(4)

    async def unprintable(base_url: str) -> None:
        raise Unprintable

    tester.register_scenario("exits", exits, frequency=60)
    tester.register_scenario("unprintable", unprintable, frequency=60)
    for name, error in (("exits", "SystemExit"), ("unprintable", "Unprintable")):
        record = await tester.arun(name)
        assert record.outcome is RunOutcome.FAILED
        assert error in record.error
