"""The governor: may this trigger start a recovery? Decided with no I/O and no waiting.

It takes the current time as an argument, so the rules (dedup, flapping, the remediation's
breaker, cooldown, the rate limit) are tested by handing in numbers, and the engine
(`selfheal.recovery.RecoveryEngine`) only does the waiting and the acting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from selfheal.recovery._limits import FlapDetector, FlapPolicy, RateLimit, TokenBucket

__all__ = ["Decision", "Governor", "Limits", "Verdict"]


class Verdict(StrEnum):
    """What the governor says about a trigger; everything but RUN is a suppression reason."""

    RUN = "run"
    DEDUP = "dedup"
    COOLDOWN = "cooldown"
    FLAPPING = "flapping"
    BREAKER_OPEN = "breaker_open"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class Limits:
    """The per-rule limits the governor applies to a subject.

    Attributes:
        cooldown: Seconds after a recovery ends during which new triggers are suppressed.
        breaker_failures: Consecutive failed recoveries that open the subject's breaker.
        breaker_reset: Seconds the breaker stays open before one trial recovery is allowed.
        flap: Flap thresholds, or None to not detect flapping.
    """

    cooldown: float = 60.0
    breaker_failures: int = 3
    breaker_reset: float = 600.0
    flap: FlapPolicy | None = field(default_factory=FlapPolicy)


@dataclass(slots=True)
class _Subject:
    active: str | None = None  # id of the running recovery
    cooldown_until: float = float("-inf")
    failures: int = 0
    breaker_until: float | None = None  # set while the breaker is open
    flap: FlapDetector | None = None
    last_reason: Verdict | None = None
    repeats: int = 0
    flap_escalated: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The governor's answer to a trigger.

    Attributes:
        verdict: RUN, or why not.
        first: False when this is a repeat of the previous suppression of the subject for the
            same reason (the engine counts those instead of publishing each one).
        escalate: Why a person must now be told ("flapping", "breaker_open"), or None.
        repeats: How many identical suppressions were folded since the last published one.
    """

    verdict: Verdict
    first: bool = True
    escalate: str | None = None
    repeats: int = 0


class Governor:
    """Decides, per subject, whether a trigger may start a recovery.

    Checks in order: a recovery of the subject is running (dedup), the subject is flapping,
    its remediation breaker is open, it is cooling down, the global rate limit. A token is
    taken from the rate limit only when everything else allows the recovery.

    Args:
        rate_limit: The engine-wide limit, or None for no limit.
        now: Monotonic time at creation.
    """

    def __init__(self, rate_limit: RateLimit | None, now: float) -> None:
        self._bucket = TokenBucket(rate_limit, now) if rate_limit else None
        self._subjects: dict[str, _Subject] = {}

    def _get(self, key: str, limits: Limits) -> _Subject:
        state = self._subjects.get(key)
        if state is None:
            state = self._subjects[key] = _Subject()
        if state.flap is None and limits.flap is not None:
            state.flap = FlapDetector(limits.flap)
        return state

    def is_active(self, key: str) -> bool:
        """Return whether a recovery of `key` is running."""
        state = self._subjects.get(key)
        return state is not None and state.active is not None

    def trigger(self, key: str, limits: Limits, now: float) -> Decision:
        """Decide on a failure signal for subject `key` at `now`.

        The signal also counts as a bad state for flap detection.

        Returns:
            The decision; when RUN, call `begin` next.
        """
        state = self._get(key, limits)
        escalate: str | None = None
        if state.active is not None:
            verdict = Verdict.DEDUP
        else:
            if state.flap is not None:
                state.flap.observe(False, now)
            if state.flap is not None and state.flap.flapping:
                verdict = Verdict.FLAPPING
                # Tell a person once per flapping episode, however it started.
                if not state.flap_escalated:
                    state.flap_escalated = True
                    escalate = "flapping"
            elif state.breaker_until is not None and now < state.breaker_until:
                verdict = Verdict.BREAKER_OPEN
            elif now < state.cooldown_until:
                verdict = Verdict.COOLDOWN
            elif self._bucket is not None and not self._bucket.take(now):
                verdict = Verdict.RATE_LIMITED
            else:
                verdict = Verdict.RUN
            if verdict is not Verdict.FLAPPING:
                state.flap_escalated = False
        if verdict is Verdict.RUN:
            state.last_reason, state.repeats = None, 0
            return Decision(verdict)
        if verdict is state.last_reason and escalate is None:
            state.repeats += 1
            return Decision(verdict, first=False, repeats=state.repeats)
        repeats, state.last_reason, state.repeats = state.repeats, verdict, 0
        return Decision(verdict, escalate=escalate, repeats=repeats)

    def begin(self, key: str, recovery_id: str) -> None:
        """Mark a recovery of `key` as running (after a RUN decision)."""
        self._subjects[key].active = recovery_id

    def finish(self, key: str, limits: Limits, *, ok: bool, now: float, sim: bool = False) -> bool:
        """Record the end of the running recovery of `key`.

        A success closes the breaker and counts as a good state for flap detection; a failure
        counts towards the breaker.

        Args:
            key: The subject.
            limits: The rule's limits.
            ok: Whether the recovery (verified) succeeded.
            now: Monotonic time.
            sim: A dry run: only the cooldown starts; breaker and flap state are untouched,
                since nothing was actually done or observed.

        Returns:
            True when this failure opened the breaker (escalate).
        """
        state = self._get(key, limits)
        state.active = None
        state.cooldown_until = now + limits.cooldown
        state.last_reason, state.repeats = None, 0
        if sim:
            return False
        if ok:
            state.failures = 0
            state.breaker_until = None
            if state.flap is not None:
                state.flap.observe(True, now)
            return False
        state.failures += 1
        if state.failures >= limits.breaker_failures:
            # Re-arming on each failure of a half-open trial keeps it open another period.
            state.breaker_until = now + limits.breaker_reset
            return True
        return False

    def observe(self, key: str, limits: Limits, *, good: bool, now: float) -> bool | None:
        """Feed a state seen elsewhere (e.g. a health check) into flap detection.

        Returns:
            As `FlapDetector.observe`, or None when flap detection is off.
        """
        state = self._get(key, limits)
        return state.flap.observe(good, now) if state.flap else None

    def snapshot(self, key: str) -> dict[str, Any]:
        """Return the subject's state for status displays and tests."""
        state = self._subjects.get(key)
        if state is None:
            return {}
        return {
            "active": state.active,
            "cooldown_until": state.cooldown_until,
            "failures": state.failures,
            "breaker_until": state.breaker_until,
            "flapping": bool(state.flap and state.flap.flapping),
            "changes": state.flap.changes if state.flap else 0,
        }
