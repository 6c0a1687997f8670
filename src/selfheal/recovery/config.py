"""The ``[[recovery]]`` rules of ``selfheal.toml``.

```toml
[[recovery]]
name = "web crashed"
on = "process.*.exited"
when = { "data.exit_code" = { ne = 0 } }
verify = { checks = ["web-http"], within = 20, interval = 0.5 }
steps = [{ restart = "{subject}" }, { restart = "db" }]
escalate = [{ webhook = "https://pager.example/hook",
              headers = { Authorization = "Bearer ${PAGER_TOKEN}" } }]
cooldown = 30
```

A step (``action`` for a single one, ``steps`` for a ladder, ``escalate`` for notifications) is
a table with exactly one of ``restart``, ``command``, ``webhook``, ``degrade``, ``call``; an
empty table does nothing, so only its verification decides. See docs/recovery.md.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from selfheal._bounds import DAY, MAX_COUNT, MIN_PERIOD, YEAR
from selfheal._calls import resolve_function
from selfheal.events import check_pattern
from selfheal.recovery._actions import Action
from selfheal.recovery._conditions import compile_when
from selfheal.recovery._limits import RateLimit
from selfheal.recovery._plain import action_from_dict, rate_limit_from_dict, rule_from_dict
from selfheal.recovery._rules import Rule

__all__ = [
    "BreakerConfig",
    "FlapConfig",
    "RateLimitConfig",
    "RecoveryEngineConfig",
    "RecoveryRuleConfig",
    "StepConfig",
    "VerifyConfig",
    "rules_from_config",
]

_KINDS = ("restart", "command", "webhook", "degrade", "call")
# Every model refuses nan and inf: a timer of inf seconds never fires, or raises.
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
_COMMAND_ONLY = ("shell", "cwd", "env")
_WEBHOOK_ONLY = ("method", "headers", "body")


class StepConfig(BaseModel):
    """One action: exactly one of `restart`, `command`, `webhook`, `degrade`, `call`."""

    model_config = _STRICT

    restart: str | None = Field(default=None, min_length=1, description="program to restart")
    command: list[str] | str | None = Field(default=None, description="argv list (string if shell)")
    shell: bool = False
    cwd: str | None = None
    env: dict[str, str] | None = None
    webhook: str | None = Field(default=None, description="URL to call")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] | None = None
    body: dict[str, Any] | None = None
    degrade: str | None = Field(default=None, min_length=1, description="feature to degrade")
    call: str | None = Field(default=None, description="'module:function' called with the event")

    @model_validator(mode="after")
    def _one_kind(self) -> StepConfig:
        kinds = [k for k in _KINDS if getattr(self, k) is not None]
        if len(kinds) > 1:
            raise ValueError(
                f"a step has exactly one of {', '.join(_KINDS)}; got {', '.join(kinds)}"
            )
        kind = kinds[0] if kinds else None
        if kind != "command":
            extra = [k for k in _COMMAND_ONLY if k in self.model_fields_set]
            if extra:
                raise ValueError(f"{', '.join(extra)} only go with command")
        if kind != "webhook":
            extra = [k for k in _WEBHOOK_ONLY if k in self.model_fields_set]
            if extra:
                raise ValueError(f"{', '.join(extra)} only go with webhook")
        if kind == "command":
            self._check_command()
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ValueError("webhook must be an http:// or https:// URL")
        if self.call is not None:
            resolve_function(self.call)
        return self

    def _check_command(self) -> None:
        command = self.command
        if self.shell and not isinstance(command, str):
            raise ValueError("with shell = true, command is one string (a shell command line)")
        if not self.shell and isinstance(command, str):
            raise ValueError(
                "command is an argv list, e.g. ['systemctl', 'restart', 'web']; "
                "a command line string needs shell = true"
            )
        if isinstance(command, list) and not command:
            raise ValueError("command must name a program")

    def to_action(self) -> Action:
        """Return the action this step describes."""
        return action_from_dict(self.model_dump())


class VerifyConfig(BaseModel):
    """Health checks that must pass after a step, and how long they have."""

    model_config = _STRICT

    checks: list[str] = Field(min_length=1)
    within: float = Field(default=30.0, ge=MIN_PERIOD, le=DAY)
    interval: float = Field(default=1.0, ge=MIN_PERIOD, le=DAY)


class BreakerConfig(BaseModel):
    """After `failures` failed recoveries of a subject, stop for `reset` seconds and escalate."""

    model_config = _STRICT

    failures: int = Field(default=3, ge=1, le=MAX_COUNT)
    reset: float = Field(default=600.0, ge=MIN_PERIOD, le=YEAR)


class FlapConfig(BaseModel):
    """Flapping starts at `high` state changes within `window` seconds, ends at `low`."""

    model_config = _STRICT

    window: float = Field(default=600.0, ge=MIN_PERIOD, le=YEAR)
    high: int = Field(default=6, ge=2, le=MAX_COUNT)
    low: int = Field(default=2, ge=0, le=MAX_COUNT)

    @model_validator(mode="after")
    def _low_below_high(self) -> FlapConfig:
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self


class RecoveryRuleConfig(BaseModel):
    """One recovery rule: which events it reacts to, what it does, how it is verified."""

    model_config = _STRICT

    name: str = ""
    on: str = Field(min_length=1, description="event type pattern, e.g. 'process.*.exited'")
    when: dict[str, Any] = Field(default_factory=dict)
    action: StepConfig | None = None
    steps: list[StepConfig] = Field(default_factory=list)
    escalate: list[StepConfig] = Field(default_factory=list)
    verify: VerifyConfig | None = None
    dedup_key: str = Field(default="{subject}", min_length=1)
    timeout: float = Field(default=30.0, ge=MIN_PERIOD, le=DAY)
    retries: int = Field(default=0, ge=0, le=1000)
    retry_delay: float = Field(default=1.0, ge=0, le=DAY)
    cooldown: float = Field(default=60.0, ge=0, le=YEAR)
    breaker: BreakerConfig = BreakerConfig()
    flap: FlapConfig | None = FlapConfig()
    fleet: bool = False  # one node of the fleet runs it (with a Redis [journal] url)

    @field_validator("on")
    @classmethod
    def _pattern(cls, value: str) -> str:
        return check_pattern(value)

    @field_validator("flap", mode="before")
    @classmethod
    def _flap_switch(cls, value: Any) -> Any:
        # ``flap = false`` turns flap detection off; ``flap = true`` keeps the defaults.
        if value is False:
            return None
        if value is True:
            return FlapConfig()
        return value

    @field_validator("when")
    @classmethod
    def _when(cls, value: dict[str, Any]) -> dict[str, Any]:
        compile_when(value)
        return value

    @model_validator(mode="after")
    def _one_ladder(self) -> RecoveryRuleConfig:
        if (self.action is None) == (not self.steps):
            raise ValueError(
                "give either action (one step) or steps (an escalation ladder), not "
                + ("both" if self.action is not None else "neither")
            )
        return self

    def to_rule(self) -> Rule:
        """Return the `Rule` this config describes."""
        return rule_from_dict(self.model_dump())


class RateLimitConfig(BaseModel):
    """At most `per_minute` recoveries a minute, engine-wide, with bursts of `burst`."""

    model_config = _STRICT

    per_minute: float = Field(gt=0, le=MAX_COUNT)
    burst: int = Field(default=1, ge=1, le=MAX_COUNT)


class RecoveryEngineConfig(BaseModel):
    """Engine-wide settings (meant for a ``[recovery_engine]`` table of ``selfheal.toml``).

    ```toml
    [recovery_engine]
    dry_run = false
    rate_limit = { per_minute = 10, burst = 3 }
    ```

    Without a ``rate_limit``, at most 60 recoveries a minute start, 20 at once: a storm of
    failures with no cooldown and no flap detection cannot start thousands.
    """

    model_config = _STRICT

    dry_run: bool = False
    rate_limit: RateLimitConfig = Field(
        default_factory=lambda: RateLimitConfig(per_minute=60, burst=20),
        description="recoveries started engine-wide, at most",
    )

    def limit(self) -> RateLimit | None:
        """Return the `RateLimit` for `RecoveryEngine(rate_limit=...)`, or None."""
        return rate_limit_from_dict(self.model_dump())


def rules_from_config(configs: list[RecoveryRuleConfig]) -> list[Rule]:
    """Return the rules of a config's ``recovery`` list, in order.

    Args:
        configs: ``SelfhealConfig.recovery``.

    Returns:
        Rules for `RecoveryEngine`.
    """
    return [c.to_rule() for c in configs]
