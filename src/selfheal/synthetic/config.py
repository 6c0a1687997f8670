"""The ``[synthetic.NAME]`` scenarios of ``selfheal.toml``, validated with pydantic.

```toml
[synthetic.checkout]
base_url = "http://127.0.0.1:8000"
interval = 60                 # seconds between runs (jittered)
timeout = 20                  # the whole run: every attempt, cleanup included
retries = 1                   # a pass after a retry is recorded as such, not as a failure
critical = true               # failing makes the service not ready
headers = { Authorization = "Bearer ${SHOP_TOKEN}" }

[[synthetic.checkout.steps]]
name = "create order"
method = "POST"
path = "/orders"
json = { sku = "A1", qty = 1 }
conditions = ["[STATUS] == 201", "[RESPONSE_TIME] < 300", "[BODY].status == new"]
capture = { order_id = "[BODY].id" }

[[synthetic.checkout.steps]]
name = "read order"
path = "/orders/{order_id}"
expect = { status = 200, json = { sku = "A1" } }

[[synthetic.checkout.cleanup]]
name = "delete order"
method = "DELETE"
path = "/orders/{order_id}"
```

A scenario has either ``steps`` (declarative HTTP) or ``call = "module:function"`` (a Python
function given the base URL). The daemon's config composes `SyntheticTable` as its
``synthetic`` key; `add_scenarios` registers the scenarios on a `SyntheticTester`. Errors name
the key (``synthetic.checkout.steps[0].conditions``) and say what is valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from selfheal._bounds import DAY, MAX_COUNT, MIN_PERIOD, YEAR
from selfheal._calls import resolve_function
from selfheal._httpcheck import HttpConditions
from selfheal.synthetic._conditions import parse_capture, parse_conditions
from selfheal.synthetic._http import METHODS, HttpScenario, HttpStep
from selfheal.synthetic._options import NAME_RULE, name_ok, scenario_options, url_problem
from selfheal.synthetic._records import ScenarioOptions
from selfheal.synthetic._tester import SyntheticTester

__all__ = [
    "ExpectConfig",
    "ScenarioConfig",
    "ScenarioName",
    "StepConfig",
    "SyntheticTable",
    "add_scenarios",
]

_STATUS_MIN, _STATUS_MAX = 100, 599


def _scenario_name(name: str) -> str:
    if not name_ok(name):
        raise ValueError(f"scenario names are {NAME_RULE} (they appear in event types)")
    return name


#: A scenario's name, as a key of ``[synthetic]``: it becomes one segment of event types.
ScenarioName = Annotated[str, AfterValidator(_scenario_name)]


class ExpectConfig(BaseModel):
    """What a step's response must be like (every condition given must hold)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    status: int | list[int] | None = Field(
        default=None, description="statuses that pass (default: any 2xx or 3xx)"
    )
    body_contains: str | None = None
    body_matches: str | None = Field(default=None, description="a regular expression")
    json_fields: dict[str, Any] = Field(
        default_factory=dict, alias="json", description="dotted JSON paths and their values"
    )
    headers: dict[str, str] = Field(default_factory=dict, description="exact header values")
    max_response_time: float | None = Field(default=None, gt=0, le=DAY, description="seconds")

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: int | list[int] | None) -> int | list[int] | None:
        codes = [value] if isinstance(value, int) else value or []
        if isinstance(value, list) and not value:
            raise ValueError("give at least one status")
        bad = [c for c in codes if not _STATUS_MIN <= c <= _STATUS_MAX]
        if bad:
            raise ValueError(f"statuses are {_STATUS_MIN} to {_STATUS_MAX}, got {bad[0]}")
        return value

    @field_validator("body_matches")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from None
        return value

    def to_conditions(self) -> HttpConditions:
        """Return these conditions for the HTTP condition engine."""
        status = self.status
        return HttpConditions(
            status=(
                range(200, 400)
                if status is None
                else frozenset([status] if isinstance(status, int) else status)
            ),
            body_contains=self.body_contains,
            body_matches=re.compile(self.body_matches) if self.body_matches else None,
            json_fields=dict(self.json_fields),
            headers=dict(self.headers),
            max_response_time=self.max_response_time,
        )


class StepConfig(BaseModel):
    """One request of a declarative scenario (``[[synthetic.NAME.steps]]`` or ``cleanup``)."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, allow_inf_nan=False
    )

    name: str | None = Field(default=None, description="default: 'METHOD path'")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] = "GET"
    path: str = Field(min_length=1, description="relative to base_url, or an absolute URL")
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json", description="a JSON body")
    body: str | None = Field(default=None, description="a text body")
    expect: ExpectConfig = Field(default_factory=ExpectConfig)
    conditions: list[str] = Field(
        default_factory=list, description="Gatus-style: '[STATUS] == 201', '[BODY].id == 7'"
    )
    capture: dict[str, str] = Field(
        default_factory=dict, description="values for later steps: { id = '[BODY].id' }"
    )
    timeout: float = Field(default=10.0, gt=0, le=DAY, description="seconds the response may take")

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) and value.upper() in METHODS else value

    @field_validator("conditions")
    @classmethod
    def _conditions(cls, value: list[str]) -> list[str]:
        parse_conditions(value)
        return value

    @field_validator("capture")
    @classmethod
    def _capture(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not name.isidentifier():
                raise ValueError(
                    f"capture names are identifiers (letters, digits, _), got {name!r}"
                )
            parse_capture(text)
        return value

    @model_validator(mode="after")
    def _one_body(self) -> StepConfig:
        if self.json_body is not None and self.body is not None:
            raise ValueError("give json or body, not both")
        return self

    def to_step(self) -> HttpStep:
        """Return the step this config describes."""
        return HttpStep(
            self.name or f"{self.method} {self.path}",
            self.method,
            self.path,
            headers=self.headers,
            json=self.json_body,
            body=self.body,
            expect=self.expect.to_conditions(),
            conditions=self.conditions,
            capture=self.capture,
            timeout=self.timeout,
        )


class ScenarioConfig(BaseModel):
    """One scenario (``[synthetic.NAME]``): how often, how strictly, and what it does."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    base_url: str | None = Field(default=None, description="default: the tester's base URL")
    interval: float = Field(default=60.0, ge=MIN_PERIOD, le=DAY, description="seconds between runs")
    jitter: float = Field(default=0.1, ge=0, le=0.5, description="fraction of the interval")
    timeout: float | None = Field(
        default=None, ge=MIN_PERIOD, le=DAY, description="seconds for a whole run"
    )
    critical: bool = True
    retries: int = Field(default=0, ge=0, le=1000, description="attempts after the first, per run")
    retry_delay: float = Field(default=1.0, ge=0, le=DAY, description="seconds between attempts")
    failure_threshold: int = Field(default=1, ge=1, le=MAX_COUNT)
    success_threshold: int = Field(default=1, ge=1, le=MAX_COUNT)
    max_age: float | None = Field(default=None, gt=0, le=YEAR)
    suite: str | None = Field(default=None, min_length=1)
    enabled: bool = True
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every step")
    variables: dict[str, Any] = Field(default_factory=dict, description="for step templates")
    follow_redirects: bool = False
    steps: list[StepConfig] = Field(default_factory=list)
    cleanup: list[StepConfig] = Field(default_factory=list)
    call: str | None = Field(default=None, description="'module:function' given the base URL")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        problem = None if value is None else url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("call")
    @classmethod
    def _call(cls, value: str | None) -> str | None:
        if value is not None:
            resolve_function(value)
        return value

    @model_validator(mode="after")
    def _whole(self) -> ScenarioConfig:
        if (self.call is None) == (not self.steps):
            raise ValueError(
                "give either steps (declarative HTTP) or call ('module:function'), not "
                + ("both" if self.call is not None else "neither")
            )
        if self.call is not None:
            extra = [k for k in ("cleanup", "headers", "variables") if getattr(self, k)]
            if extra:
                raise ValueError(f"{', '.join(extra)} only go with steps, not with call")
        try:
            # base_url is checked by its own validator; None means the tester's, valid already.
            scenario_options(
                "", frequency=self.interval, base_url=self.base_url or "http://t", **self._timing()
            )
            self.scenario()  # templates naming values no earlier step captures
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix(": ").removeprefix("HttpScenario: ")) from None
        return self

    def scenario(self) -> HttpScenario | Callable[[str], Any]:
        """Return what the tester runs: an `HttpScenario`, or the function `call` names."""
        if self.call is not None:
            fn: Callable[[str], Any] = resolve_function(self.call)
            return fn
        return HttpScenario(
            [s.to_step() for s in self.steps],
            cleanup=[s.to_step() for s in self.cleanup],
            headers=self.headers,
            variables=self.variables,
            follow_redirects=self.follow_redirects,
        )

    def register(self, tester: SyntheticTester, name: str) -> ScenarioOptions:
        """Register this scenario on `tester` as `name`.

        Returns:
            The options the tester validated.
        """
        return tester.register_scenario(
            name, self.scenario(), self.interval, base_url=self.base_url, **self._timing()
        )

    def _timing(self) -> dict[str, Any]:
        """Return the settings `register_scenario` and `scenario_options` take alike."""
        return {
            "timeout": self.timeout,
            "jitter": self.jitter,
            "retries": self.retries,
            "retry_delay": self.retry_delay,
            "critical": self.critical,
            "failure_threshold": self.failure_threshold,
            "success_threshold": self.success_threshold,
            "max_age": self.max_age,
            "suite": self.suite,
        }


#: The ``[synthetic]`` table: scenarios by name (``synthetic: SyntheticTable`` in a model).
SyntheticTable = dict[ScenarioName, ScenarioConfig]


def add_scenarios(tester: SyntheticTester, table: Mapping[str, ScenarioConfig]) -> list[str]:
    """Register every enabled scenario of a ``[synthetic]`` table on `tester`.

    Args:
        tester: The tester (the daemon's).
        table: Scenarios by name, as validated (`SyntheticTable`).

    Returns:
        The names registered, in the table's order (disabled ones left out).

    Raises:
        ValueError: A name the tester already has.
    """
    added = []
    for name, config in table.items():
        if config.enabled:
            config.register(tester, name)
            added.append(name)
    return added
