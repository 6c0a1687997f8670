"""The record of one run: outcome, exit code, every activity's result, detection and recovery.

`RunRecord.to_dict` is the JSON written by ``--journal PATH`` and printed by ``--json``.
Secrets never reach it: the experiment's secret values are masked wherever they appear,
and so is anything that looks like a credential (tokens, passwords, cookies).
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from selfheal._redact import MASK, redact_value

__all__ = [
    "EXIT_CODES",
    "ActivityResult",
    "Outcome",
    "RunRecord",
    "SteadyStateCheck",
    "scrub",
    "secret_values",
]


class Outcome(StrEnum):
    """How a run ended; each has its own exit code (`EXIT_CODES`)."""

    HELD = "held"
    DEVIATED = "deviated"
    ABORTED = "aborted"
    NOT_MET = "not_met"


#: Exit code of the CLI for each outcome.
EXIT_CODES = {Outcome.HELD: 0, Outcome.DEVIATED: 1, Outcome.ABORTED: 2, Outcome.NOT_MET: 3}


def _iso(wall: float | None) -> str | None:
    if wall is None:
        return None
    return datetime.datetime.fromtimestamp(wall, datetime.UTC).isoformat()


def _round(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 6)


@dataclass(slots=True)
class ActivityResult:
    """What one activity did.

    Attributes:
        name: The activity's name.
        kind: ``probe`` or ``action``.
        phase: ``before``, ``during``, ``method``, ``after``, ``abort``, ``rollback`` or
            ``after_rollback``.
        provider: One-line summary of the provider.
        status: ``succeeded``, ``failed`` (its provider raised), ``interrupted`` (by a signal
            while it ran) or ``abandoned`` (a background activity still running when the run
            was aborted).
        output: What the provider returned.
        error: Why it failed.
        tolerance: The tolerance's summary, for probes that have one.
        tolerance_met: Whether the output was within it (None without a tolerance).
        started_at: Wall-clock seconds since the epoch.
        elapsed: Seconds since the run started, when the activity started.
        duration: Seconds it took.
        background: Whether it ran in the background.
    """

    name: str
    kind: str
    phase: str
    provider: str
    status: str = "succeeded"
    output: Any = None
    error: str | None = None
    tolerance: str | None = None
    tolerance_met: bool | None = None
    started_at: float = 0.0
    elapsed: float = 0.0
    duration: float = 0.0
    background: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (secrets not yet masked; `RunRecord.to_dict` does that)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "phase": self.phase,
            "provider": self.provider,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "tolerance": self.tolerance,
            "tolerance_met": self.tolerance_met,
            "background": self.background,
            "started_at": _iso(self.started_at),
            "elapsed": _round(self.elapsed),
            "duration": _round(self.duration),
        }


@dataclass(slots=True)
class SteadyStateCheck:
    """One check of a set of probes (the hypothesis, or the abort conditions).

    Attributes:
        phase: When it ran (see `ActivityResult.phase`).
        met: Every probe succeeded within its tolerance.
        at: Wall-clock seconds since the epoch.
        elapsed: Seconds since the run started.
        probes: The probes' results; the first one not met is the last.
    """

    phase: str
    met: bool
    at: float
    elapsed: float
    probes: list[ActivityResult] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "phase": self.phase,
            "met": self.met,
            "at": _iso(self.at),
            "elapsed": _round(self.elapsed),
            "probes": [p.to_dict() for p in self.probes],
        }


@dataclass(slots=True)
class RunRecord:
    """Everything one run did, as the journal keeps it.

    Times named ``*_at`` in seconds are offsets from the run's start on its clock; ``started_at``
    and ``ended_at`` are wall-clock seconds since the epoch.

    Attributes:
        experiment: The experiment's name.
        title: Its title.
        source: Its file.
        seed: The seed of the run's random generator (``--seed`` repeats it).
        started_at: Wall clock at the start.
        ended_at: Wall clock at the end.
        outcome: How it ended.
        reason: Why, in a sentence.
        before: The steady-state check before the method.
        during: Checks while the method ran.
        after: Checks after the method (one, or the recovery polls).
        after_rollback: Check after the rollbacks of a run that did not hold.
        abort_check: The abort-condition check that aborted the run.
        method: Results of the method's activities.
        rollbacks: Results of the rollbacks.
        method_started_at: When the method started (offset), None if it never did.
        detected_at: First time the steady state was seen deviating after the method started.
        recovered_at: First time it was seen back after that.
        interrupted_by: The signal that interrupted the run (``SIGTERM``, ``SIGINT``).
        ignored_signals: Signals received while rollbacks ran (they never stop rollbacks).
        secret_values: Values masked in `to_dict` (the experiment's secrets).
    """

    experiment: str
    title: str
    source: str
    seed: int
    started_at: float
    ended_at: float | None = None
    outcome: Outcome | None = None
    reason: str = ""
    before: SteadyStateCheck | None = None
    during: list[SteadyStateCheck] = field(default_factory=list)
    after: list[SteadyStateCheck] = field(default_factory=list)
    after_rollback: SteadyStateCheck | None = None
    abort_check: SteadyStateCheck | None = None
    method: list[ActivityResult] = field(default_factory=list)
    rollbacks: list[ActivityResult] = field(default_factory=list)
    method_started_at: float | None = None
    detected_at: float | None = None
    recovered_at: float | None = None
    interrupted_by: str | None = None
    ignored_signals: list[str] = field(default_factory=list)
    secret_values: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """Return 0 held, 1 deviated, 2 aborted, 3 steady state not met before the start."""
        return EXIT_CODES[self.outcome] if self.outcome is not None else EXIT_CODES[Outcome.ABORTED]

    @property
    def time_to_detect(self) -> float | None:
        """Return seconds from the method's start to the first deviation seen, if any."""
        if self.detected_at is None or self.method_started_at is None:
            return None
        return self.detected_at - self.method_started_at

    @property
    def time_to_recover(self) -> float | None:
        """Return seconds from the first deviation seen to the steady state seen back."""
        if self.detected_at is None or self.recovered_at is None:
            return None
        return self.recovered_at - self.detected_at

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready run record, with secrets masked."""
        data = {
            "experiment": self.experiment,
            "title": self.title,
            "source": self.source,
            "seed": self.seed,
            "outcome": None if self.outcome is None else str(self.outcome),
            "exit_code": self.exit_code,
            "reason": self.reason,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "duration": _round(None if self.ended_at is None else self.ended_at - self.started_at),
            "time_to_detect": _round(self.time_to_detect),
            "time_to_recover": _round(self.time_to_recover),
            "method_started_at": _round(self.method_started_at),
            "detected_at": _round(self.detected_at),
            "recovered_at": _round(self.recovered_at),
            "interrupted_by": self.interrupted_by,
            "ignored_signals": list(self.ignored_signals),
            "steady_states": {
                "before": None if self.before is None else self.before.to_dict(),
                "during": [c.to_dict() for c in self.during],
                "after": [c.to_dict() for c in self.after],
                "after_rollback": (
                    None if self.after_rollback is None else self.after_rollback.to_dict()
                ),
            },
            "abort_check": None if self.abort_check is None else self.abort_check.to_dict(),
            "method": [r.to_dict() for r in self.method],
            "rollbacks": [r.to_dict() for r in self.rollbacks],
        }
        return scrub(_jsonable(data), self.secret_values)  # type: ignore[no-any-return]


def secret_values(secrets: Mapping[str, Mapping[str, Any]]) -> tuple[str, ...]:
    """Return the secret values worth masking (text of four characters or more).

    Args:
        secrets: An experiment's resolved secrets, by scope.
    """
    return tuple(
        str(v)
        for scope in secrets.values()
        for v in scope.values()
        if isinstance(v, str | int) and not isinstance(v, bool) and len(str(v)) >= 4
    )


def scrub(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Return `value` (text or JSON-like data) with `secrets` and credential-like parts masked.

    Args:
        value: What is about to be shown or written.
        secrets: Exact values to mask wherever they appear (see `secret_values`).
    """
    return redact_value(_mask(value, tuple(secrets)))


def _jsonable(value: Any) -> Any:
    """Return `value` with everything JSON cannot hold turned into text (outputs are anything)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return repr(value)


def _mask(value: Any, secrets: Iterable[str]) -> Any:
    secrets = [s for s in secrets if s]
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: _mask(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v, secrets) for v in value]
    return value
