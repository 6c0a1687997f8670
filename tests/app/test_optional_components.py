"""The synthetic tester and chaos monkey: made on first use, chaos off unless asked, never in
production, and the base URL from APP_URL."""

from __future__ import annotations

import sys
import types
from typing import Any

import pytest

from app_helpers import RecordingMonkey
from selfheal.app import DEFAULT_APP_URL, SelfHealingApp, as_component, chaos_allowed
from selfheal.errors import StartError
from selfheal.interfaces import Component
from selfheal.testing import FakeClock


@pytest.mark.parametrize(
    ("explicit", "environ", "enabled"),
    [
        (None, {}, False),
        (None, {"ENABLE_CHAOS": "true"}, True),
        (None, {"ENABLE_CHAOS": "True"}, True),
        (None, {"ENABLE_CHAOS": "false"}, False),
        (None, {"ENABLE_CHAOS": "maybe"}, False),
        (True, {}, True),
        (False, {"ENABLE_CHAOS": "true"}, False),
        (None, {"ENABLE_CHAOS": "true", "SELFHEAL_ENV": "production"}, False),
        (True, {"SELFHEAL_ENV": "production"}, False),
        (True, {"SELFHEAL_ENV": "staging"}, True),
    ],
)
def test_chaos_is_on_only_when_asked_and_never_in_production(
    explicit: bool | None, environ: dict[str, str], enabled: bool
) -> None:
    assert chaos_allowed(explicit, environ) is enabled
    assert SelfHealingApp("shop", chaos=explicit, environ=environ).chaos_enabled is enabled


def test_the_base_url_comes_from_app_url() -> None:
    assert SelfHealingApp("shop", environ={}).app_url == DEFAULT_APP_URL
    app = SelfHealingApp("shop", environ={"APP_URL": "http://127.0.0.1:9000"})
    assert app.app_url == "http://127.0.0.1:9000"
    explicit = SelfHealingApp("shop", app_url="http://a", environ={"APP_URL": "http://b"})
    assert explicit.app_url == "http://a"


class _Tester:
    """What `selfheal.synthetic.SyntheticTester` is expected to be called with."""

    def __init__(self, app_base_url: str, **kw: Any) -> None:
        self.app_base_url = app_base_url
        self.kw = kw


def test_the_synthetic_tester_is_selfheal_synthetic_s_made_on_first_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    module = types.ModuleType("selfheal.synthetic")
    module.SyntheticTester = _Tester  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "selfheal.synthetic", module)
    clock = FakeClock()
    app = SelfHealingApp("shop", clock=clock, environ={"APP_URL": "http://127.0.0.1:9"})
    tester = app.synthetic_tester
    assert isinstance(tester, _Tester)
    assert tester.app_base_url == "http://127.0.0.1:9"
    assert tester.kw == {"clock": clock, "bus": app.event_bus}
    assert app.synthetic_tester is tester


def test_without_a_synthetic_package_the_error_says_what_to_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "selfheal.synthetic", None)  # import fails as if absent
    app = SelfHealingApp("shop")
    with pytest.raises(StartError, match=r"no selfheal.synthetic; pass synthetic_tester=\.\.\."):
        _ = app.synthetic_tester


def test_an_unused_tester_or_monkey_is_never_made() -> None:
    app = SelfHealingApp("shop")
    app._prepare()
    assert [type(c).__name__ for c in app.runtime.components] == [
        "HealthMonitor",
        "RecoveryManager",
        "_Drain",
    ]


@pytest.mark.anyio
async def test_sync_and_async_objects_become_components() -> None:
    log: list[str] = []
    threaded = as_component(RecordingMonkey(log, enabled=True))
    assert isinstance(threaded, Component)
    await threaded.start()
    await threaded.stop()
    assert log == ["chaos.start", "chaos.stop"]

    class Native:
        async def start(self) -> None:
            log.append("native.start")

        async def stop(self) -> None:
            log.append("native.stop")

    native = Native()
    assert as_component(native) is native

    class HasComponent:
        def as_component(self) -> Native:
            return native

    assert as_component(HasComponent()) is native
