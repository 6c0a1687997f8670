"""Incident tracking: events in, incident and recovery records out (no I/O).

An incident of a subject is opened by its first failure signal and closed by its recovery,
as `selfheal.events.classify` tells them apart. While a recovery of the subject is running
(``recovery.<subject>.started`` seen, no outcome yet), only its outcome closes the incident, so
time to recover is time to a *verified* recovery.

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

from collections.abc import Iterable
from dataclasses import replace

from selfheal.events import SIGNAL_SEGMENTS, Event, Signal, classify, parse_type
from selfheal.interfaces import Incident, RecoveryRecord

__all__ = ["IncidentTracker"]

#: Failures a supervisor learns from the kernel as they happen: detected in no time.
_IMMEDIATE = frozenset({"exited", "fatal"})


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
        parts = parse_type(event.type)
        if parts.what not in SIGNAL_SEGMENTS:
            return None, None
        if parts.area == "recovery":
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
            elif parse_type(event.type).what in _IMMEDIATE:
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
        if running and parse_type(event.type).area != "recovery":
            # A program that started again before the running recovery verified it.
            return None
        del self._open[subject]
        return replace(
            current, closed_at=ts, closed_by=event.type, ttr=max(0.0, ts - current.opened_at)
        )

    def _recovery_event(
        self, event: Event, ts: float
    ) -> tuple[RecoveryRecord | None, Incident | None]:
        _, subject, outcome = parse_type(event.type)
        rid = event.data.get("recovery_id")
        if not subject or not isinstance(rid, str):
            return None, None
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
