"""The app's real `ChaosMonkey`: on the app's clock and bus, rolled back first at shutdown, and
never enabled in production."""

from __future__ import annotations

import pytest

from selfheal.app import SelfHealingApp
from selfheal.chaos import ChaosMonkey
from selfheal.testing import EventRecorder, FakeClock

pytestmark = pytest.mark.anyio


async def advance_until(clock: FakeClock, done: object, *, step: float, limit: int) -> None:
    for _ in range(limit):
        if callable(done) and done():
            return
        await clock.wait_for_sleepers()
        clock.advance(step)
    raise AssertionError(f"not reached within {limit} steps of {step} s")


async def test_the_monkey_disrupts_on_the_apps_clock_and_is_rolled_back_first() -> None:
    clock = FakeClock()
    app = SelfHealingApp("shop", clock=clock, chaos=True, environ={})
    monkey = app.chaos_monkey
    assert isinstance(monkey, ChaosMonkey)
    assert monkey.enabled
    assert monkey.bus is app.event_bus
    assert monkey.clock is clock
    log: list[str] = []
    monkey.register_target(
        "cache",
        lambda: log.append(f"disrupt, draining={app.health_monitor.draining}"),
        lambda: log.append(f"recover, draining={app.health_monitor.draining}"),
        frequency=10,
    )
    chaos = EventRecorder(app.event_bus, "chaos.*")
    async with app:
        await advance_until(clock, lambda: chaos.of("chaos.cache.injected"), step=5, limit=200)
        assert monkey.disrupted == ["cache"]
    (rolled,) = chaos.of("chaos.cache.rolled_back")
    assert rolled.data["reason"] == "stopped"
    # Readiness drained first; the fault was rolled back before anything else stopped.
    assert log == ["disrupt, draining=False", "recover, draining=True"]
    assert chaos.types()[-1] == "chaos.monkey.stopped"


async def test_enable_chaos_does_nothing_in_production() -> None:
    clock = FakeClock()
    app = SelfHealingApp(
        "shop", clock=clock, environ={"ENABLE_CHAOS": "true", "SELFHEAL_ENV": "production"}
    )
    assert not app.chaos_enabled
    monkey = app.chaos_monkey
    assert not monkey.enabled
    hits: list[str] = []
    monkey.register_target("db", lambda: hits.append("x"), lambda: None, frequency=1)
    chaos = EventRecorder(app.event_bus, "chaos.*")
    async with app:
        for _ in range(20):
            clock.advance(1)
    assert hits == []
    assert chaos.types() == []
