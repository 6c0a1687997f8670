"""The SQLite journal store: queries, read-only readers, retention, and files it must refuse."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from selfheal import EventBus
from selfheal.store import (
    Journal,
    JournalFormatError,
    JournalNotFoundError,
    JournalStore,
    RecoveryRecord,
    SqliteJournalStore,
    path_from_url,
)
from selfheal.testing import FakeClock


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


def test_path_from_url() -> None:
    assert path_from_url("sqlite:///.selfheal/journal.db") == Path(".selfheal/journal.db")
    assert path_from_url("sqlite:////var/j.db") == Path("/var/j.db")
    assert path_from_url("j.db") == Path("j.db")
    with pytest.raises(ValueError, match="scheme 'redis' is not supported"):
        path_from_url("redis://localhost")


def test_retention_prunes_recoveries_a_crash_left_running(db: Path) -> None:
    # A daemon killed mid-recovery never records its end: the row stayed "running", and
    # retention (which only pruned ended recoveries) kept it for ever.
    store = SqliteJournalStore(db)
    store.write(
        [],
        [],
        [
            RecoveryRecord("orphan", "web", "rule", started_at=1_000.0),
            RecoveryRecord("recent", "web", "rule", started_at=9_000.0),
            RecoveryRecord("old-done", "web", "rule", 1_000.0, 1_001.0, "succeeded"),
        ],
        now=10_000.0,
    )
    store.prune(before=5_000.0, max_rows=None)
    assert [r.id for r in store.recoveries()] == ["recent"]
    store.close()


def test_the_readonly_store_names_the_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT);")
    conn.close()
    store = SqliteJournalStore(path, readonly=True)
    with pytest.raises(sqlite3.DatabaseError, match=r"events.*type"):
        store.events()


def test_a_real_journal_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    bus = EventBus()
    with Journal(bus, path):
        bus.emit("health.db.failed", "health", "error")
    store = SqliteJournalStore(path, readonly=True)
    assert [e.type for e in store.events()] == ["health.db.failed"]
    assert store.incidents()[0].subject == "db"


def test_the_writer_refuses_a_foreign_file_at_open(tmp_path: Path) -> None:
    # Before, CREATE TABLE IF NOT EXISTS kept the foreign table and every batch failed to
    # write and was dropped, for as long as the daemon ran.
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.executescript("CREATE TABLE events (seq INTEGER PRIMARY KEY, payload TEXT);")
    conn.close()
    with pytest.raises(JournalFormatError, match="not a selfheal journal"):
        SqliteJournalStore(path)


def test_the_writer_names_a_directory_or_a_non_database_file(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a directory"):
        SqliteJournalStore(tmp_path)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalFormatError, match=r"garbage\.db is not a selfheal journal"):
        SqliteJournalStore(garbage)
