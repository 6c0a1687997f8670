"""`SelfHealingApp`: every self-healing component of a service, wired once.

The article's closing example with its names and call shapes: a health monitor, a feature
manager, an event bus, a recovery manager, a synthetic tester and a chaos monkey, plus the
supervisor, the recovery engine and the journal, on one clock and one bus. Built from code
(``SelfHealingApp("shop")``) or from the ``selfheal.toml`` that ``selfheal run`` uses
(``SelfHealingApp.from_config(path)``). Standard library only, like the components it wires;
`from_config` needs pydantic. See docs/app.md.
"""

from selfheal.app._app import DEFAULT_APP_URL, SelfHealingApp
from selfheal.app._optional import (
    ChaosMonkeyLike,
    SyntheticTesterLike,
    as_component,
    chaos_allowed,
)
from selfheal.app._sources import HealthSources
from selfheal.app._wiring import journal_advice, journal_from_plan, recovery_engine_from_plan

__all__ = [
    "DEFAULT_APP_URL",
    "ChaosMonkeyLike",
    "HealthSources",
    "SelfHealingApp",
    "SyntheticTesterLike",
    "as_component",
    "chaos_allowed",
    "journal_advice",
    "journal_from_plan",
    "recovery_engine_from_plan",
]
