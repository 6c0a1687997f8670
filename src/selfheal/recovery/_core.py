"""The decisions of the recovery engine, as plain code with no I/O and no waiting.

Everything here takes the current time as an argument, so that the rules (may this recovery
start? is this subject flapping? is the remediation's breaker open?) are tested by handing in
numbers, and the engine (`selfheal.recovery._engine`) only does the waiting and the acting.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from selfheal.events import Event

__all__ = [
    "Condition",
    "FlapDetector",
    "FlapPolicy",
    "Governor",
    "RateLimit",
    "TokenBucket",
    "Verdict",
    "compile_when",
    "event_fields",
    "render",
]

_MISSING = object()


# --------------------------------------------------------------------------- matching


def _lookup(event: Event, path: str) -> Any:  # noqa: PLR0911 - a flat lookup table
    """Return the value at `path` (``data.exit_code``, ``source``...) or `_MISSING`."""
    head, _, rest = path.partition(".")
    if head == "data":
        value: Any = event.data
        for part in rest.split(".") if rest else ():
            if not isinstance(value, Mapping) or part not in value:
                return _MISSING
            value = value[part]
        return value
    if rest:
        return _MISSING
    if head == "subject":
        return event.subject
    if head == "severity":
        return str(event.severity)
    if head in {"type", "source"}:
        return getattr(event, head)
    return _MISSING


_FIELDS = ("type", "source", "severity", "subject")


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _cmp(fn: Callable[[float, float], bool]) -> Callable[[Any, Any], bool]:
    def test(actual: Any, expected: Any) -> bool:
        a, b = _num(actual), _num(expected)
        return a is not None and b is not None and fn(a, b)

    return test


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, e: a is not _MISSING and a == e,
    "ne": lambda a, e: a is _MISSING or a != e,
    "in": lambda a, e: a is not _MISSING and a in e,
    "not_in": lambda a, e: a is _MISSING or a not in e,
    "gt": _cmp(lambda a, b: a > b),
    "ge": _cmp(lambda a, b: a >= b),
    "lt": _cmp(lambda a, b: a < b),
    "le": _cmp(lambda a, b: a <= b),
    "exists": lambda a, e: (a is not _MISSING) is bool(e),
}

#: The operators a ``when`` condition may use, e.g. ``{ "data.exit_code" = { ne = 0 } }``.
OPERATORS = tuple(_OPERATORS)


@dataclass(frozen=True, slots=True)
class Condition:
    """One test of an event field, e.g. ``data.exit_code ne 0``.

    Attributes:
        path: ``type``, ``source``, ``severity``, ``subject`` or ``data.<key>[.<key>...]``.
        op: One of `OPERATORS`.
        expected: The value compared against.
    """

    path: str
    op: str
    expected: Any

    def test(self, event: Event) -> bool:
        """Return whether `event` satisfies this condition."""
        return _OPERATORS[self.op](_lookup(event, self.path), self.expected)


def compile_when(when: Mapping[str, Any]) -> tuple[Condition, ...]:
    """Turn a ``when`` mapping into conditions that must all hold.

    A plain value means equality (``{"data.exit_code": 1}``); a mapping of operators tests
    each (``{"data.exit_code": {"ne": 0}}``, ``{"severity": {"in": ["error", "critical"]}}``).

    Args:
        when: Field path to expected value or to a mapping of operator to value.

    Returns:
        The conditions.

    Raises:
        ValueError: For an unknown field path or operator, or ``in``/``not_in`` without a list.
    """
    out: list[Condition] = []
    for path, expected in when.items():
        head = path.split(".", 1)[0]
        if not path or (head != "data" and path not in _FIELDS) or path == "data":
            raise ValueError(
                f"when: unknown field {path!r}; use one of {', '.join(_FIELDS)} "
                "or 'data.<key>' (nested keys with dots)"
            )
        tests = expected if isinstance(expected, Mapping) else {"eq": expected}
        for op, value in tests.items():
            if op not in _OPERATORS:
                raise ValueError(
                    f"when: unknown operator {op!r} for {path!r}; valid: {', '.join(OPERATORS)}"
                )
            if op in {"in", "not_in"} and not isinstance(value, list | tuple | set | frozenset):
                raise ValueError(f"when: {path!r} {op} needs a list, got {value!r}")
            out.append(Condition(path, op, value))
    return tuple(out)


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def event_fields(event: Event) -> dict[str, str]:
    """Return the values templates may use: type, source, severity, subject, data.<key>."""
    fields = {
        "type": event.type,
        "source": event.source,
        "severity": str(event.severity),
        "subject": event.subject,
    }
    for key, value in event.data.items():
        if isinstance(value, str | int | float | bool):
            fields[f"data.{key}"] = str(value)
    return fields


def render(
    template: str, fields: Mapping[str, str], *, quote: Callable[[str], str] | None = None
) -> str:
    """Fill ``{subject}``-style placeholders from `fields`; unknown ones are kept as written.

    Only plain names are substituted (no attribute access or indexing, unlike `str.format`),
    so a template from a config file cannot reach into Python objects.

    Args:
        template: Text with ``{name}`` placeholders.
        fields: From `event_fields`.
        quote: Applied to each substituted value (``shlex.quote`` for shell commands).

    Returns:
        The text.
    """

    def sub(match: re.Match[str]) -> str:
        value = fields.get(match.group(1))
        if value is None:
            return match.group(0)
        return quote(value) if quote else value

    return _PLACEHOLDER.sub(sub, template)


# --------------------------------------------------------------------------- limits


@dataclass(frozen=True, slots=True)
class RateLimit:
    """The engine-wide limit on started recoveries: a token bucket.

    Attributes:
        per_second: Tokens added per second (e.g. ``10/60`` for ten a minute).
        burst: Bucket size: how many recoveries may start at once after a quiet period.
    """

    per_second: float
    burst: int = 1

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError(
                f"RateLimit: per_second must be > 0 and burst >= 1, got {self.per_second!r}, "
                f"{self.burst!r}"
            )


class TokenBucket:
    """A token bucket over a caller-supplied clock reading.

    Args:
        limit: Rate and burst.
        now: The monotonic time at creation; the bucket starts full.
    """

    __slots__ = ("_stamp", "_tokens", "limit")

    def __init__(self, limit: RateLimit, now: float) -> None:
        self.limit = limit
        self._tokens = float(limit.burst)
        self._stamp = now

    def take(self, now: float) -> bool:
        """Take one token if there is one at time `now`.

        Returns:
            True when a token was taken.
        """
        elapsed = max(0.0, now - self._stamp)
        self._stamp = max(self._stamp, now)
        self._tokens = min(float(self.limit.burst), self._tokens + elapsed * self.limit.per_second)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


@dataclass(frozen=True, slots=True)
class FlapPolicy:
    """When a subject counts as flapping (Nagios-style, with hysteresis).

    A state change is bad to good or good to bad. The subject starts flapping when `high`
    changes fall within `window` seconds and stops only when no more than `low` remain, so it
    does not toggle in and out of flapping on every change.

    Attributes:
        window: Seconds of history considered.
        high: Changes in the window that start flapping.
        low: Changes in the window at or below which flapping stops (``low < high``).
    """

    window: float = 600.0
    high: int = 6
    low: int = 2

    def __post_init__(self) -> None:
        if self.window <= 0 or self.high < 2 or not 0 <= self.low < self.high:
            raise ValueError(
                "FlapPolicy: need window > 0, high >= 2 and 0 <= low < high, got "
                f"window={self.window!r}, high={self.high!r}, low={self.low!r}"
            )


class FlapDetector:
    """Counts state changes of one subject and says whether it is flapping.

    Args:
        policy: Thresholds.
    """

    __slots__ = ("_changes", "_good", "flapping", "policy")

    def __init__(self, policy: FlapPolicy) -> None:
        self.policy = policy
        self._changes: deque[float] = deque()
        # A subject nobody has heard of is presumed good: its first failure is a change.
        self._good = True
        self.flapping = False

    def observe(self, good: bool, now: float) -> bool | None:
        """Record the subject's state at `now`.

        Returns:
            True when it started flapping, False when it stopped, None when unchanged.
        """
        if good != self._good:
            self._good = good
            self._changes.append(now)
        return self.update(now)

    def update(self, now: float) -> bool | None:
        """Forget changes older than the window and re-evaluate (see `observe`)."""
        horizon = now - self.policy.window
        while self._changes and self._changes[0] <= horizon:
            self._changes.popleft()
        count = len(self._changes)
        if not self.flapping and count >= self.policy.high:
            self.flapping = True
            return True
        if self.flapping and count <= self.policy.low:
            self.flapping = False
            return False
        return None

    @property
    def changes(self) -> int:
        """Return how many state changes are in the window (as of the last call)."""
        return len(self._changes)


# --------------------------------------------------------------------------- governor


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
