"""Rules and actions from plain data: the ``[[recovery]]`` tables, validated elsewhere.

`selfheal.recovery.config` validates a config's rules with pydantic and dumps them (defaults
filled) into the daemon's plan; these functions turn such dumps into `Rule`s and actions
with the standard library only, so the daemon's process never loads pydantic. The models'
own ``to_rule``/``to_action`` use them too: one mapping from keys to objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from selfheal._calls import resolve_function
from selfheal.recovery._actions import (
    Action,
    CallFunction,
    CallWebhook,
    DegradeFeature,
    NoAction,
    RestartProgram,
    RunCommand,
)
from selfheal.recovery._limits import FlapPolicy, RateLimit
from selfheal.recovery._rules import Rule, Verify

__all__ = ["action_from_dict", "rate_limit_from_dict", "rule_from_dict"]


def action_from_dict(step: Mapping[str, Any]) -> Action:
    """Return the action of a step table (``restart``, ``command``, ``webhook``...)."""
    if step.get("restart") is not None:
        return RestartProgram(step["restart"])
    command = step.get("command")
    if command is not None:
        argv = (command,) if isinstance(command, str) else tuple(command)
        return RunCommand(
            argv, shell=bool(step.get("shell")), cwd=step.get("cwd"), env=step.get("env")
        )
    if step.get("webhook") is not None:
        return CallWebhook(
            step["webhook"], step.get("method") or "POST", step.get("headers"), step.get("body")
        )
    if step.get("degrade") is not None:
        return DegradeFeature(step["degrade"])
    if step.get("call") is not None:
        return CallFunction(resolve_function(step["call"]), name=step["call"])
    return NoAction()


def rule_from_dict(rule: Mapping[str, Any]) -> Rule:
    """Return the `Rule` of a ``[[recovery]]`` table (as `RecoveryRuleConfig` dumps it)."""
    steps = [rule["action"]] if rule.get("action") is not None else rule.get("steps") or []
    verify = rule.get("verify")
    breaker = rule.get("breaker") or {}
    flap = rule.get("flap", True)
    defaults = Rule.__dataclass_fields__
    return Rule(
        on=rule["on"],
        steps=tuple(action_from_dict(s) for s in steps),
        name=rule.get("name") or "",
        when=dict(rule.get("when") or {}),
        verify=(
            Verify(tuple(verify["checks"]), verify.get("within", 30.0), verify.get("interval", 1.0))
            if verify
            else None
        ),
        escalate=tuple(action_from_dict(s) for s in rule.get("escalate") or ()),
        dedup_key=rule.get("dedup_key") or "{subject}",
        timeout=rule.get("timeout", defaults["timeout"].default),
        retries=rule.get("retries", defaults["retries"].default),
        retry_delay=rule.get("retry_delay", defaults["retry_delay"].default),
        cooldown=rule.get("cooldown", defaults["cooldown"].default),
        breaker_failures=breaker.get("failures", defaults["breaker_failures"].default),
        breaker_reset=breaker.get("reset", defaults["breaker_reset"].default),
        flap=_flap(flap),
        fleet=bool(rule.get("fleet", False)),
    )


def rate_limit_from_dict(engine: Mapping[str, Any] | None) -> RateLimit | None:
    """Return the engine-wide `RateLimit` of a ``[recovery_engine]`` table, or None."""
    limit = (engine or {}).get("rate_limit")
    if not limit:
        return None
    return RateLimit(limit["per_minute"] / 60.0, limit.get("burst", 1))


def _flap(flap: object) -> FlapPolicy | None:
    # A table gives the thresholds, ``true`` (or no key) the defaults, ``false``/None none.
    if isinstance(flap, Mapping):
        return FlapPolicy(flap["window"], flap["high"], flap["low"])
    return FlapPolicy() if flap is True else None
