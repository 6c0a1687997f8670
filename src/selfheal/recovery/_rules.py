"""What a recovery rule says: which events, which steps, how each is verified, how limited."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from selfheal.events import Event, check_pattern, matches, parse_type
from selfheal.recovery._actions import Action
from selfheal.recovery._conditions import Condition, compile_when
from selfheal.recovery._governor import Limits
from selfheal.recovery._limits import FlapPolicy

__all__ = ["Rule", "Verify"]


@dataclass(frozen=True, slots=True)
class Verify:
    """How a recovery step proves it worked: named health checks pass within a time limit.

    Attributes:
        checks: Names of health checks (of the engine's `HealthSource`) that must all PASS;
            ``{subject}``-style placeholders are filled from the event, as in actions.
        within: Seconds after the action during which they may still fail.
        interval: Seconds between polls.
    """

    checks: tuple[str, ...]
    within: float = 30.0
    interval: float = 1.0

    def __post_init__(self) -> None:
        # Accept a list, and a lone name (a str is an iterable of letters, not of names).
        given: object = self.checks
        checks = (given,) if isinstance(given, str) else tuple(self.checks)
        object.__setattr__(self, "checks", checks)
        if not self.checks:
            raise ValueError("Verify: name at least one health check")
        if self.within <= 0 or self.interval <= 0:
            raise ValueError(
                f"Verify: within and interval must be > 0, got {self.within!r}, {self.interval!r}"
            )

    def describe(self) -> dict[str, Any]:
        """Return the checks and their time limits, as events record them."""
        return {"checks": list(self.checks), "within": self.within, "interval": self.interval}


@dataclass(frozen=True, slots=True)
class Rule:
    """What to do about events matching `on` (and `when`).

    The steps form an escalation ladder: each is tried (1 + `retries` times, each try being
    the action and then the verification) before the next; when every step failed, the
    `escalate` actions (a webhook to a person) run and ``recovery.<subject>.failed`` is
    published.

    Attributes:
        on: Event type pattern (``process.*.exited``).
        steps: The ladder, first rung first.
        name: Shown in events; default: the pattern.
        when: Conditions on the event, all of which must hold (see `compile_when`).
        verify: Health checks that must pass after each step, or None to trust the action.
        escalate: Actions that tell a person when the ladder is exhausted, the subject is
            flapping or its remediation breaker opened.
        dedup_key: Template of the subject a recovery is about; one recovery per subject at
            a time, and cooldown, flapping and the breaker are per subject.
        timeout: Seconds each action may take.
        retries: Extra tries of each step before moving up the ladder.
        retry_delay: Seconds between tries of a step.
        cooldown: Seconds after a recovery of the subject during which triggers are ignored.
        breaker_failures: Consecutive failed recoveries of a subject that stop automatic
            action (and escalate) for `breaker_reset` seconds.
        breaker_reset: See `breaker_failures`.
        flap: Flap detection thresholds, or None to not detect flapping.
        fleet: One node of the fleet runs this rule's recovery of a subject (when the engine
            has `leases`); the others wait, and take over if that node dies. Leave it off for
            what each node must do itself (restarting its own program).
    """

    on: str
    steps: tuple[Action, ...]
    name: str = ""
    when: Mapping[str, Any] = field(default_factory=dict)
    verify: Verify | None = None
    escalate: tuple[Action, ...] = ()
    dedup_key: str = "{subject}"
    timeout: float = 30.0
    retries: int = 0
    retry_delay: float = 1.0
    cooldown: float = 60.0
    breaker_failures: int = 3
    breaker_reset: float = 600.0
    flap: FlapPolicy | None = field(default_factory=FlapPolicy)
    fleet: bool = False
    conditions: tuple[Condition, ...] = field(init=False, repr=False, compare=False)
    limits: Limits = field(init=False, repr=False, compare=False)
    _hears_recovery: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        try:
            check_pattern(self.on)
        except ValueError as exc:
            raise ValueError(f"Rule: on {exc}") from None
        set_(self, "steps", tuple(self.steps))
        set_(self, "escalate", tuple(self.escalate))
        if not self.steps:
            raise ValueError(f"Rule {self.on!r}: give at least one step")
        if self.timeout <= 0 or self.retries < 0 or self.retry_delay < 0 or self.cooldown < 0:
            raise ValueError(
                f"Rule {self.on!r}: need timeout > 0 and retries, retry_delay, cooldown >= 0"
            )
        if self.breaker_failures < 1 or self.breaker_reset <= 0:
            raise ValueError(f"Rule {self.on!r}: need breaker_failures >= 1, breaker_reset > 0")
        set_(self, "name", self.name or self.on)
        set_(self, "conditions", compile_when(self.when))
        set_(self, "_hears_recovery", parse_type(self.on).area == "recovery")
        set_(
            self,
            "limits",
            Limits(self.cooldown, self.breaker_failures, self.breaker_reset, self.flap),
        )

    def matches(self, event: Event) -> bool:
        """Return whether this rule handles `event`.

        The engine's own reports (``recovery.*``) match only a rule whose pattern starts with
        ``recovery.``, so a rule on ``*.failed`` cannot feed on them.
        """
        if parse_type(event.type).area == "recovery" and not self._hears_recovery:
            return False
        return matches(self.on, event.type) and all(c.test(event) for c in self.conditions)
