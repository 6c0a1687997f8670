"""The journal: events, incidents and recoveries in SQLite, written off the publisher's thread."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from selfheal import Event, EventBus
from selfheal.config import ConfigError, parse_config
from selfheal.store import (
    DROPPED,
    Incident,
    IncidentTracker,
    Journal,
    JournalNotFoundError,
    JournalOptions,
    JournalStore,
    RecoveryRecord,
    Signal,
    SqliteJournalStore,
    classify,
    path_from_url,
)
from selfheal.testing import FakeClock


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "j" / "journal.db"


def test_sqlite_store_is_a_journal_store(db: Path) -> None:
    assert isinstance(SqliteJournalStore(db), JournalStore)


def test_events_round_trip_with_filters(db: Path, clock: FakeClock) -> None:
    bus = EventBus(clock=clock)
    with Journal(bus, db, clock=clock) as journal:
        for i in range(5):
            bus.emit("health.db.failed", "health", "error", attempt=i)
            clock.advance(1)
        bus.emit("process.web.exited", "sup", exit_code=1, when=object())
        bus.emit("health_x.db.failed", "t")  # '_' must not act as a LIKE wildcard
        bus.emit("app.login", "app", password="hunter2", nested={"api_key": "k"})
        assert journal.flush(timeout=10)
        events = journal.events(limit=100)
        assert [e.type for e in events][:5] == ["health.db.failed"] * 5
        assert [e.seq for e in events] == sorted(e.seq for e in events)
        assert events[0].data == {"attempt": 0}
        assert events[0].subject == "db"
        assert events[0].timestamp == clock.time() - 5
        assert events[5].data["when"].startswith("<object object")
        assert events[7].data == {"password": "***", "nested": {"api_key": "***"}}
        assert [e.data["attempt"] for e in journal.events(type="health.*", limit=2)] == [3, 4]
        assert len(journal.events(type="health.*.failed", limit=100)) == 5
        assert [e.type for e in journal.events(type="*.web.*")] == ["process.web.exited"]
        assert len(journal.events(since=clock.time() - 2, limit=100)) == 5
        after = journal.events(after_seq=events[1].seq, limit=2)
        assert [e.seq for e in after] == [events[2].seq, events[3].seq]
        with pytest.raises(ValueError, match="limit"):
            journal.events(limit=0)


def test_data_json_cannot_hold_is_kept_as_text(db: Path) -> None:
    bus = EventBus()
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    with Journal(bus, db) as journal:
        bus.emit("a.b.ok", "t", n=1)
        bus.emit("a.b.tuple", "t", weird={(1, 2): 3})
        bus.emit("a.b.cycle", "t", cycle=cycle)
        assert journal.flush(timeout=10)
        events = {e.type: e.data for e in journal.events()}
    assert events["a.b.ok"] == {"n": 1}
    assert events["a.b.tuple"] == {"unencodable": "{'weird': {(1, 2): 3}}"}
    assert events["a.b.cycle"]["unencodable"].startswith("{'cycle': {'self': {...}}}")


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
        assert (journal.accepted, journal.dropped) == (11, 15)
    finally:
        store.gate.set()
        journal.close()
    assert [r.data["count"] for r in reports] == [15]
    stored = SqliteJournalStore(db, readonly=True).events(type=DROPPED)
    assert [(e.data["count"], e.data["total"]) for e in stored] == [(15, 15)]
    assert len(SqliteJournalStore(db, readonly=True).events(type="a.*", limit=100)) == 11


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


def test_readonly_store_reads_while_the_journal_writes(db: Path) -> None:
    bus = EventBus()
    with Journal(bus, db) as journal:
        bus.emit("a.b.c", "t")
        assert journal.flush(timeout=10)
        reader = SqliteJournalStore(db, readonly=True)
        assert len(reader.events()) == 1
        bus.emit("a.b.d", "t")
        assert journal.flush(timeout=10)
        assert [e.type for e in reader.events()] == ["a.b.c", "a.b.d"]
        with reader._reader() as conn, pytest.raises(sqlite3.OperationalError, match="readonly"):
            conn.execute("DELETE FROM events")


def test_missing_journal_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(JournalNotFoundError, match="no journal at"):
        SqliteJournalStore(tmp_path / "nope.db", readonly=True)
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize(
    ("type_", "data", "expected"),
    [
        ("health.db.failed", {}, (Signal.FAILURE, "db")),
        ("breaker.pay.opened", {}, (Signal.FAILURE, "pay")),
        ("breaker.pay.closed", {}, (Signal.RECOVERY, "pay")),
        ("process.web.exited", {"exit_code": 1}, (Signal.FAILURE, "web")),
        ("process.web.exited", {"exit_code": 0}, (Signal.NEUTRAL, "web")),
        ("process.web.exited", {"exit_code": -9, "expected": True}, (Signal.NEUTRAL, "web")),
        ("process.web.exited", {"exit_code": 0, "signal": 15}, (Signal.FAILURE, "web")),
        ("process.web.fatal", {}, (Signal.FAILURE, "web")),
        ("process.web.started", {}, (Signal.RECOVERY, "web")),
        ("recovery.web.started", {}, (Signal.NEUTRAL, "web")),
        ("recovery.web.suppressed", {}, (Signal.NEUTRAL, "web")),
        ("recovery.web.succeeded", {}, (Signal.RECOVERY, "web")),
        ("recovery.web.failed", {}, (Signal.FAILURE, "web")),
        ("system.database.failure", {}, (Signal.FAILURE, "database")),
        ("system.database.failure.recovered", {}, (Signal.RECOVERY, "database")),
        ("system.database.failure.recovery_failed", {}, (Signal.FAILURE, "database")),
        ("journal.dropped", {}, (Signal.NEUTRAL, "")),
        ("eventbus.handler.failed", {}, (Signal.NEUTRAL, "")),
    ],
)
def test_classification(type_: str, data: dict[str, object], expected: tuple[Signal, str]) -> None:
    assert classify(Event(type_, "src", "info", 1.0, data)) == expected


def ev(type_: str, ts: float, **data: object) -> Event:
    return Event(type_, "src", "info", ts, data)


def test_tracker_measures_detect_and_recover_times() -> None:
    tracker = IncidentTracker()
    assert tracker.observe(ev("health.db.passed", 100), 100) == (None, None)
    opened, _ = tracker.observe(ev("health.db.failed", 130), 130)
    assert opened is not None
    assert (opened.ttd, opened.ttd_source) == (30, "last_good")
    again, _ = tracker.observe(ev("health.db.failed", 140), 140)
    assert again is not None
    assert again.signals == 2
    assert again.id == opened.id
    closed, _ = tracker.observe(ev("health.db.passed", 150), 150)
    assert closed is not None
    assert (closed.ttr, closed.closed_by) == (20, "health.db.passed")
    # "since" in the signal beats the last good sighting.
    second, _ = tracker.observe(ev("health.db.failed", 200, since=190.5), 200)
    assert second is not None
    assert (second.id, second.ttd, second.ttd_source) == (2, 9.5, "since")
    # A process exit is seen by the supervisor as it happens.
    tracker.observe(ev("process.web.started", 1), 1)
    third, _ = tracker.observe(ev("process.web.exited", 5, exit_code=2), 5)
    assert third is not None
    assert (third.ttd, third.ttd_source) == (0.0, "immediate")
    # A failure of a subject never seen healthy has no known detection time.
    fourth, _ = tracker.observe(ev("synthetic.login.failed", 6), 6)
    assert fourth is not None
    assert fourth.ttd is None


def test_tracker_waits_for_a_running_recovery_to_verify() -> None:
    tracker = IncidentTracker()
    tracker.observe(ev("process.web.exited", 10, exit_code=-9), 10)
    inc, rec = tracker.observe(ev("recovery.web.started", 11, recovery_id="r1", rule="x"), 11)
    assert inc is not None
    assert inc.recoveries == 1
    assert rec is not None
    assert rec.outcome == "running"
    assert tracker.observe(ev("process.web.started", 12), 12) == (None, None)
    inc, rec = tracker.observe(ev("recovery.web.succeeded", 15, recovery_id="r1"), 15)
    assert inc is not None
    assert (inc.closed_by, inc.ttr) == ("recovery.web.succeeded", 5)
    assert rec is not None
    assert (rec.outcome, rec.ended_at, rec.started_at) == ("succeeded", 15, 11)


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


def test_path_from_url() -> None:
    assert path_from_url("sqlite:///.selfheal/journal.db") == Path(".selfheal/journal.db")
    assert path_from_url("sqlite:////var/j.db") == Path("/var/j.db")
    assert path_from_url("j.db") == Path("j.db")
    with pytest.raises(ValueError, match="scheme 'redis' is not supported"):
        path_from_url("redis://localhost")


def test_journal_config() -> None:
    cfg = parse_config('[journal]\nurl = "sqlite:///x/j.db"\nmax_age_days = 0\nmax_rows = 10\n')
    assert cfg.journal.path == Path("x/j.db")
    options = cfg.journal.options()
    assert (options.max_age, options.max_rows) == (None, 10)
    with pytest.raises(ConfigError) as info:
        parse_config('\n[journal]\nurl = "mysql://x"\n')
    (issue,) = info.value.issues
    assert (issue.key, issue.line) == ("journal.url", 3)
    assert "not supported" in issue.message
    assert "redis://" in issue.message  # a fleet's journal is the other valid kind


def test_journal_config_builds_a_journal(tmp_path: Path) -> None:
    db = tmp_path / "d" / "j.db"
    cfg = parse_config(f'[journal]\nurl = "sqlite:///{db}"\nsynchronous = "FULL"\nmax_rows = 7\n')
    bus = EventBus()
    with cfg.journal.build(bus) as journal:
        assert journal.options.max_rows == 7
        bus.emit("a.b.c", "t")
    assert [e.type for e in SqliteJournalStore(db, readonly=True).events()] == ["a.b.c"]


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="max_pending"):
        JournalOptions(max_pending=0)


def test_secrets_nested_under_known_keys_are_hidden_every_time(db: Path, clock: FakeClock) -> None:
    # The encoder learns harmless top-level keys; a secret nested under one must still be hidden.
    bus = EventBus(clock=clock)
    with Journal(bus, db, clock=clock) as journal:
        bus.emit("app.call", "app", request={"path": "/"})
        bus.emit("app.call", "app", request={"path": "/", "Authorization": "Bearer abc"})
        bus.emit("app.call", "app", request=[{"db_password": "pw"}])
        assert journal.flush(timeout=10)
        data = [e.data for e in journal.events(type="app.*", limit=10)]
    assert data == [
        {"request": {"path": "/"}},
        {"request": {"path": "/", "Authorization": "***"}},
        {"request": [{"db_password": "***"}]},
    ]


def test_data_too_deep_to_check_is_replaced_without_losing_the_batch(db: Path) -> None:
    bus = EventBus()
    deep: dict[str, object] = {}
    node = deep
    for _ in range(5000):
        node["next"] = node = {}
    with Journal(bus, db) as journal:
        bus.emit("a.b.before", "t", n=1)
        bus.emit("a.b.deep", "t", deep=deep)
        bus.emit("a.b.after", "t", n=2)
        assert journal.flush(timeout=10)
        events = {e.type: e.data for e in journal.events()}
    assert events["a.b.before"] == {"n": 1}
    assert events["a.b.after"] == {"n": 2}
    assert "unencodable" in events["a.b.deep"]
