"""The app's synthetic tester and chaos monkey: made on first use, from their own packages.

Both are optional: an app that never touches ``app.synthetic_tester`` or ``app.chaos_monkey``
never imports `selfheal.synthetic` or `selfheal.chaos`. Their shapes are the article's
(`SyntheticTesterLike`, `ChaosMonkeyLike`); `as_component` runs either in a `Runtime`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, cast, runtime_checkable

from selfheal._clock import Clock
from selfheal._threads import in_own_thread
from selfheal.errors import StartError
from selfheal.events import EventBus
from selfheal.interfaces import Component

__all__ = [
    "ChaosMonkeyLike",
    "SyntheticTesterLike",
    "as_component",
    "chaos_allowed",
    "make_chaos_monkey",
    "make_synthetic_tester",
]

logger = logging.getLogger("selfheal.app")


@runtime_checkable
class SyntheticTesterLike(Protocol):
    """The article's `SyntheticTester`: scenarios run every `frequency` seconds."""

    def register_scenario(
        self, name: str, test_func: Callable[..., object], frequency: float = 300
    ) -> object:
        """Run ``test_func(app_url)`` every `frequency` seconds once started."""
        ...

    def start(self) -> object:
        """Start running the scenarios."""
        ...

    def stop(self) -> object:
        """Stop running them."""
        ...

    def get_status(self) -> Mapping[str, Any]:
        """Return per scenario: successes, failures, last run."""
        ...


@runtime_checkable
class ChaosMonkeyLike(Protocol):
    """The article's `ChaosMonkey`: registered targets disrupted at random, then recovered."""

    enabled: bool

    def register_target(
        self,
        name: str,
        disrupt_func: Callable[[], object],
        recovery_func: Callable[[], object],
        frequency: float = 3600,
    ) -> object:
        """Disrupt `name` every `frequency` seconds on average, and recover it."""
        ...

    def start(self) -> object:
        """Start disrupting (does nothing unless enabled)."""
        ...

    def stop(self) -> object:
        """Stop and recover every disrupted target."""
        ...


# ---------------------------------------------------------------------------------------------
# THE SYNTHETIC TESTER'S WIRING: the one place that binds `SelfHealingApp.synthetic_tester`
# to `selfheal.synthetic.SyntheticTester`, which is being built on its own branch. When it
# lands, check its constructor here (the article's is `SyntheticTester(app_base_url)`; ours
# is expected to take the app's clock and bus as keywords).
# ---------------------------------------------------------------------------------------------
def make_synthetic_tester(app_url: str, *, clock: Clock, bus: EventBus) -> SyntheticTesterLike:
    """Return a `selfheal.synthetic.SyntheticTester` for `app_url` on the app's clock and bus.

    Raises:
        StartError: If this version of selfheal has no `selfheal.synthetic` yet.
    """
    try:
        module = importlib.import_module("selfheal.synthetic")
    except ModuleNotFoundError as exc:
        if exc.name != "selfheal.synthetic":
            raise
        raise StartError(
            "this version of selfheal has no selfheal.synthetic; pass synthetic_tester=... "
            "(anything with register_scenario, start, stop, get_status) to SelfHealingApp"
        ) from None
    tester = module.SyntheticTester(app_url, clock=clock, bus=bus)
    return cast("SyntheticTesterLike", tester)


def chaos_allowed(explicit: bool | None, environ: Mapping[str, str]) -> bool:
    """Return whether the app's chaos monkey is enabled.

    Never where ``SELFHEAL_ENV=production``; elsewhere `explicit` if given, else
    ``ENABLE_CHAOS`` (``true``, ``1``, ``yes`` or ``on``), as `selfheal.chaos` reads it.
    """
    from selfheal.chaos import ChaosRefusedError, chaos_enabled, refuse_in_production

    if not chaos_enabled(explicit, environ):
        return False
    try:
        refuse_in_production(allow=False, environ=environ)
    except ChaosRefusedError:
        logger.warning("chaos stays off: SELFHEAL_ENV=production")
        return False
    return True


def make_chaos_monkey(
    enabled: bool,
    *,
    clock: Clock,
    bus: EventBus,
    steady_state: Callable[[], object] | None = None,
) -> ChaosMonkeyLike:
    """Return a `selfheal.chaos.ChaosMonkey` on the app's clock and bus.

    Args:
        enabled: Whether it may disrupt anything (`chaos_allowed`).
        clock: Its schedule's clock.
        bus: Where ``chaos.<target>.*`` events go.
        steady_state: Checked after an abort (the app's health).
    """
    from selfheal.chaos import ChaosMonkey

    return ChaosMonkey(enabled, clock=clock, bus=bus, steady_state=steady_state)


def as_component(obj: object) -> Component:
    """Return `obj` as a `Component`: itself, its ``as_component()``, or a thread adapter.

    The article's testers and monkeys have sync ``start()``/``stop()`` (a thread of their
    own); those run in a thread so the event loop is never blocked.
    """
    to_component = getattr(obj, "as_component", None)
    if callable(to_component):
        return cast("Component", to_component())
    if inspect.iscoroutinefunction(getattr(obj, "start", None)):
        return cast("Component", obj)
    return _Threaded(obj)


class _Threaded:
    """A sync ``start()``/``stop()`` object as a `Component`."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __repr__(self) -> str:
        return f"{type(self.obj).__name__}(threaded)"

    async def start(self) -> None:
        """Call the object's ``start()`` in a thread of its own."""
        await in_own_thread(self.obj.start, name="app-start")

    async def stop(self) -> None:
        """Call the object's ``stop()`` in a thread of its own."""
        await in_own_thread(self.obj.stop, name="app-stop")
