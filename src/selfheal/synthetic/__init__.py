"""Synthetic transactions: scenarios that exercise a service like a user would, all the time.

The article's `SyntheticTester`, on the shared scheduler::

    from selfheal.synthetic import SyntheticTester

    tester = SyntheticTester("http://127.0.0.1:8000")
    tester.register_scenario("product_search", test_product_search, frequency=300)
    tester.start()                       # a background thread; await tester.astart() in async code
    tester.get_status()["product_search"]["success_count"]

A scenario is a function of the base URL (sync or async) that raises on failure, or a
declarative `HttpScenario`: steps with conditions (`HttpConditions`, or Gatus-style strings
such as ``"[STATUS] == 201"``), values captured for later steps and cleanup steps that always
run. Runs are recorded as passed, passed after a retry or failed; the tester publishes
``synthetic.<name>.failed`` / ``.recovered`` events and is a `HealthSource` for readiness.

Standard library only; declarative scenarios need httpx (the ``server`` extra) when they run,
and the ``[synthetic.NAME]`` config models (`selfheal.synthetic.config`) need pydantic.
See ``docs/synthetic.md``.
"""

from selfheal._httpcheck import HttpConditions
from selfheal.synthetic._conditions import parse_conditions
from selfheal.synthetic._http import HttpScenario, HttpStep, StepFailedError
from selfheal.synthetic._records import (
    RunOutcome,
    RunRecord,
    ScenarioOptions,
    ScenarioReport,
    ScenarioStatus,
    StepRecord,
    SuiteReport,
)
from selfheal.synthetic._tester import SYNTHETIC_HEADER, SyntheticTester

__all__ = [
    "SYNTHETIC_HEADER",
    "HttpConditions",
    "HttpScenario",
    "HttpStep",
    "RunOutcome",
    "RunRecord",
    "ScenarioOptions",
    "ScenarioReport",
    "ScenarioStatus",
    "StepFailedError",
    "StepRecord",
    "SuiteReport",
    "SyntheticTester",
    "parse_conditions",
]
