"""What the journal stores, the `JournalStore` protocol, and incident tracking (no I/O).

An incident of a subject is opened by its first failure signal and closed by its recovery:

- failure: the last segment of the type is ``failed``, ``failure``, ``fatal``, ``opened``,
  ``unhealthy``, ``down``, ``crashed`` or ``recovery_failed``; or it is ``exited`` with a
  non-zero ``exit_code``/``returncode`` or a ``signal`` in its data, unless ``expected`` is true.
- recovery: the last segment is ``recovered``, ``succeeded``, ``closed``, ``passed``,
  ``healthy`` or ``up``; or the type is ``process.<name>.started`` / ``.running``. While a
  recovery of the subject is running (``recovery.<subject>.started`` seen, no outcome yet),
  only its outcome closes the incident, so time to recover is time to a *verified* recovery.
- neither: everything else, including ``recovery.*.started|escalated|suppressed``,
  ``journal.*`` and ``eventbus.*``.

The subject is `Event.subject` (``web`` in ``process.web.exited``); for the article's
``system.database.failure.recovered`` it is the failed event's subject (``database``).

Time to recover (TTR) is the close event's timestamp minus the opening one's. Time to detect
(TTD) is, in order of preference:

1. ``since``: the opening event's timestamp minus ``data.since``, when the signal says when the
   failure began (a health check failing since then);
2. ``immediate``: zero for a process that ``exited`` or went ``fatal``, which a supervisor
   learns from the kernel the moment it happens;
3. ``last_good``: the opening event's timestamp minus the subject's last recovery signal seen
   before (e.g. the last passing check): an upper bound, it was fine then;
4. unknown (None).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from selfheal.events import Event

__all__ = [
    "Incident",
    "IncidentTracker",
    "JournalStore",
    "MttrSummary",
    "RecoveryRecord",
    "Signal",
    "StoredEvent",
    "classify",
]

_FAILURE = frozenset(
    {"failed", "failure", "fatal", "opened", "unhealthy", "down", "crashed", "recovery_failed"}
)
_RECOVERY = frozenset({"recovered", "succeeded", "closed", "passed", "healthy", "up"})
_PROCESS_UP = frozenset({"started", "running"})
_IGNORED_PREFIXES = ("journal.", "eventbus.")
# Last segments that can make an event a signal; anything else is skipped cheaply.
_INTERESTING = _FAILURE | _RECOVERY | _PROCESS_UP | {"exited"}
_RECOVERY_NOISE = frozenset({"started", "escalated", "suppressed"})


class Signal(StrEnum):
    """What an event says about its subject."""

    FAILURE = "failure"
    RECOVERY = "recovery"
    NEUTRAL = "neutral"


def _subject(parts: list[str], source: str) -> str:
    return ".".join(parts[1:-1]) if len(parts) >= 3 else source


def classify(event: Event) -> tuple[Signal, str]:  # noqa: PLR0911 - one rule per return
    """Return whether `event` is a failure or recovery signal, and of which subject.

    Args:
        event: Any event.

    Returns:
        The signal and the subject.
    """
    etype = event.type
    if etype.startswith(_IGNORED_PREFIXES):
        return Signal.NEUTRAL, ""
    parts = etype.split(".")
    last = parts[-1]
    if last in {"recovered", "recovery_failed"} and len(parts) >= 3:
        # The article's "<failed type>.recovered": the subject is the failed event's.
        inner = parts[:-1]
        if inner[-1] in _FAILURE:
            source = str(event.data.get("original_source", event.source))
            sig = Signal.RECOVERY if last == "recovered" else Signal.FAILURE
            return sig, _subject(inner, source)
    subject = _subject(parts, event.source)
    if parts[0] == "recovery" and last in _RECOVERY_NOISE:
        return Signal.NEUTRAL, subject
    if last in _FAILURE:
        return Signal.FAILURE, subject
    if last in _RECOVERY or (parts[0] == "process" and last in _PROCESS_UP):
        return Signal.RECOVERY, subject
    if last == "exited" and not event.data.get("expected"):
        code = event.data.get("exit_code", event.data.get("returncode", 0))
        if event.data.get("signal") or (code not in (0, None)):
            return Signal.FAILURE, subject
    return Signal.NEUTRAL, subject


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as the journal returns it.

    Attributes:
        seq: Position in the journal (increasing).
        id: The event's id.
        type: Dotted type.
        source: Publisher.
        severity: Severity string.
        subject: The event's subject.
        timestamp: Wall-clock seconds.
        data: Details (as JSON allowed; non-JSON values were stored as text).
    """

    seq: int
    id: str
    type: str
    source: str
    severity: str
    subject: str
    timestamp: float
    data: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out = asdict(self)
        out["data"] = dict(self.data)
        return out


@dataclass(frozen=True, slots=True)
class Incident:
    """A subject's outage, from its first failure signal to its recovery.

    Attributes:
        id: Journal-wide number.
        subject: What failed.
        opened_at: Timestamp of the first failure signal.
        opened_by: Its event type.
        opened_event: Its event id.
        ttd: Time to detect in seconds, or None when unknown (see module docs).
        ttd_source: ``since``, ``immediate`` or ``last_good``: how `ttd` was measured.
        closed_at: Timestamp of the recovery signal, None while open.
        closed_by: Its event type.
        ttr: Time to recover (closed_at - opened_at).
        signals: Failure signals seen during the incident (including the first).
        recoveries: Recoveries started during the incident.
    """

    id: int
    subject: str
    opened_at: float
    opened_by: str
    opened_event: str
    ttd: float | None = None
    ttd_source: str | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    ttr: float | None = None
    signals: int = 1
    recoveries: int = 0

    @property
    def is_open(self) -> bool:
        """Return whether the incident is still open."""
        return self.closed_at is None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        out = asdict(self)
        out["open"] = self.is_open
        return out


@dataclass(frozen=True, slots=True)
class RecoveryRecord:
    """One recovery run by the engine, from ``recovery.<subject>.*`` events.

    Attributes:
        id: The engine's recovery id.
        subject: The recovery's subject.
        rule: The rule's name.
        started_at: Timestamp of ``.started``.
        ended_at: Timestamp of ``.succeeded``/``.failed``, None while running.
        outcome: ``running``, ``succeeded`` or ``failed``.
        error: Why it failed.
    """

    id: str
    subject: str
    rule: str
    started_at: float
    ended_at: float | None = None
    outcome: str = "running"
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class MttrSummary:
    """Incident statistics of one subject.

    Attributes:
        subject: The subject.
        incidents: How many incidents (open and closed).
        open: How many are open.
        mttr: Mean time to recover of the closed ones, None if none closed.
        max_ttr: Longest time to recover.
        mttd: Mean time to detect where known.
        last_opened_at: When the latest incident opened.
    """

    subject: str
    incidents: int
    open: int
    mttr: float | None
    max_ttr: float | None
    mttd: float | None
    last_opened_at: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


@runtime_checkable
class JournalStore(Protocol):
    """Where the journal keeps events, incidents and recoveries (SQLite now, Redis later).

    `write` and `prune` are called from the journal's one writer thread; the queries may be
    called from any thread, also while it writes.
    """

    def write(
        self,
        events: Sequence[Event],
        incidents: Sequence[Incident],
        recoveries: Sequence[RecoveryRecord],
        *,
        now: float,
    ) -> None:
        """Store one batch atomically; `now` stamps events that carry no timestamp."""
        ...

    def prune(self, *, before: float | None, max_rows: int | None) -> int:
        """Delete events older than `before` and beyond the newest `max_rows`; return count."""
        ...

    def open_incidents(self) -> list[Incident]:
        """Return the open incidents (the tracker resumes them after a restart)."""
        ...

    def next_incident_id(self) -> int:
        """Return an incident id never used before."""
        ...

    def events(
        self,
        *,
        since: float | None = None,
        type: str | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[StoredEvent]:
        """Return up to `limit` events, oldest first.

        Args:
            since: Only events with a timestamp at or after this.
            type: Only types matching this pattern (``health.*``).
            limit: The newest `limit` matches (or the first after `after_seq`).
            after_seq: Only events after this position (for following).
        """
        ...

    def incidents(self, *, open_only: bool = False, limit: int | None = None) -> list[Incident]:
        """Return incidents, newest first."""
        ...

    def recoveries(self, *, limit: int = 100) -> list[RecoveryRecord]:
        """Return recoveries, newest first."""
        ...

    def mttr_by_subject(self) -> list[MttrSummary]:
        """Return incident statistics per subject, by subject name."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


class IncidentTracker:
    """Turns events into incident and recovery records (no I/O; the journal stores them).

    Args:
        open_incidents: Incidents still open from earlier runs.
        next_id: The id the next incident gets.
    """

    def __init__(self, open_incidents: Iterable[Incident] = (), *, next_id: int = 1) -> None:
        self._open: dict[str, Incident] = {i.subject: i for i in open_incidents}
        self._next_id = next_id
        self._last_good: dict[str, float] = {}
        self._running: dict[str, RecoveryRecord] = {}  # recovery id -> record
        self._running_by_subject: dict[str, int] = {}

    @property
    def open(self) -> dict[str, Incident]:
        """Return the open incidents by subject."""
        return dict(self._open)

    def observe(
        self, event: Event, timestamp: float
    ) -> tuple[Incident | None, RecoveryRecord | None]:
        """Account for `event` (whose effective timestamp is `timestamp`).

        Returns:
            The incident created or changed (to be stored), and the recovery record created or
            changed, each None when untouched.
        """
        if event.type.rpartition(".")[2] not in _INTERESTING:
            return None, None
        if event.type.startswith("recovery."):
            rec_change, inc_change = self._recovery_event(event, timestamp)
            if rec_change is not None or inc_change is not None:
                return inc_change, rec_change
        signal, subject = classify(event)
        if signal is Signal.FAILURE:
            return self._failure(event, subject, timestamp), None
        if signal is Signal.RECOVERY:
            return self._recovery(event, subject, timestamp), None
        return None, None

    def _failure(self, event: Event, subject: str, ts: float) -> Incident:
        current = self._open.get(subject)
        if current is not None:
            changed = replace(current, signals=current.signals + 1)
        else:
            ttd: float | None = None
            source: str | None = None
            since = event.data.get("since")
            if isinstance(since, int | float) and not isinstance(since, bool) and since <= ts:
                ttd, source = ts - float(since), "since"
            elif event.type.endswith((".exited", ".fatal")):
                ttd, source = 0.0, "immediate"
            elif subject in self._last_good and self._last_good[subject] <= ts:
                ttd, source = ts - self._last_good[subject], "last_good"
            changed = Incident(self._next_id, subject, ts, event.type, event.id, ttd, source)
            self._next_id += 1
        self._open[subject] = changed
        return changed

    def _recovery(self, event: Event, subject: str, ts: float) -> Incident | None:
        self._last_good[subject] = ts
        current = self._open.get(subject)
        if current is None:
            return None
        running = self._running_by_subject.get(subject, 0) > 0
        if running and not event.type.startswith("recovery."):
            # A program that started again before the running recovery verified it.
            return None
        del self._open[subject]
        return replace(
            current, closed_at=ts, closed_by=event.type, ttr=max(0.0, ts - current.opened_at)
        )

    def _recovery_event(
        self, event: Event, ts: float
    ) -> tuple[RecoveryRecord | None, Incident | None]:
        parts = event.type.split(".")
        rid = event.data.get("recovery_id")
        if len(parts) < 3 or not isinstance(rid, str):
            return None, None
        subject, outcome = ".".join(parts[1:-1]), parts[-1]
        rule = str(event.data.get("rule", ""))
        if outcome == "started":
            record = RecoveryRecord(rid, subject, rule, ts)
            self._running[rid] = record
            self._running_by_subject[subject] = self._running_by_subject.get(subject, 0) + 1
            current = self._open.get(subject)
            incident = None
            if current is not None:
                incident = replace(current, recoveries=current.recoveries + 1)
                self._open[subject] = incident
            return record, incident
        if outcome not in {"succeeded", "failed"}:
            return None, None
        previous = self._running.pop(rid, None)
        if previous is not None:
            self._running_by_subject[subject] -= 1
        else:
            duration = event.data.get("duration")
            start = ts - float(duration) if isinstance(duration, int | float) else ts
            previous = RecoveryRecord(rid, subject, rule, start)
        record = replace(
            previous, ended_at=ts, outcome=outcome, error=str(event.data.get("error", ""))
        )
        # The outcome is also a failure or recovery signal of the subject.
        signal, _ = classify(event)
        incident = (
            self._failure(event, subject, ts)
            if signal is Signal.FAILURE
            else self._recovery(event, subject, ts)
        )
        return record, incident
