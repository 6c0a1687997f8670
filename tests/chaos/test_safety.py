"""Chaos safeguards: enabled flag, production refusal, time windows, kill switches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from selfheal.chaos import (
    Action,
    ChaosMonkey,
    ChaosRefusedError,
    Injector,
    KillSwitch,
    Latency,
    Safeguards,
    TimeWindow,
    chaos_enabled,
    kill_switch,
    kill_switch_reason,
    refuse_in_production,
    release_kill_switch,
)
from selfheal.errors import SelfhealError
from selfheal.testing import FakeClock

UTC = dt.UTC
# Monday 2024-01-01 00:00 UTC.
MONDAY = dt.datetime(2024, 1, 1, tzinfo=UTC).timestamp()
HOUR = 3600.0
DAY = 24 * HOUR


@pytest.fixture(autouse=True)
def _no_kill_switch() -> Iterator[None]:
    yield
    release_kill_switch()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("on", True), ("false", False),
     ("", False), ("0", False), ("nope", False)],
)  # fmt: skip
def test_enable_chaos_is_read_only_when_enabled_is_none(value: str, expected: bool) -> None:
    env = {"ENABLE_CHAOS": value}
    assert chaos_enabled(None, env) is expected
    assert chaos_enabled(True, env) is True
    assert chaos_enabled(False, env) is False


def test_production_refusal_is_a_selfheal_error() -> None:
    with pytest.raises(ChaosRefusedError, match="SELFHEAL_ENV=production") as info:
        refuse_in_production(allow=False, environ={"SELFHEAL_ENV": "Production "})
    assert isinstance(info.value, SelfhealError)
    refuse_in_production(allow=True, environ={"SELFHEAL_ENV": "production"})
    refuse_in_production(allow=False, environ={"SELFHEAL_ENV": "staging"})
    refuse_in_production(allow=False, environ={})


@pytest.mark.anyio
async def test_monkey_in_production_needs_allow_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SELFHEAL_ENV", "production")
    ChaosMonkey(False).start()  # disabled: nothing to refuse
    with pytest.raises(ChaosRefusedError, match="allow_production=True"):
        await ChaosMonkey(True).astart()
    monkey = ChaosMonkey(True, clock=FakeClock(), safeguards=Safeguards(allow_production=True))
    await monkey.astart()
    assert monkey.running
    await monkey.astop()


def test_injector_in_production_needs_allow_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SELFHEAL_ENV", "production")
    with pytest.raises(ChaosRefusedError, match="production"):
        Injector().add("db.query", Latency(1))
    with Injector(allow_production=True, clock=FakeClock()) as injector:
        assert injector.add("db.query", Latency(1)).active


@pytest.mark.parametrize(
    ("text", "days", "start", "end"),
    [
        ("mon-fri 09:00-17:00", {0, 1, 2, 3, 4}, (9, 0), (17, 0)),
        ("Sat,Sun 10:00-12:30", {5, 6}, (10, 0), (12, 30)),
        ("fri-mon 22:00-06:00", {4, 5, 6, 0}, (22, 0), (6, 0)),
        ("09:00-24:00", set(range(7)), (9, 0), (0, 0)),
        ("wednesday", {2}, (0, 0), (0, 0)),
    ],
)
def test_parse_windows(
    text: str, days: set[int], start: tuple[int, int], end: tuple[int, int]
) -> None:
    window = TimeWindow.parse(text)
    assert window.days == frozenset(days)
    assert (window.start.hour, window.start.minute) == start
    assert (window.end.hour, window.end.minute) == end


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mon-fri 9-17", "'9' is not a time HH:MM"),
        ("mon-fri 09:00", "'09:00' is not HH:MM-HH:MM"),
        ("mon-fri 09:00-25:00", "'25:00' is not a time"),
        ("funday 09:00-10:00", "'funday' is not a day"),
        ("", "write e.g."),
        ("mon tue 09:00-10:00", "write e.g."),
    ],
)
def test_bad_windows_say_what_is_valid(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeWindow.parse(text)
    with pytest.raises(ValueError, match=message):
        Safeguards(windows=(text,))


def test_business_hours_window() -> None:
    window = TimeWindow.parse("mon-fri 09:00-17:00", tz=UTC)
    assert not window.contains(MONDAY + 8.99 * HOUR)
    assert window.remaining(MONDAY + 9 * HOUR) == 8 * HOUR
    assert window.remaining(MONDAY + 16.5 * HOUR) == 0.5 * HOUR
    assert not window.contains(MONDAY + 17 * HOUR)
    assert window.contains(MONDAY + 4 * DAY + 10 * HOUR)  # Friday
    assert not window.contains(MONDAY + 5 * DAY + 10 * HOUR)  # Saturday


def test_overnight_window_belongs_to_the_day_it_starts() -> None:
    window = TimeWindow.parse("fri 22:00-06:00", tz=UTC)
    friday = MONDAY + 4 * DAY
    assert window.remaining(friday + 23 * HOUR) == 7 * HOUR
    assert window.remaining(friday + DAY + 5 * HOUR) == HOUR  # Saturday 05:00
    assert not window.contains(friday + 5 * HOUR)  # Friday 05:00 belongs to Thursday's
    assert not window.contains(friday + DAY + 23 * HOUR)


def test_monkey_strikes_only_inside_its_window_and_never_past_its_end() -> None:
    clock = FakeClock(wall_start=MONDAY)
    guards = Safeguards(windows=(TimeWindow.parse("mon-fri 09:00-17:00", tz=UTC),))
    monkey = ChaosMonkey(True, clock=clock, seed=9, duration=2 * HOUR, safeguards=guards)
    monkey.register_target("db", lambda: None, lambda: None, frequency=HOUR)
    steps = monkey.plan(14 * DAY)
    window = guards.windows[0]
    assert isinstance(window, TimeWindow)
    injects = [s for s in steps if s.action is Action.INJECT]
    assert len(injects) > 10
    for step in injects:
        wall = step.at + MONDAY
        assert window.contains(wall)
        assert step.limit == min(2 * HOUR, window.remaining(wall))
    skipped = [s for s in steps if s.action is Action.SKIP and s.reason == "window"]
    assert skipped  # night and weekend arrivals
    assert any(s.limit < 2 * HOUR for s in injects)  # cut at 17:00


def test_file_kill_switch(tmp_path: Path) -> None:
    switch = KillSwitch(tmp_path / "state")
    assert not switch.engaged()
    assert switch.reason() is None
    switch.engage("incident 42")
    assert switch.engaged()
    assert switch.reason() == "incident 42"
    switch.path.write_text("garbage")
    assert switch.reason() == ""
    with pytest.raises(ChaosRefusedError, match=r"chaos\.stop is engaged"):
        Safeguards(kill_switch=switch).check_start()
    assert switch.release()
    Safeguards(kill_switch=switch).check_start()


def test_in_process_kill_switch_refuses_new_faults() -> None:
    assert kill_switch_reason() is None
    kill_switch("game day over")
    assert kill_switch_reason() == "game day over"
    with pytest.raises(ChaosRefusedError, match="game day over"):
        Safeguards().check_start()
    with pytest.raises(ChaosRefusedError, match="kill switch is engaged"):
        Injector().add("x", Latency(1))
    assert release_kill_switch()
    assert not release_kill_switch()
    Safeguards().check_start()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_active": 0}, "max_active"), ({"poll_interval": 0}, "poll_interval")],
)
def test_bad_safeguards(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Safeguards(**kwargs)  # type: ignore[arg-type]
