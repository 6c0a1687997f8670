"""The journal: every event on the bus, and the incidents and recoveries they make, on disk.

Publishers never wait on the disk. The bus calls `Journal` in the publisher's thread, which
appends the event to a bounded in-memory buffer and returns; one writer thread takes the whole
buffer at once and commits it as one transaction (group commit: the busier the bus, the bigger
the batches), so every event accepted is either committed or still in the buffer, and `stop`
commits what is left.

When the buffer is full (the disk cannot keep up), the publisher waits up to
``block_timeout`` for room; if there is still none, that event is dropped and counted. Drops
are never silent: the writer records a ``journal.dropped`` event with the count in the
journal itself and publishes it on the bus.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from selfheal._clock import SYSTEM_CLOCK, Clock
from selfheal._threads import in_own_thread
from selfheal.events import Event, EventBus, Severity, Subscription
from selfheal.interfaces import Incident, JournalStore, MttrSummary, RecoveryRecord, StoredEvent
from selfheal.store._incidents import IncidentTracker
from selfheal.store._sqlite import DEFAULT_PATH, SqliteJournalStore

__all__ = ["DROPPED", "Journal", "JournalOptions"]

logger = logging.getLogger("selfheal.journal")

#: The type of the event recording how many events the journal had to drop.
DROPPED = "journal.dropped"

_WRITE_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class JournalOptions:
    """How the journal buffers and how long it keeps things.

    Attributes:
        max_pending: Events accepted but not yet committed, at most.
        block_timeout: Real seconds a publisher waits for room in a full buffer before the
            event is dropped (and counted).
        max_age: Seconds events (and closed incidents, ended recoveries) are kept; None: forever.
        max_rows: Newest events kept; None: no limit.
        prune_every: Seconds (on the journal's clock) between retention passes of the writer.
    """

    max_pending: int = 100_000
    block_timeout: float = 0.1
    max_age: float | None = 30 * 86_400.0
    max_rows: int | None = 1_000_000
    prune_every: float = 60.0

    def __post_init__(self) -> None:
        if self.max_pending < 1 or self.block_timeout < 0 or self.prune_every <= 0:
            raise ValueError(
                "JournalOptions: need max_pending >= 1, block_timeout >= 0, prune_every > 0"
            )
        if (self.max_age is not None and self.max_age <= 0) or (
            self.max_rows is not None and self.max_rows < 1
        ):
            raise ValueError("JournalOptions: max_age must be > 0 and max_rows >= 1 (or None)")


class Journal:
    """Writes every event on `bus` to a `JournalStore` and tracks incidents and recoveries.

    A `Component`: `start` subscribes to ``*`` and starts the writer thread, `stop` commits
    everything accepted and closes the store. The sync twins `open` and `close` do the same
    without an event loop.

    Args:
        bus: The bus to record.
        store: A `JournalStore`, or a path for a `SqliteJournalStore` (default
            ``.selfheal/journal.db``).
        options: Buffering and retention.
        clock: Stamps events published without a timestamp and times retention passes.
        on_commit: Called in the writer thread after each commit with the events committed
            (a test and monitoring seam).
    """

    def __init__(
        self,
        bus: EventBus,
        store: JournalStore | str | Path | None = None,
        *,
        options: JournalOptions | None = None,
        clock: Clock = SYSTEM_CLOCK,
        on_commit: Callable[[Sequence[Event]], object] | None = None,
    ) -> None:
        self.bus = bus
        self._store_arg = store
        self._store: JournalStore | None = (
            None if store is None or isinstance(store, str | Path) else store
        )
        self.options = options or JournalOptions()
        self._max_pending = self.options.max_pending
        self.clock = clock
        self.on_commit = on_commit
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._committed_cond = threading.Condition(self._lock)
        self._buf: list[Event] = []
        # Events of the batch being written: still unwritten, so they count against
        # max_pending (else the journal could hold twice as many as it promises).
        self._writing = 0
        self._closing = False
        self._thread: threading.Thread | None = None
        self._sub: Subscription | None = None
        #: Events accepted into the buffer.
        self.accepted = 0
        #: Accepted events committed to the store.
        self.committed = 0
        #: Events dropped because the buffer stayed full (or writes kept failing).
        self.dropped = 0
        self._reported_drops = 0
        # Accepted events whose writes failed every attempt (also counted in `dropped`).
        self._failed = 0

    def __repr__(self) -> str:
        return (
            f"Journal(store={self._store!r}, accepted={self.accepted}, "
            f"committed={self.committed}, dropped={self.dropped})"
        )

    @property
    def store(self) -> JournalStore:
        """Return the store (opening the default SQLite file if none was given)."""
        if self._store is None:
            arg = self._store_arg
            path = Path(arg) if isinstance(arg, str | Path) else DEFAULT_PATH
            self._store = SqliteJournalStore(path)
        return self._store

    # ----------------------------------------------------------------- lifecycle

    def open(self) -> None:
        """Start recording (sync twin of `start`)."""
        if self._thread is not None:
            return
        store = self.store
        tracker = IncidentTracker(store.open_incidents(), next_id=store.next_incident_id())
        self._closing = False
        self._thread = threading.Thread(
            target=self._writer, args=(store, tracker), name="selfheal-journal", daemon=True
        )
        self._thread.start()
        self._sub = self.bus.subscribe("*", self._accept)
        # The writer is a daemon thread (it must never keep a process alive), so at a normal
        # interpreter exit without close() it would be stopped with accepted events unwritten.
        atexit.register(self.close)

    def close(self) -> None:
        """Stop recording, commit everything accepted and close the store (sync twin of stop).

        Also called at interpreter exit for a journal still open.
        """
        atexit.unregister(self.close)
        if self._sub is not None:
            self._sub.unsubscribe()
            self._sub = None
        thread = self._thread
        if thread is not None:
            with self._lock:
                self._closing = True
                self._not_empty.notify_all()
                self._not_full.notify_all()
            thread.join()
            self._thread = None
        if self._store is not None:
            self._store.close()

    async def start(self) -> None:
        """Subscribe to every event and start the writer thread."""
        self.open()

    async def stop(self) -> None:
        """Unsubscribe, commit what was accepted, close the store; safe to call twice."""
        # Not asyncio.to_thread: the loop's shared pool may be full of hung user code at
        # shutdown, and then what was accepted would never be committed.
        await in_own_thread(self.close, name="journal-close")

    def __enter__(self) -> Journal:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event accepted so far is committed (or dropped after failing).

        Args:
            timeout: Real seconds to wait at most; None waits as long as it takes.

        Returns:
            True when flushed, False on timeout.
        """
        with self._lock:
            target = self.accepted
            return self._committed_cond.wait_for(
                lambda: self.committed + self._failed >= target or self._thread is None,
                timeout,
            )

    # ----------------------------------------------------------------- the hot path

    def _accept(self, event: Event) -> None:
        if event.type == DROPPED:
            return  # the writer records its own drop reports
        with self._lock:
            buf = self._buf
            if len(buf) + self._writing >= self._max_pending or self._closing:
                self._accept_when_full(event)
                return
            buf.append(event)
            self.accepted += 1
            if len(buf) == 1:
                self._not_empty.notify()

    def _accept_when_full(self, event: Event) -> None:
        # Called with the lock held: wait briefly for the writer to make room, else drop.
        max_pending = self._max_pending
        if not self._closing:
            self._not_full.wait_for(
                lambda: len(self._buf) + self._writing < max_pending or self._closing,
                self.options.block_timeout,
            )
        if self._closing or len(self._buf) + self._writing >= max_pending:
            self.dropped += 1
            return
        self._buf.append(event)
        self.accepted += 1
        if len(self._buf) == 1:
            self._not_empty.notify()

    # ----------------------------------------------------------------- the writer

    def _writer(self, store: JournalStore, tracker: IncidentTracker) -> None:
        # Retention runs at start (a journal reopened after a long pause) and then at most
        # every prune_every seconds, after a commit: an idle journal does not grow.
        self._prune(store)
        next_prune = self.clock.monotonic() + self.options.prune_every
        while True:
            with self._lock:
                self._not_empty.wait_for(lambda: bool(self._buf) or self._closing)
                batch, self._buf = self._buf, []
                self._writing = len(batch)
                closing = self._closing
                drops = self.dropped - self._reported_drops
                self._reported_drops = self.dropped
            if batch or drops:
                self._commit(store, tracker, batch, drops)
            now = self.clock.monotonic()
            if now >= next_prune:
                next_prune = now + self.options.prune_every
                self._prune(store)
            if closing and not batch:
                with self._lock:
                    if not self._buf:
                        self._committed_cond.notify_all()
                        return

    def _commit(
        self, store: JournalStore, tracker: IncidentTracker, batch: list[Event], drops: int
    ) -> None:
        now = self.clock.time()
        events = list(batch)
        report: Event | None = None
        if drops:
            report = Event(
                DROPPED,
                "journal",
                Severity.ERROR,
                now,
                {"count": drops, "total": self.dropped, "max_pending": self.options.max_pending},
            )
            events.append(report)
        incidents, recoveries = _track(tracker, events, now)
        error: BaseException | None = None
        for _attempt in range(_WRITE_ATTEMPTS):
            try:
                store.write(events, incidents, recoveries, now=now)
            except Exception as exc:  # noqa: BLE001 - the writer must survive a bad write
                error = exc
                logger.warning("journal write failed, retrying: %r", exc)
                continue
            error = None
            break
        with self._lock:
            if error is None:
                self.committed += len(batch)
            else:
                logger.error("journal dropped %d events: %r", len(batch), error)
                self.dropped += len(batch)
                self._failed += len(batch)
            self._writing = 0
            self._not_full.notify_all()
            self._committed_cond.notify_all()
        if error is None:
            if report is not None:
                self.bus.publish(report)
            if self.on_commit is not None:
                try:
                    self.on_commit(batch)
                except Exception:
                    logger.exception("journal on_commit hook failed")

    def _prune(self, store: JournalStore) -> None:
        opts = self.options
        before = self.clock.time() - opts.max_age if opts.max_age is not None else None
        try:
            store.prune(before=before, max_rows=opts.max_rows)
        except Exception:
            logger.exception("journal retention pass failed")

    # ----------------------------------------------------------------- queries

    def events(
        self,
        *,
        since: float | None = None,
        type: str | None = None,
        limit: int = 100,
        after_seq: int | None = None,
    ) -> list[StoredEvent]:
        """Return committed events, oldest first (see `JournalStore.events`)."""
        return self.store.events(since=since, type=type, limit=limit, after_seq=after_seq)

    def incidents(self, *, open_only: bool = False, limit: int | None = None) -> list[Incident]:
        """Return committed incidents, newest first."""
        return self.store.incidents(open_only=open_only, limit=limit)

    def recoveries(self, *, limit: int = 100) -> list[RecoveryRecord]:
        """Return committed recoveries, newest first."""
        return self.store.recoveries(limit=limit)

    def mttr_by_subject(self) -> list[MttrSummary]:
        """Return incident statistics per subject."""
        return self.store.mttr_by_subject()


def _track(
    tracker: IncidentTracker, events: list[Event], now: float
) -> tuple[list[Incident], list[RecoveryRecord]]:
    """Return the incidents and recoveries `events` created or changed (last state of each)."""
    incidents: dict[int, Incident] = {}
    recoveries: dict[str, RecoveryRecord] = {}
    for event in events:
        try:
            incident, recovery = tracker.observe(event, event.timestamp or now)
        except Exception:
            # A malformed event must not stop the journal; it is still stored.
            logger.exception("journal: incident tracking failed on %s", event.type)
            continue
        if incident is not None:
            incidents[incident.id] = incident
        if recovery is not None:
            recoveries[recovery.id] = recovery
    return list(incidents.values()), list(recoveries.values())
