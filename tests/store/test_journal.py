"""The Journal: every event on the bus committed off the publisher's thread, bounded, pruned."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from selfheal import Event, EventBus
from selfheal.store import (
    DROPPED,
    Incident,
    Journal,
    JournalOptions,
    RecoveryRecord,
    SqliteJournalStore,
)
from selfheal.testing import FakeClock


def test_everything_accepted_is_committed_on_stop(db: Path) -> None:
    bus = EventBus()
    journal = Journal(bus, db)
    journal.open()
    for i in range(20_000):
        bus.emit("load.x.tick", "t", n=i)
    journal.close()  # no flush first: close must commit what was accepted
    assert journal.accepted == journal.committed == 20_000
    store = SqliteJournalStore(db, readonly=True)
    assert len(store.events(limit=50_000)) == 20_000


def test_many_publisher_threads_lose_nothing(db: Path) -> None:
    bus = EventBus()
    with Journal(bus, db) as journal:

        def publish(worker: int) -> None:
            for i in range(5_000):
                bus.emit("load.x.tick", f"w{worker}", n=i)

        threads = [threading.Thread(target=publish, args=(w,)) for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert (journal.accepted, journal.committed, journal.dropped) == (40_000, 40_000, 0)
    events = SqliteJournalStore(db, readonly=True).events(limit=100_000)
    per_worker: dict[str, list[int]] = {}
    for e in events:
        per_worker.setdefault(e.source, []).append(e.data["n"])
    # Each publisher's events are all there, in the order it published them.
    assert all(ns == list(range(5_000)) for ns in per_worker.values())
    assert len(per_worker) == 8


class GatedStore(SqliteJournalStore):
    """A store whose writes wait for the test to open the gate, like a stalled disk."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def write(
        self,
        events: Sequence[Event],
        incidents: Sequence[Incident],
        recoveries: Sequence[RecoveryRecord],
        *,
        now: float,
    ) -> None:
        self.entered.set()
        assert self.gate.wait(30)
        super().write(events, incidents, recoveries, now=now)


def test_publishers_do_not_wait_for_the_disk(db: Path) -> None:
    store = GatedStore(db)
    bus = EventBus()
    journal = Journal(bus, store)
    journal.open()
    try:
        bus.emit("a.b.c", "t")
        assert store.entered.wait(10)
        # The writer is stuck inside a write; publishing still returns for every event.
        for _ in range(1000):
            bus.emit("a.b.c", "t")
        assert journal.accepted == 1001
        assert journal.committed == 0
    finally:
        store.gate.set()
        journal.close()
    assert journal.committed == 1001


@pytest.mark.anyio
async def test_async_start_and_stop_flush(db: Path) -> None:
    bus = EventBus()
    journal = Journal(bus, db)
    await journal.start()
    bus.emit("a.b.c", "t")
    await journal.stop()
    await journal.stop()
    assert len(SqliteJournalStore(db, readonly=True).events()) == 1


def test_a_full_buffer_drops_and_says_so(db: Path) -> None:
    store = GatedStore(db)
    bus = EventBus()
    reports: list[Event] = []
    bus.subscribe(DROPPED, reports.append)
    journal = Journal(bus, store, options=JournalOptions(max_pending=10, block_timeout=0))
    journal.open()
    try:
        bus.emit("a.b.c", "t")
        assert store.entered.wait(10)
        for _ in range(25):
            bus.emit("a.b.c", "t")
        # The event being written counts: never more than max_pending unwritten in memory.
        assert (journal.accepted, journal.dropped) == (10, 16)
    finally:
        store.gate.set()
        journal.close()
    assert [r.data["count"] for r in reports] == [16]
    stored = SqliteJournalStore(db, readonly=True).events(type=DROPPED)
    assert [(e.data["count"], e.data["total"]) for e in stored] == [(16, 16)]
    assert len(SqliteJournalStore(db, readonly=True).events(type="a.*", limit=100)) == 10


def test_retention_by_age_and_rows(db: Path, clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    options = JournalOptions(max_age=100, max_rows=5, prune_every=10)
    journal = Journal(bus, db, options=options, clock=clock)
    journal.open()
    bus.publish(Event("old.x.tick", "t", "info", clock.time() - 500))
    for i in range(20):
        bus.emit("new.x.tick", "t", n=i)
    assert journal.flush(timeout=10)
    clock.advance(10)
    bus.emit("new.x.tick", "t", n=20)
    journal.close()
    left = SqliteJournalStore(db, readonly=True).events(limit=100)
    assert [e.data["n"] for e in left] == [16, 17, 18, 19, 20]


def test_retention_runs_when_the_journal_opens(db: Path, clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    with Journal(bus, db, clock=clock):
        bus.emit("a.b.c", "t")
    clock.advance(200)
    with Journal(bus, db, options=JournalOptions(max_age=100), clock=clock) as journal:
        assert journal.flush(timeout=10)
    assert SqliteJournalStore(db, readonly=True).events() == []


def test_incidents_survive_a_journal_restart_and_mttr(db: Path, clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    with Journal(bus, db, clock=clock):
        bus.emit("health.db.failed", "h")
        clock.advance(4)
        bus.emit("health.cache.failed", "h")
    with Journal(bus, db, clock=clock) as journal:
        clock.advance(6)
        bus.emit("health.db.passed", "h")
        bus.emit("health.db.failed", "h")
        clock.advance(2)
        bus.emit("health.db.passed", "h")
        assert journal.flush(timeout=10)
        incidents = journal.incidents()
        assert [(i.id, i.subject, i.ttr) for i in incidents] == [
            (3, "db", 2.0),
            (2, "cache", None),
            (1, "db", 10.0),
        ]
        assert [i.subject for i in journal.incidents(open_only=True)] == ["cache"]
        summary = {s.subject: s for s in journal.mttr_by_subject()}
        assert (summary["db"].incidents, summary["db"].open, summary["db"].mttr) == (2, 0, 6.0)
        assert summary["db"].max_ttr == 10.0
        assert (summary["cache"].open, summary["cache"].mttr) == (1, None)


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        JournalOptions(max_pending=0)
