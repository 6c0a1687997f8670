"""Event-driven recovery: rules that act on failure events, verify the fix and escalate.

`RecoveryManager` is the article's small API (one function per event type); `RecoveryEngine`
is the full one (rules, actions, verification, escalation ladders, dedup, cooldown, flap
detection, a breaker on the remediation, a global rate limit, dry runs). This package needs
only the standard library; `CallWebhook` imports httpx when it runs and
`selfheal.recovery.config` (TOML rules) needs pydantic.
"""

from selfheal.interfaces import Degradable
from selfheal.recovery._actions import (
    Action,
    ActionContext,
    ActionError,
    CallFunction,
    CallWebhook,
    DegradeFeature,
    NoAction,
    RestartProgram,
    RunCommand,
)
from selfheal.recovery._conditions import OPERATORS, Condition, compile_when
from selfheal.recovery._engine import RecoveryEngine
from selfheal.recovery._governor import Decision, Governor, Limits, Verdict
from selfheal.recovery._limits import FlapDetector, FlapPolicy, RateLimit, TokenBucket
from selfheal.recovery._manager import RecoveryManager
from selfheal.recovery._rules import Rule, Verify
from selfheal.recovery._templates import event_fields, render

__all__ = [
    "OPERATORS",
    "Action",
    "ActionContext",
    "ActionError",
    "CallFunction",
    "CallWebhook",
    "Condition",
    "Decision",
    "Degradable",
    "DegradeFeature",
    "FlapDetector",
    "FlapPolicy",
    "Governor",
    "Limits",
    "NoAction",
    "RateLimit",
    "RecoveryEngine",
    "RecoveryManager",
    "RestartProgram",
    "Rule",
    "RunCommand",
    "TokenBucket",
    "Verdict",
    "Verify",
    "compile_when",
    "event_fields",
    "render",
]
