"""Where events, incidents and recoveries are kept, and the leases a fleet acts under."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from selfheal.events import Event

__all__ = [
    "Incident",
    "JournalStore",
    "LeaseGrant",
    "MttrSummary",
    "RecoveryLeases",
    "RecoveryRecord",
    "StoredEvent",
]


# --------------------------------------------------------------------------- recovery leases


@runtime_checkable
class LeaseGrant(Protocol):
    """A node's right to run one recovery, from `RecoveryLeases.claim`."""

    async def check(self) -> bool:
        """Return whether the node still holds it (ask before every action)."""
        ...

    async def end(self, *, hold: float) -> None:
        """Give it up, keeping the recovery marked done for `hold` seconds."""
        ...


@runtime_checkable
class RecoveryLeases(Protocol):
    """Lets one node of a fleet run the recovery of an incident (`selfheal.store.redis`)."""

    async def claim(
        self, key: str, *, on_wait: Callable[[str], object] | None = None
    ) -> LeaseGrant | None:
        """Wait until this node may run the recovery of `key` (a grant), or another finished it.

        `on_wait` is called once, with the holder's name, if another node is working on it.
        """
        ...


# --------------------------------------------------------------------------- journal


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
