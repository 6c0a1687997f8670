"""The interfaces several packages implement or consume, in one low module.

A component never imports another package's private module to learn what a supervisor, a
health source or a store looks like: it imports the protocol from here. Implementations live
with their package (`selfheal.supervisor.Supervisor` is a `ProgramControl`,
`selfheal.health.HealthMonitor` a `HealthSource`, `selfheal.store.SqliteJournalStore` a
`JournalStore`); tests and users can write their own (see `selfheal.testing`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping

    from selfheal.events import Event

__all__ = [
    "BreakerRecord",
    "BreakerState",
    "BreakerStore",
    "Component",
    "Degradable",
    "HealthSource",
    "HealthStatus",
    "Incident",
    "JournalStore",
    "LeaseGrant",
    "MttrSummary",
    "ProgramControl",
    "RecoveryLeases",
    "RecoveryRecord",
    "SharedBreakerStore",
    "StoredEvent",
    "TrialOutcome",
    "TrialPermit",
    "breaker_store_from_url",
]


# --------------------------------------------------------------------------- lifecycle


@runtime_checkable
class Component(Protocol):
    """Something the daemon starts and stops: a supervisor, a health monitor, a journal...

    `start` returns once the component is running (it may start background tasks on the
    running loop); `stop` returns once they are finished and everything is flushed.
    """

    async def start(self) -> None:
        """Start background work on the running event loop."""
        ...

    async def stop(self) -> None:
        """Stop background work, flush, release resources; safe to call twice."""
        ...


# --------------------------------------------------------------------------- supervisor


@runtime_checkable
class ProgramControl(Protocol):
    """Start, stop and restart supervised programs by name.

    Each method returns once the action is done (the program started, or stopped and reaped)
    and raises `KeyError` for an unknown name.
    """

    def program_names(self) -> list[str]:
        """Return the names of the configured programs."""
        ...

    async def start_program(self, name: str) -> None:
        """Start `name` if it is not running."""
        ...

    async def stop_program(self, name: str) -> None:
        """Stop `name` (stop signal, grace period, then SIGKILL to its process group)."""
        ...

    async def restart_program(self, name: str) -> None:
        """Stop `name` if running, then start it."""
        ...


# --------------------------------------------------------------------------- health and features


class HealthStatus(StrEnum):
    """The IETF health-check draft's statuses, plus `UNKNOWN` before the first result.

    A status also equals the article's words, so checks written from it keep working:
    ``PASS == "HEALTHY"``, ``FAIL == "UNHEALTHY"``, ``WARN == "UNHEALTHY"`` (a failing
    non-critical check: the service behind it is not healthy) and ``"DEGRADED"``,
    ``UNKNOWN == "UNKNOWN"``. Its string value stays the draft's (``"pass"``...).
    """

    PASS = "pass"  # noqa: S105 - a status, not a password
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str) and other in _ARTICLE_WORDS[self.value]:
            return True
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    # Hash as the draft's string, so statuses stay usable as keys of JSON-ready dicts.
    __hash__ = str.__hash__


_ARTICLE_WORDS: dict[str, frozenset[str]] = {
    "pass": frozenset({"HEALTHY"}),
    "warn": frozenset({"UNHEALTHY", "DEGRADED"}),
    "fail": frozenset({"UNHEALTHY"}),
    "unknown": frozenset({"UNKNOWN"}),
}


@runtime_checkable
class HealthSource(Protocol):
    """Named health checks whose latest status can be read, or refreshed on demand."""

    def status(self, name: str) -> HealthStatus:
        """Return the latest status of check `name` (a stale result counts as FAIL)."""
        ...

    async def check_now(self, name: str) -> HealthStatus:
        """Run check `name` now (bounded by its timeout) and return the new status."""
        ...


@runtime_checkable
class Degradable(Protocol):
    """Anything that can switch a feature to its fallback (the `FeatureManager`, for one)."""

    def degrade(self, name: str) -> object:
        """Switch feature `name` to its fallback; may return an awaitable."""
        ...


# --------------------------------------------------------------------------- breaker state


class BreakerState(StrEnum):
    """The three states of a circuit breaker.

    CLOSED lets calls through and counts failures; OPEN rejects every call until the recovery
    timeout has passed; HALF_OPEN lets a bounded number of trial calls through, whose outcome
    closes or reopens the breaker.
    """

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerRecord:
    """What a `BreakerStore` keeps per breaker name.

    Attributes:
        state: The breaker's state.
        opened_at: Wall-clock seconds (`Clock.time`) when it last opened, so that processes
            on other machines can agree on when its recovery timeout ends.
    """

    state: BreakerState
    opened_at: float


@runtime_checkable
class BreakerStore(Protocol):
    """Where breakers keep their state so that it survives restarts or is shared.

    A breaker loads its record when created, saves on every state change (under its lock, so
    a store must be quick), and loads again when its recovery timeout ends, so a breaker
    another instance re-opened or closed meanwhile follows that. The CLOSED success path
    never touches the store. A shared store (Redis, later) implements the same two methods.
    """

    def load(self, name: str) -> BreakerRecord | None:
        """Return the record of breaker `name`, or None if there is none."""
        ...

    def save(self, name: str, record: BreakerRecord) -> None:
        """Store `record` as the state of breaker `name`."""
        ...


class TrialOutcome(StrEnum):
    """How a half-open trial call ended, as a shared store is told."""

    SUCCESS = "success"
    FAILURE = "failure"
    IGNORED = "ignored"  # neither: an ignored error or a cancellation gives the permit back


@dataclass(frozen=True, slots=True)
class TrialPermit:
    """A permit for one half-open trial call, granted by a `SharedBreakerStore`.

    Attributes:
        name: The breaker.
        token: The permit's id in the store; empty for a permit decided locally (the store
            was unreachable, or already closed), which there is nothing to give back for.
        epoch: The half-open period it belongs to.
    """

    name: str
    token: str = ""
    epoch: int = 0

    @property
    def local(self) -> bool:
        """Return whether the permit was decided locally, without the store."""
        return not self.token


@runtime_checkable
class SharedBreakerStore(BreakerStore, Protocol):
    """A `BreakerStore` shared by a fleet (`selfheal.store.redis.RedisBreakerStore`).

    `load` and `save` never wait on the network: `load` reads a local cache and `save`
    queues the change, so a breaker may call them under its lock. Changes made elsewhere
    arrive through `watch`. Trial permits are fleet-wide: `acquire_trial` (or its async twin,
    which never blocks the event loop) asks the store, and must be called without holding a
    lock.
    """

    def watch(self, name: str, callback: Callable[[], object]) -> Callable[[], None]:
        """Call `callback` (in a store thread) whenever the shared record of `name` changed.

        Returns:
            A function that stops the watching.
        """
        ...

    def acquire_trial(
        self, name: str, *, max_calls: int, recovery_timeout: float
    ) -> TrialPermit | None:
        """Return a trial permit for `name`, or None when the fleet has none to spare."""
        ...

    async def aacquire_trial(
        self, name: str, *, max_calls: int, recovery_timeout: float
    ) -> TrialPermit | None:
        """Async twin of `acquire_trial`."""
        ...

    def release_trial(self, permit: TrialPermit, outcome: TrialOutcome) -> None:
        """Give `permit` back with the trial's outcome (queued; never waits)."""
        ...


def breaker_store_from_url(url: str, *, bus: object = None) -> SharedBreakerStore:
    """Return this process's shared breaker store of a fleet URL (one per URL).

    Args:
        url: ``redis://``, ``rediss://``, ``unix://`` or ``redis+sentinel://`` (see
            `selfheal.store.redis.parse_url`).
        bus: Where the store publishes ``fleet.redis.down`` / ``.up`` (the first bus given
            for a URL is kept).

    Raises:
        ValueError: For a URL that names no supported store; the message says what is valid.
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if not scheme.startswith(("redis", "unix")):
        raise ValueError(
            f"breaker store url {url!r}: use 'redis://host:6379/0' (or rediss://, unix://, "
            "redis+sentinel://), or pass a BreakerStore object"
        )
    # By name: a policy (a lower layer) must not import the store package it names.
    module = importlib.import_module("selfheal.store.redis")
    store: SharedBreakerStore = module.RedisBreakerStore.shared(url, bus=bus)
    return store


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
